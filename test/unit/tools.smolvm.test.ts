import assert from 'node:assert/strict';
import { ToolError, UserError } from '../../src/core/errors';
import { runTool } from '../../src/core/run';
import { isSmolvmError, parseCopyProgress, parseMachineList, parsePackOutput, SmolvmCli, transferCapEnvironment } from '../../src/core/tools/smolvm';
import { smolvmErrorLine } from '../../src/core/tools/smolvmRules';
import type { RunOptions, RunResult } from '../../src/core/run';

const smolvm = new SmolvmCli('/opt/smolvm');
const ok = (stdout: string, stderr = '', exitCode = 0): RunResult => ({ stdout, stderr, exitCode });

const LS_JSON = JSON.stringify([
  { name: 'bot-bottle-api', state: 'running', cpus: 2, memory_mib: 2048, pid: 4242, mounts: 1, ports: 0, created_at: 1764400000, storage_gb: 20, overlay_gb: 2, image: 'node:22', entrypoint: [], cmd: [], ephemeral: false, network: true, labels: {} },
  { name: 'bot-bottle-docs', state: 'hibernating', cpus: 1, memory_mib: 512, pid: null, created_at: 1764300000, image: null },
]);

describe('smolvm client', () => {
  describe('argv', () => {
    it('lists with --json and never the text table', () => {
      assert.deepEqual(smolvm.list().argv, ['/opt/smolvm', 'machine', 'ls', '--json']);
    });

    it('always names machines with --name', () => {
      assert.deepEqual(smolvm.status('bot-bottle-a').argv, ['/opt/smolvm', 'machine', 'status', '--name', 'bot-bottle-a', '--json']);
      assert.deepEqual(smolvm.start('bot-bottle-a').argv, ['/opt/smolvm', 'machine', 'start', '--name', 'bot-bottle-a']);
      assert.deepEqual(smolvm.stop('bot-bottle-a').argv, ['/opt/smolvm', 'machine', 'stop', '--name', 'bot-bottle-a']);
      assert.deepEqual(smolvm.dataDir('bot-bottle-a').argv, ['/opt/smolvm', 'machine', 'data-dir', '--name', 'bot-bottle-a']);
    });

    it('deletes with -f so smolvm never waits on stdin', () => {
      assert.deepEqual(smolvm.delete('bot-bottle-a').argv, ['/opt/smolvm', 'machine', 'delete', '--name', 'bot-bottle-a', '-f']);
    });

    it('creates from an image or from a .smolmachine, never both', () => {
      assert.deepEqual(smolvm.create({ name: 'bot-bottle-a', from: '/s p/x.smolmachine' }).argv, [
        '/opt/smolvm', 'machine', 'create', '--name', 'bot-bottle-a', '--from', '/s p/x.smolmachine',
      ]);
      assert.deepEqual(
        smolvm.create({ name: 'bot-bottle-a', image: 'node:22', cpus: 2, memoryMib: 1024, network: true, env: { A: 'b c' }, workdir: '/w' }).argv,
        ['/opt/smolvm', 'machine', 'create', '--name', 'bot-bottle-a', '--image', 'node:22', '--cpus', '2', '--mem', '1024', '--net', '-e', 'A=b c', '-w', '/w'],
      );
      assert.throws(() => smolvm.create({ name: 'bot-bottle-a', image: 'x', from: 'y' }), UserError);
    });

    it('gives a --from machine its settings back as flags, and never -w, which smolvm ignores there (src/cli/machine.rs:3418)', () => {
      const options = { name: 'bot-bottle-a', from: '/s/x.smolmachine', network: true, cpus: 2, memoryMib: 2048, storageGb: 30, overlayGb: 5, labels: { team: 'a' } };
      assert.deepEqual(smolvm.create(options).argv, [
        '/opt/smolvm', 'machine', 'create', '--name', 'bot-bottle-a', '--from', '/s/x.smolmachine',
        '--cpus', '2', '--mem', '2048', '--net', '--storage', '30', '--overlay', '5', '--label', 'team=a',
      ]);
      assert.throws(() => smolvm.create({ ...options, workdir: '/w' }), /-w would be ignored/);
    });

    it('execs with the long --name and the command after --', () => {
      assert.deepEqual(smolvm.exec('bot-bottle-a', ['tar', '--create']).argv, ['/opt/smolvm', 'machine', 'exec', '--name', 'bot-bottle-a', '--', 'tar', '--create']);
      assert.deepEqual(smolvm.execArgv('bot-bottle-a', ['sh', '-l'], { interactive: true, tty: true, env: { TERM: 'xterm' }, workdir: '/home/node', timeout: '30s' }), [
        '/opt/smolvm', 'machine', 'exec', '--name', 'bot-bottle-a', '-i', '-t', '-e', 'TERM=xterm', '-w', '/home/node', '--timeout', '30s', '--', 'sh', '-l',
      ]);
      assert.throws(() => smolvm.exec('bot-bottle-a', []), /needs a command/);
    });

    it('copies with the machine side marked by ":" and refuses host paths that contain one', () => {
      assert.deepEqual(smolvm.cp({ machine: 'bot-bottle-a', path: '/var/tmp/x.tar.gz' }, { host: '/tmp/my dir/rootfs.tar.gz' }).argv, [
        '/opt/smolvm', 'machine', 'cp', 'bot-bottle-a:/var/tmp/x.tar.gz', '/tmp/my dir/rootfs.tar.gz',
      ]);
      assert.throws(() => smolvm.cp({ machine: 'bot-bottle-a', path: '/x' }, { host: '/tmp/a:b' }), UserError);
    });

    it('refuses invalid machine names before anything runs', () => {
      assert.throws(() => smolvm.start('bad name'), /contains a space/);
      assert.throws(() => smolvm.exec('-x', ['true']), /must start with a letter or digit/);
    });

    it('packs an image to a launcher whose name does not end in .smolmachine', () => {
      assert.deepEqual(smolvm.packCreate({ image: '127.0.0.1:5000/bot-bottle-committed:0123456789abcdef', output: '/s/committed-smolmachine' }).argv, [
        '/opt/smolvm', 'pack', 'create', '--image', '127.0.0.1:5000/bot-bottle-committed:0123456789abcdef', '-o', '/s/committed-smolmachine',
      ]);
      assert.throws(() => smolvm.packCreate({ image: 'r/x:1', output: '/s/x.smolmachine' }), /must not end in \.smolmachine/);
    });
  });

  describe('parsers', () => {
    it('reads an empty list', () => {
      assert.deepEqual(parseMachineList('[]'), []);
    });

    it('reads machines and keeps an unknown state as it is', () => {
      const [api, docs] = parseMachineList(LS_JSON);
      assert.equal(api.name, 'bot-bottle-api');
      assert.equal(api.state, 'running');
      assert.equal(api.pid, 4242);
      assert.equal(api.memoryMib, 2048);
      assert.equal(api.image, 'node:22');
      assert.equal(api.createdAt?.toISOString(), new Date(1764400000 * 1000).toISOString());
      assert.deepEqual([api.network, api.storageGb, api.overlayGb, api.labels, api.mountCount, api.portCount], [true, 20, 2, {}, 1, 0]);
      assert.equal(docs.state, 'hibernating');
      assert.equal(docs.pid, undefined);
      assert.equal(docs.image, undefined);
      assert.deepEqual([docs.network, docs.labels, docs.restartPolicy], [undefined, undefined, undefined]);
    });

    it('explains garbage, truncated JSON and a non-array instead of crashing', () => {
      assert.throws(() => parseMachineList('NAME  STATE\nbot-bottle-a running'), /cannot read: expected JSON but got "NAME {2}STATE/);
      assert.throws(() => parseMachineList('[{"name":"bot-bottle-a","st'), /expected JSON/);
      assert.throws(() => parseMachineList('{"name":"x"}'), /expected a JSON array/);
      assert.throws(() => parseMachineList('[{"state":"running"}]'), /a machine has no name/);
      assert.throws(() => parseMachineList(''), (e: Error) => e instanceof ToolError && /got "nothing"/.test(e.message));
    });

    it('reads copy progress in smolvm’s own formats (src/cli/mod.rs:53-67, 146-169)', () => {
      // A download has no total (src/cli/machine.rs:4989-4992); an upload has one.
      assert.deepEqual(parseCopyProgress('Downloading /var/tmp/.bot-bottle-commit.tar.gz -> /tmp/x/rootfs.tar.gz: 1.0 GB (50.0 MB/s)'), {
        bytes: 1024 ** 3, totalBytes: undefined, rate: '50.0 MB/s',
      });
      assert.deepEqual(parseCopyProgress('Uploading a -> /b: 1.0 MB / 4.0 MB (25.0%, 5.0 MB/s)'), { bytes: 1024 ** 2, totalBytes: 4 * 1024 ** 2, rate: '5.0 MB/s' });
      assert.deepEqual(parseCopyProgress('Downloading /a -> /my: dir/b: 512 B (512 B/s)'), { bytes: 512, totalBytes: undefined, rate: '512 B/s' });
      assert.equal(parseCopyProgress('Downloading /a -> b: 16.5 MB (1.2 GB/s)')?.bytes, Math.round(16.5 * 1024 ** 2));
      assert.equal(parseCopyProgress('Extracting .smolmachine assets...'), undefined);
      assert.equal(parseCopyProgress("Error: agent operation failed: read file: guest streamed 5 bytes, exceeding the 4 byte cap"), undefined);
    });

    it('finds the pack lines by prefix, wherever smolvm puts them', () => {
      const stdout = ['Pulling image...', 'Packed: /s/committed-smolmachine (12.3 MB)', 'Assets: /s/committed-smolmachine.smolmachine (301.2 MB)', 'Run with: /s/committed-smolmachine', 'Note: keep the .smolmachine file alongside the binary', 'Options: --cpus --mem'].join('\n');
      assert.deepEqual(parsePackOutput(stdout, '/s/committed-smolmachine'), {
        launcher: '/s/committed-smolmachine',
        artifact: '/s/committed-smolmachine.smolmachine',
      });
    });

    it("tells smolvm's own errors from the guest command's exit status", () => {
      assert.equal(isSmolvmError(ok('', "Error: agent operation failed: connect: machine 'bot-bottle-a' is not running.", 1)), true);
      assert.equal(isSmolvmError(ok('', 'tar: file changed as we read it', 1)), false);
      assert.equal(isSmolvmError(ok('', '', 124)), false);
      assert.equal(isSmolvmError(ok('', '', 0)), false);
    });

    it('counts only smolvm’s own last Error: line, even after \\r copy progress (src/main.rs:211-216, src/cli/mod.rs:114-144)', () => {
      // A guest's own "Error:" line, printed before its last line, is the guest's (vm_common.rs:192-209).
      assert.equal(isSmolvmError(ok('', 'Error: unknown flag --x\nUsage: tool [flags]\n', 1)), false);
      assert.equal(isSmolvmError(ok('', 'note: x\nError: vm not found: bot-bottle-a\n', 1)), true);
      const cpFailed = "\rDownloading /var/tmp/a -> /h/a: 16.0 MB (50.0 MB/s)\rDownloading /var/tmp/a -> /h/a: 32.0 MB (50.0 MB/s)Error: agent operation failed: read file: guest streamed 33554432 bytes, exceeding the 16777216 byte cap\n";
      assert.equal(isSmolvmError(ok('', cpFailed, 1)), true);
      assert.equal(smolvmErrorLine(cpFailed), 'Error: agent operation failed: read file: guest streamed 33554432 bytes, exceeding the 16777216 byte cap');
    });

    it('takes smolvm’s last Error: line, not a child tool’s earlier one, and none when smolvm did not end with one (src/main.rs:211-216)', () => {
      // An init command's stderr, wrapped into smolvm's own message (src/cli/vm_common.rs:398-415).
      const initFailed = "Error: cannot open /etc/app.conf\nError: agent operation failed: init: init[0] failed (exit 1): Error: cannot open /etc/app.conf; stdout: \n";
      assert.equal(smolvmErrorLine(initFailed), 'Error: agent operation failed: init: init[0] failed (exit 1): Error: cannot open /etc/app.conf; stdout:');
      const guestThenSmolvm = 'Error: unknown flag --x\nUsage: tool [flags]\nError: agent operation failed: vm exec: connection reset\n';
      assert.equal(smolvmErrorLine(guestThenSmolvm), 'Error: agent operation failed: vm exec: connection reset');
      assert.equal(smolvmErrorLine('Error: unknown flag --x\nUsage: tool [flags]\n'), undefined);
      // A clap usage error is lower case and exits 2 (clap_builder@v4.6.0:clap_builder/src/error/mod.rs:229-249).
      assert.equal(smolvmErrorLine("error: unexpected argument '--x' found\n\nUsage: smolvm machine cp [OPTIONS] <SRC> <DST>\n"), undefined);
    });
  });

  describe('the machine cp transfer cap', () => {
    const GIB = 1024 ** 3;
    it('is raised for a download only when the 4 GiB default would stop it, or the environment set another cap (crates/smolvm-protocol/src/lib.rs:125, src/agent/client.rs:2246-2260, 2630-2635)', () => {
      assert.equal(transferCapEnvironment(4 * GIB, {}), undefined, 'a file of exactly the cap passes (next_total > cap)');
      assert.deepEqual(transferCapEnvironment(4 * GIB + 1, {}), { SMOLVM_FILE_TRANSFER_MAX_BYTES: String(4 * GIB + 1) });
      assert.deepEqual(transferCapEnvironment(1024, { SMOLVM_FILE_TRANSFER_MAX_BYTES: '512' }), { SMOLVM_FILE_TRANSFER_MAX_BYTES: String(4 * GIB) });
      assert.deepEqual(transferCapEnvironment(9 * GIB, { SMOLVM_FILE_TRANSFER_MAX_BYTES: '64G' }), { SMOLVM_FILE_TRANSFER_MAX_BYTES: String(9 * GIB) });
    });

    it('goes on the one cp command as environment, never in its argv', () => {
      const copy = smolvm.cp({ machine: 'bot-bottle-a', path: '/var/tmp/a.tar' }, { host: '/h/a.tar' }, { expectedBytes: 5 * GIB });
      assert.deepEqual(copy.argv, ['/opt/smolvm', 'machine', 'cp', 'bot-bottle-a:/var/tmp/a.tar', '/h/a.tar']);
      assert.deepEqual(copy.env, { SMOLVM_FILE_TRANSFER_MAX_BYTES: String(5 * GIB) });
      assert.equal(smolvm.cp({ machine: 'bot-bottle-a', path: '/a' }, { host: '/h/a' }).env, undefined);
    });
  });

  describe('through the runner', () => {
    const fakeRunner = (result: RunResult, seen: RunOptions[] = []) => async (_argv: readonly string[], options?: RunOptions) => {
      seen.push(options ?? {});
      if (!(options?.okExitCodes ?? [0]).includes(result.exitCode)) throw new ToolError(_argv, result.exitCode, result.stderr);
      return result;
    };

    it('passes a timed-out exec (124) as a failure unless the caller accepts it', async () => {
      const timedOut = ok('', '', 124);
      await assert.rejects(runTool(fakeRunner(timedOut), smolvm.exec('bot-bottle-a', ['sleep', '60'], { timeout: '1s' })), (e: ToolError) => e.exitCode === 124);
      const result = await runTool(fakeRunner(timedOut), smolvm.exec('bot-bottle-a', ['sleep', '60'], { okExitCodes: [0, 124] }));
      assert.equal(result.exitCode, 124);
    });

    it("fails an exec whose accepted exit status came from smolvm's own error, not from the guest", async () => {
      const tar = smolvm.exec('bot-bottle-a', ['tar', '--create'], { okExitCodes: [0, 1] });
      const changed = await runTool(fakeRunner(ok('', 'tar: ./x: file changed as we read it', 1)), tar);
      assert.equal(changed.exitCode, 1);
      const notRunning = ok('', "Error: agent operation failed: connect: machine 'bot-bottle-a' is not running.", 1);
      await assert.rejects(runTool(fakeRunner(notRunning), tar), (e: ToolError) => e.reason.startsWith('Error: agent operation failed'));
    });

    it('keeps machine-readable list output out of the info log', async () => {
      const seen: RunOptions[] = [];
      const machines = await runTool(fakeRunner(ok(LS_JSON), seen), smolvm.list());
      assert.equal(machines.length, 2);
      assert.equal(seen[0].quietStdout, true);
    });

    it('gives smolvm’s last Error: line as the reason and in the message, after a guest’s Error: line or cp progress', async () => {
      const guestThenSmolvm = ok('', "Error: config not found\nError: agent operation failed: connect: machine 'bot-bottle-a' is not running.\n", 1);
      const execError = await runTool(fakeRunner(guestThenSmolvm), smolvm.exec('bot-bottle-a', ['app'])).catch((e) => e);
      assert.ok(execError instanceof ToolError);
      assert.equal(execError.reason, "Error: agent operation failed: connect: machine 'bot-bottle-a' is not running.");
      const cpFailed = ok('', '\rDownloading /a -> /h/a: 16.0 MB (50.0 MB/s)Error: agent operation failed: read file: guest streamed 4294967297 bytes, exceeding the 4294967296 byte cap\n', 1);
      const cpError = await runTool(fakeRunner(cpFailed), smolvm.cp({ machine: 'bot-bottle-a', path: '/a' }, { host: '/h/a' })).catch((e) => e);
      assert.equal(cpError.reason, 'Error: agent operation failed: read file: guest streamed 4294967297 bytes, exceeding the 4294967296 byte cap');
      assert.equal(cpError.message, `smolvm exited with status 1: ${cpError.reason}`);
      const guestOnly = await runTool(fakeRunner(ok('', 'Error: config not found\nusage: app [-c FILE]\n', 2)), smolvm.exec('bot-bottle-a', ['app'])).catch((e) => e);
      assert.equal(guestOnly.reason, 'usage: app [-c FILE]', 'no smolvm error: the last line, not the guest’s Error: line');
    });

    it("surfaces smolvm's own Error: line as the reason for an unknown machine", async () => {
      const notFound = ok('', "Error: config operation failed: machine status: machine 'bot-bottle-x' not found", 1);
      const error = await runTool(fakeRunner(notFound), smolvm.status('bot-bottle-x')).catch((e) => e);
      assert.ok(error instanceof ToolError);
      assert.equal(error.exitCode, 1);
      assert.equal(error.reason, "Error: config operation failed: machine status: machine 'bot-bottle-x' not found");
    });
  });
});
