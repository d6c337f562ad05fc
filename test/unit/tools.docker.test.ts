import assert from 'node:assert/strict';
import type { RunOptions, RunResult } from '../../src/core/run';
import { runTool } from '../../src/core/run';
import { UnexpectedOutputError } from '../../src/core/tools/command';
import { dockerfileForRootfs } from '../../src/core/committedImage';
import { build, imageId, parseVersion, rmi, save, version } from '../../src/core/tools/docker';

const ok = (stdout: string, stderr = '', exitCode = 0): RunResult => ({ stdout, stderr, exitCode });
const ID = `sha256:${'ab12'.repeat(16)}`;

describe('docker client', () => {
  it('writes the Dockerfile that turns a root filesystem archive into an image run as node', () => {
    assert.equal(dockerfileForRootfs(), 'FROM scratch\nADD rootfs.tar.gz /\nUSER node\nWORKDIR /home/node\n');
  });

  it('builds with an explicit tag, Dockerfile and context', () => {
    assert.deepEqual(build('/usr/bin/docker', { tag: 'bot-bottle-committed-a:latest', contextDir: '/t/ctx', dockerfile: '/t/ctx/Dockerfile.x' }).argv, [
      '/usr/bin/docker', 'build', '--tag', 'bot-bottle-committed-a:latest', '--file', '/t/ctx/Dockerfile.x', '/t/ctx',
    ]);
    assert.deepEqual(build('docker', { tag: 'x:1', contextDir: '/a b' }).argv, ['docker', 'build', '--tag', 'x:1', '--file', '/a b/Dockerfile', '/a b']);
  });

  it('saves to a file, removes, and asks for the image id only', () => {
    assert.deepEqual(save('docker', 'x:1', '/s/committed.image.tar').argv, ['docker', 'save', '--output', '/s/committed.image.tar', 'x:1']);
    assert.deepEqual(rmi('docker', 'x:1').argv, ['docker', 'rmi', 'x:1']);
    assert.deepEqual(imageId('docker', 'x:1').argv, ['docker', 'image', 'inspect', '--format', '{{.Id}}', 'x:1']);
  });

  it('reads the image id and rejects anything else', () => {
    assert.equal(imageId('docker', 'x').parse(ok(`${ID}\n`)), ID);
    assert.throws(() => imageId('docker', 'x').parse(ok('')), UnexpectedOutputError);
    assert.throws(() => imageId('docker', 'x').parse(ok('ab12ab12')), /docker image inspect printed "ab12ab12"/);
    assert.throws(() => imageId('docker', 'x').parse(ok(`${ID}\n${ID}`)), UnexpectedOutputError);
  });

  it('reports client and engine versions, and why the engine is unreachable', () => {
    assert.deepEqual(version('docker').argv, ['docker', 'version', '--format', '{{json .}}']);
    assert.deepEqual(version('docker').okExitCodes, [0, 1]);
    assert.deepEqual(parseVersion('{"Client":{"Version":"28.2.2"},"Server":{"Version":"4.3.1"}}', ''), { client: '28.2.2', server: '4.3.1' });
    assert.deepEqual(parseVersion('{"Client":{"Version":"28.2.2"},"Server":null}', 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n'), {
      client: '28.2.2',
      serverError: 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.',
    });
    assert.throws(() => parseVersion('', 'unknown flag: --format'), /unknown flag/);
  });

  it('runs through the runner with the command\'s exit codes unless the caller overrides them', async () => {
    const calls: { argv: readonly string[]; options?: RunOptions }[] = [];
    const run = async (argv: readonly string[], options?: RunOptions) => {
      calls.push({ argv, options });
      return ok('{"Client":{"Version":"1"},"Server":null}', 'no engine', 1);
    };
    const result = await runTool(run, version('docker'), { okExitCodes: undefined, signal: AbortSignal.timeout(1000) });
    assert.deepEqual(result, { client: '1', serverError: 'no engine' });
    assert.deepEqual(calls[0].options?.okExitCodes, [0, 1]);
    assert.equal(calls[0].options?.quietStdout, true);
    assert.ok(calls[0].options?.signal);
  });
});
