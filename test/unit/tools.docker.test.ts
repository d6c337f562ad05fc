import assert from 'node:assert/strict';
import type { RunOptions, RunResult } from '../../src/core/run';
import { runTool } from '../../src/core/run';
import { UnexpectedOutputError } from '../../src/core/tools/command';
import { dockerfileForRootfs } from '../../src/core/committedImage';
import {
  build,
  commit,
  containerState,
  imageId,
  imageTagProblem,
  listContainers,
  parseContainerList,
  parseStartTimes,
  parseVersion,
  rmi,
  save,
  startTimes,
  tagImage,
  version,
} from '../../src/core/tools/docker';

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

  describe("bot-bottle's docker bottles", () => {
    const row = (fields: Record<string, unknown>) => JSON.stringify({ Command: '"/bin/sleep 3600"', Labels: '', ...fields });

    it('lists every container whose name starts with the prefix, running or not, as JSON lines', () => {
      const command = listContainers('docker', 'bot-bottle-');
      assert.deepEqual(command.argv, ['docker', 'ps', '--all', '--no-trunc', '--filter', 'name=^/?bot-bottle-', '--format', '{{json .}}']);
      assert.deepEqual(listContainers('docker', 'a.b+').argv[5], 'name=^/?a\\.b\\+', 'the prefix is matched as text, not as a pattern');
    });

    it('reads id, name, state and image, and keeps only names that start with the prefix', () => {
      const stdout = [
        row({ ID: 'b46e', Names: 'bot-bottle-fix-login-4k2x9', State: 'running', Image: 'docker.io/library/node:22', Status: 'Up 3 minutes' }),
        row({ ID: 'abbc', Names: 'bot-bottle-stopped-2', State: 'exited', Image: '' }),
        row({ ID: 'c0ff', Names: 'my-bot-bottle-x', State: 'running', Image: 'x' }),
        row({ ID: 'd00d', Names: 'web/bot-bottle-link,bot-bottle-linked', State: 'running', Image: 'y' }),
        '',
      ].join('\n');
      assert.deepEqual(parseContainerList(stdout, 'bot-bottle-'), [
        { id: 'b46e', name: 'bot-bottle-fix-login-4k2x9', state: 'running', image: 'docker.io/library/node:22' },
        { id: 'abbc', name: 'bot-bottle-stopped-2', state: 'exited' },
        { id: 'd00d', name: 'bot-bottle-linked', state: 'running', image: 'y' },
      ]);
      assert.deepEqual(parseContainerList('', 'bot-bottle-'), []);
    });

    it('refuses output that is not one container a line', () => {
      assert.throws(() => parseContainerList('CONTAINER ID IMAGE', 'bot-bottle-'), /^UnexpectedOutputError: docker ps printed "CONTAINER ID IMAGE" where one JSON object a line with ID, Names and State was expected$/);
      assert.throws(() => parseContainerList(row({ ID: 1, Names: 'bot-bottle-a', State: 'running' }), 'bot-bottle-'), UnexpectedOutputError);
    });

    it('says "no engine" with the client\'s own words instead of failing the routine refresh', () => {
      const command = listContainers('docker', 'bot-bottle-');
      assert.deepEqual(command.okExitCodes, [0, 1]);
      assert.throws(() => command.parse(ok('', 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n', 1)), {
        message: 'docker ps failed: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?',
      });
    });

    it('reads start times, passing over the zero time of a container that never started', () => {
      assert.deepEqual(startTimes('docker', ['b46e', 'abbc']).argv, ['docker', 'container', 'inspect', '--format', '{{json .Id}} {{json .State.StartedAt}}', 'b46e', 'abbc']);
      const times = parseStartTimes('"b46e" "2026-03-01T09:30:00.355999177Z"\n"abbc" "0001-01-01T00:00:00Z"\n');
      assert.deepEqual([...times], [['b46e', new Date('2026-03-01T09:30:00.355Z')]]);
      assert.throws(() => parseStartTimes('[]'), UnexpectedOutputError);
    });

    it('reads one container\'s state, or that there is none', () => {
      const command = containerState('docker', 'bot-bottle-a');
      assert.deepEqual(command.argv, ['docker', 'container', 'inspect', '--format', '{{.State.Status}}', 'bot-bottle-a']);
      assert.equal(command.parse(ok('running\n')), 'running');
      assert.equal(command.parse(ok('', 'Error: No such container: bot-bottle-a\n', 1)), undefined);
      assert.equal(command.parse(ok('', 'Error response from daemon: no such container\n', 1)), undefined);
      assert.throws(() => command.parse(ok('', 'Cannot connect to the Docker daemon\n', 1)), UnexpectedOutputError);
    });

    it('commits to a tag and reads the new image id; tags an image', () => {
      assert.deepEqual(commit('docker', 'bot-bottle-a', 'bot-bottle-committed-a:latest').argv, ['docker', 'commit', 'bot-bottle-a', 'bot-bottle-committed-a:latest']);
      assert.equal(commit('docker', 'c', 't').parse(ok(`${ID}\n`)), ID);
      assert.equal(commit('docker', 'c', 't').parse(ok(`${ID.slice('sha256:'.length)}\n`)), ID, 'as Podman prints it');
      assert.throws(() => commit('docker', 'c', 't').parse(ok('abc\n')), UnexpectedOutputError);
      assert.deepEqual(tagImage('docker', 'a:1', 'a:latest').argv, ['docker', 'tag', 'a:1', 'a:latest']);
    });

    it('knows which image tags docker refuses', () => {
      for (const good of ['bot-bottle-committed-fix-login-4k2x9:latest', 'a_b:1', 'a__b.c:x', 'a---b', 'host/x/y:v1.2-rc_3'])
        assert.equal(imageTagProblem(good), undefined, good);
      assert.equal(imageTagProblem('bot-bottle-committed-Fix-Login:latest'), 'docker repository names must be lower case');
      for (const bad of ['bot-bottle-committed-fix_:latest', 'bot-bottle-committed-a_-b:latest', 'a..b:1', '_a:1'])
        assert.equal(imageTagProblem(bad), 'docker repository names are lower-case letters and digits, separated by ".", "_", "__" or hyphens', bad);
      assert.equal(imageTagProblem('a:-x'), 'a docker tag is at most 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
      assert.equal(imageTagProblem(`a:${'x'.repeat(129)}`), 'a docker tag is at most 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
      assert.equal(imageTagProblem(`${'a'.repeat(256)}:1`), 'its repository name is 256 characters long; docker allows at most 255');
    });
  });
});
