import assert from 'node:assert/strict';
import { UserError } from '../../src/core/errors';
import type { RunResult } from '../../src/core/run';
import { UnexpectedOutputError } from '../../src/core/tools/command';
import { choosePusher } from '../../src/core/executables';
import { pushTarball } from '../../src/core/tools/push';
import { inspectRemote, parseInspect } from '../support/skopeo';

const ok = (stdout: string): RunResult => ({ stdout, stderr: '', exitCode: 0 });

describe('image push', () => {
  it('prefers crane, falls back to skopeo, and says what to install when neither is there', () => {
    assert.deepEqual(choosePusher({ craneBin: '/c/crane', skopeoBin: '/s/skopeo' }), { tool: 'crane', bin: '/c/crane' });
    assert.deepEqual(choosePusher({ skopeoBin: '/s/skopeo' }), { tool: 'skopeo', bin: '/s/skopeo' });
    assert.throws(() => choosePusher({}), (error: unknown) => {
      assert.ok(error instanceof UserError);
      assert.match(error.message, /needs crane or skopeo/);
      assert.match(error.message, /botBottle\.paths\.crane/);
      assert.match(error.message, /botBottle\.paths\.skopeo/);
      return true;
    });
  });

  it('pushes a docker-save tarball with crane', () => {
    const crane = { tool: 'crane', bin: '/c/crane' } as const;
    assert.deepEqual(pushTarball(crane, '/s/committed.image.tar', '127.0.0.1:5000/bot-bottle-committed:0123456789abcdef', { insecure: true }).argv, [
      '/c/crane', 'push', '--insecure', '/s/committed.image.tar', '127.0.0.1:5000/bot-bottle-committed:0123456789abcdef',
    ]);
    assert.deepEqual(pushTarball(crane, '/t.tar', 'reg.example/x:1', { insecure: false }).argv, ['/c/crane', 'push', '/t.tar', 'reg.example/x:1']);
  });

  it('pushes the same tarball with skopeo copy from a docker-archive', () => {
    const skopeo = { tool: 'skopeo', bin: 'skopeo' } as const;
    assert.deepEqual(pushTarball(skopeo, '/s p/committed.image.tar', '127.0.0.1:5000/r:t', { insecure: true }).argv, [
      'skopeo', 'copy', '--dest-tls-verify=false', 'docker-archive:/s p/committed.image.tar', 'docker://127.0.0.1:5000/r:t',
    ]);
    assert.deepEqual(pushTarball(skopeo, '/t.tar', 'reg.example/x:1', { insecure: false }).argv, ['skopeo', 'copy', 'docker-archive:/t.tar', 'docker://reg.example/x:1']);
  });

  it('inspects an image in a registry and reads digest, tags and layers', () => {
    const command = inspectRemote('skopeo', '127.0.0.1:5000/r:t', { insecure: true });
    assert.deepEqual(command.argv, ['skopeo', 'inspect', '--tls-verify=false', 'docker://127.0.0.1:5000/r:t']);
    assert.equal(command.quietStdout, true);
    const image = command.parse(ok(JSON.stringify({
      Name: '127.0.0.1:5000/r', Digest: 'sha256:aa', RepoTags: ['t'], Architecture: 'amd64', Os: 'linux', Layers: ['sha256:l1', 'sha256:l2'], Env: [],
    })));
    assert.deepEqual(image, { name: '127.0.0.1:5000/r', digest: 'sha256:aa', repoTags: ['t'], layers: ['sha256:l1', 'sha256:l2'], architecture: 'amd64', os: 'linux' });
    assert.throws(() => parseInspect('time="..." level=fatal msg="manifest unknown"'), UnexpectedOutputError);
    assert.throws(() => parseInspect('{"Name":"x"}'), UnexpectedOutputError);
  });
});
