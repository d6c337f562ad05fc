/**
 * The smolvm stand-in against its contract (/work/shared/docs/smolvm-cli.md), always through
 * the real executable `test/sim/bin/smolvm`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { blobPath, startRegistry, gzipLayer, layerFromTarGz, MEDIA, plainLayer, pushImage, tarDirectory, type Layer, type Registry } from '../support/registry';
import { createRunningMachine, ensureSimBuilt, machineRootfs, makeSimDataDir, readSimLog, runSim, simBin, simEnv, type SimDataDir, type SimResult } from '../support/sim';

const OUTPUT_CAP = 11534336;
const BUSYBOX = '/bin/busybox';
const TAR_EXCLUDES = ['./proc', './sys', './dev', './run', './tmp', './var/tmp'].map((dir) => `--exclude=${dir}`);
// machine_status_json's keys (smolvm src/cli/vm_common.rs:2469-2520).
const LS_KEYS = [
  'name', 'state', 'cpus', 'memory_mib', 'pid', 'mounts', 'ports', 'created_at', 'storage_gb', 'overlay_gb', 'image', 'entrypoint', 'cmd', 'ephemeral',
  'gpu', 'gpu_vram_mib', 'cuda', 'forkable', 'cuda_fork_pool_size', 'cuda_vram_limit_mib', 'forkpoint_held', 'labels', 'restart_policy',
  'restart_max_retries', 'restart_count', 'health_cmd', 'health_interval_secs', 'health_timeout_secs', 'health_retries', 'health_startup_grace_secs', 'network',
];

let data: SimDataDir;

function sim(args: string[], env: Record<string, string> = {}, input?: string): Promise<SimResult> {
  return runSim(args, { dataDir: data.dataDir, env, input });
}

function assertSmolvmError(result: SimResult, pattern?: RegExp): void {
  assert.equal(result.exitCode, 1, `expected exit 1, got ${result.exitCode}: ${result.stderr}`);
  assert.match(result.stderr, /^Error: /m);
  if (pattern) assert.match(result.stderr, pattern);
}

function assertUsageError(result: SimResult, pattern: RegExp): void {
  assert.equal(result.exitCode, 2, result.stderr);
  assert.match(result.stderr, /^error: /);
  assert.match(result.stderr, pattern);
}

async function listMachines(): Promise<Array<Record<string, unknown>>> {
  const result = await sim(['machine', 'ls', '--json']);
  assert.equal(result.exitCode, 0, result.stderr);
  return JSON.parse(result.stdout) as Array<Record<string, unknown>>;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function tarListing(archive: string): string[] {
  const result = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split('\n').filter(Boolean);
}

function walk(dir: string): string[] {
  const found: string[] = [dir];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...walk(path));
    else found.push(path);
  }
  return found;
}

describe('smolvm stand-in', function () {
  this.timeout(60_000);

  before(async () => {
    ensureSimBuilt();
    data = makeSimDataDir();
    await createRunningMachine(data.dataDir, 'bot-bottle-a');
  });

  after(() => data?.cleanup());

  describe('machine ls / status', () => {
    it('lists nothing as [] in an empty data dir', async () => {
      const result = await runSim(['machine', 'ls', '--json'], { dataDir: join(data.scratch, 'never-used') });
      assert.equal(result.exitCode, 0);
      assert.deepEqual(JSON.parse(result.stdout), []);
    });

    it('lists every documented key, with state, image, pid and created_at in Unix seconds', async () => {
      const machine = (await listMachines()).find((m) => m.name === 'bot-bottle-a');
      assert.ok(machine);
      assert.deepEqual(Object.keys(machine).sort(), [...LS_KEYS].sort());
      assert.equal(machine.state, 'running');
      assert.equal(machine.image, 'localhost:5000/bot-bottle/base:latest');
      assert.equal(typeof machine.pid, 'number');
      const age = Date.now() / 1000 - (machine.created_at as number);
      assert.ok(Number.isInteger(machine.created_at) && age >= 0 && age < 120, `created_at ${machine.created_at}`);
    });

    it('shows one machine with status --json and fails with an Error line for an unknown one', async () => {
      const known = await sim(['machine', 'status', '--name', 'bot-bottle-a', '--json']);
      assert.equal(known.exitCode, 0);
      assert.equal(JSON.parse(known.stdout).state, 'running');
      assertSmolvmError(await sim(['machine', 'status', '--name', 'bot-bottle-nope', '--json']));
    });
  });

  describe('names and arguments', () => {
    it('refuses invalid machine names with exit 1', async () => {
      for (const name of ['-leading', 'trailing-', 'double--hyphen', 'has space', 'dot.name', 'x'.repeat(129)]) {
        assertSmolvmError(await sim(['machine', 'create', `--name=${name}`]), /machine name/);
      }
      assert.equal((await listMachines()).length, 1);
    });

    it('accepts a 128-character name of letters, digits, _ and -', async () => {
      const name = `A_9-${'b'.repeat(124)}`;
      assert.equal((await sim(['machine', 'create', '--name', name])).exitCode, 0);
      assert.equal((await sim(['machine', 'delete', '--name', name, '-f'])).exitCode, 0);
    });

    it('rejects positional names and unknown flags the way clap does', async () => {
      assertUsageError(await sim(['machine', 'start', 'bot-bottle-a']), /unexpected argument 'bot-bottle-a'/);
      assertUsageError(await sim(['machine', 'create', 'bot-bottle-x']), /unexpected argument 'bot-bottle-x'/);
      assertUsageError(await sim(['machine', 'create', '--name', 'x', '--bogus']), /unexpected argument '--bogus'/);
      assertUsageError(await sim(['machine', 'create', '--name', 'x', '--cpus', 'many']), /invalid value 'many' for '--cpus <N>'/);
      assertUsageError(await sim(['machine', 'exec', '-n', 'bot-bottle-a', '--', 'true']), /unexpected argument '-n'/);
      assertUsageError(await sim(['machine', 'checkpoint', '--help']), /unrecognized subcommand 'checkpoint'/);
      assertSmolvmError(await sim(['machine', 'exec', 'bot-bottle-a', '--', 'true']));
    });

    it('takes -n for --name on start, stop, status and delete', async () => {
      assert.equal((await sim(['machine', 'create', '-n', 'bot-bottle-alias'])).exitCode, 0);
      assert.match((await sim(['machine', 'start', '-n', 'bot-bottle-alias'])).stdout, /running \(PID: \d+\)/);
      assert.equal(JSON.parse((await sim(['machine', 'status', '-n', 'bot-bottle-alias', '--json'])).stdout).state, 'running');
      assert.match((await sim(['machine', 'stop', '-n', 'bot-bottle-alias'])).stdout, /Stopped machine: bot-bottle-alias/);
      assert.match((await sim(['machine', 'delete', '-n', 'bot-bottle-alias', '-f'])).stdout, /Deleted machine: bot-bottle-alias/);
    });
  });

  describe('machine create / start / stop / delete', () => {
    it('prints Created machine first, and refuses a taken name', async () => {
      const created = await sim(['machine', 'create', '--name', 'bot-bottle-life', '--image', 'localhost:5000/x:1', '--cpus', '2', '--mem', '1024', '--net', '-e', 'A=1', '-w', '/home/node']);
      assert.equal(created.exitCode, 0, created.stderr);
      assert.equal(created.stdout.split('\n')[0], 'Created machine: bot-bottle-life');
      const machine = (await listMachines()).find((m) => m.name === 'bot-bottle-life');
      assert.deepEqual([machine?.state, machine?.cpus, machine?.memory_mib, machine?.network, machine?.pid], ['created', 2, 1024, true, null]);
      assertSmolvmError(await sim(['machine', 'create', '--name', 'bot-bottle-life']), /machine 'bot-bottle-life' already exists/);
    });

    it('refuses --from together with --image', async () => {
      assertUsageError(await sim(['machine', 'create', '--name', 'x', '--image', 'a:b', '--from', '/tmp/x.smolmachine']), /cannot be used with/);
    });

    it('starts, says when already running, stops keeping the disk, and stops idempotently', async () => {
      const start = await sim(['machine', 'start', '--name', 'bot-bottle-life']);
      assert.match(start.stdout, /^Machine 'bot-bottle-life' running \(PID: \d+\)$/m);
      assert.match((await sim(['machine', 'start', '--name', 'bot-bottle-life'])).stdout, /Machine 'bot-bottle-life' already running \(PID: \d+\)/);
      await sim(['machine', 'exec', '--name', 'bot-bottle-life', '--', 'touch', '/home/node/kept']);
      const stop = await sim(['machine', 'stop', '--name', 'bot-bottle-life']);
      assert.equal(stop.stdout, "Stopping machine 'bot-bottle-life'...\nStopped machine: bot-bottle-life\n");
      const again = await sim(['machine', 'stop', '--name', 'bot-bottle-life']);
      assert.equal(again.exitCode, 0);
      assert.match(again.stdout, /Machine 'bot-bottle-life' is not running \(state: stopped\)/);
      assert.ok(existsSync(join(machineRootfs(data.dataDir, 'bot-bottle-life'), 'home/node/kept')));
      assert.equal((await listMachines()).find((m) => m.name === 'bot-bottle-life')?.state, 'stopped');
    });

    it('asks before deleting without -f and refuses unless the answer is y', async () => {
      const declined = await sim(['machine', 'delete', '--name', 'bot-bottle-life'], {}, 'n\n');
      assert.equal(declined.exitCode, 0);
      assert.match(declined.stderr, /Delete machine 'bot-bottle-life'\? \[y\/N\]/);
      const closed = await sim(['machine', 'delete', '--name', 'bot-bottle-life']);
      assert.match(closed.stdout, /Cancelled/);
      assert.ok((await listMachines()).some((m) => m.name === 'bot-bottle-life'));
      const forced = await sim(['machine', 'delete', '--name', 'bot-bottle-life', '-f']);
      assert.match(forced.stdout, /Deleted machine: bot-bottle-life\n$/);
      assert.ok(!(await listMachines()).some((m) => m.name === 'bot-bottle-life'));
      assertSmolvmError(await sim(['machine', 'delete', '--name', 'bot-bottle-life', '-f']));
    });

    it('prints the data dir holding agent-console.log, which records start, exec and stop', async () => {
      const result = await sim(['machine', 'data-dir', '--name', 'bot-bottle-a']);
      const dir = result.stdout.trim();
      await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true']);
      const log = readFileSync(join(dir, 'agent-console.log'), 'utf8');
      assert.match(log, /boot complete/);
      assert.match(log, /exec: true/);
      assertSmolvmError(await sim(['machine', 'data-dir', '--name', 'bot-bottle-nope']));
    });
  });

  describe('machine exec', () => {
    it('really runs inside the machine root: as root, with the node user, changing real files', async () => {
      const result = await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'sh', '-c', 'id -u; grep ^node: /etc/passwd; mkdir -p /srv/made && touch /srv/made/f && chown 1000:1000 /srv/made/f && chmod 640 /srv/made/f']);
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal(result.stdout, '0\nnode:x:1000:1000::/home/node:/bin/sh\n');
      const made = statSync(join(machineRootfs(data.dataDir, 'bot-bottle-a'), 'srv/made/f'));
      assert.deepEqual([made.uid, made.gid, made.mode & 0o7777], [1000, 1000, 0o640]);
      const removed = await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'rm', '-f', '/srv/made/f']);
      assert.equal(removed.exitCode, 0);
      assert.ok(!existsSync(join(machineRootfs(data.dataDir, 'bot-bottle-a'), 'srv/made/f')));
    });

    it('passes the guest exit status and output through, with -w and -e applied', async () => {
      const result = await sim(['machine', 'exec', '--name', 'bot-bottle-a', '-w', '/home/node', '-e', 'GREETING=hi there', '--', 'sh', '-c', 'pwd; echo "$GREETING"; echo oops >&2; exit 7']);
      assert.deepEqual([result.exitCode, result.stdout, result.stderr], [7, '/home/node\nhi there\n', 'oops\n']);
      assertSmolvmError(await sim(['machine', 'exec', '--name', 'bot-bottle-a', '-w', '/nowhere', '--', 'true']));
      assertSmolvmError(await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'no-such-command']));
    });

    it('forwards stdin with -i', async () => {
      const result = await sim(['machine', 'exec', '--name', 'bot-bottle-a', '-i', '--', 'cat'], {}, 'through stdin\n');
      assert.equal(result.stdout, 'through stdin\n');
    });

    it('ends a command at --timeout with status 124', async () => {
      const started = Date.now();
      const result = await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--timeout', '1s', '--', 'sh', '-c', 'sleep 30; echo never']);
      assert.equal(result.exitCode, 124);
      assert.ok(Date.now() - started < 10_000);
      assert.doesNotMatch(result.stdout, /never/);
    });

    it('cuts output over 11 MiB with an error', async () => {
      const result = await runSim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'sh', '-c', 'yes | head -c 12000000'], { dataDir: data.dataDir });
      assertSmolvmError(result, /11534336/);
      assert.equal(Buffer.byteLength(result.stdout), OUTPUT_CAP);
    });

    it('fails on a stopped machine with the documented Error line', async () => {
      await createRunningMachine(data.dataDir, 'bot-bottle-stopped');
      await sim(['machine', 'stop', '--name', 'bot-bottle-stopped']);
      const result = await sim(['machine', 'exec', '--name', 'bot-bottle-stopped', '--', 'true']);
      assertSmolvmError(result, /^Error: agent operation failed: connect: machine 'bot-bottle-stopped' is not running\. /m);
    });

    it('creates a gzip tar of / without the six excluded folders', async () => {
      const archive = '/var/tmp/.bot-bottle-commit.tar.gz';
      const result = await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'tar', '--create', '--gzip', ...TAR_EXCLUDES, `--file=${archive}`, '--directory=/', '.']);
      assert.equal(result.exitCode, 0, result.stderr);
      const entries = tarListing(join(machineRootfs(data.dataDir, 'bot-bottle-a'), archive));
      for (const excluded of ['./proc/', './sys/', './dev/', './run/', './tmp/', './var/tmp/']) {
        assert.ok(!entries.some((e) => e.startsWith(excluded)), `${excluded} is in the archive`);
      }
      for (const kept of ['./home/node/project/README.md', './etc/passwd', './usr/bin/tar', './var/log/']) assert.ok(entries.includes(kept), `${kept} missing`);
      const root = machineRootfs(data.dataDir, 'bot-bottle-a');
      for (const volatile of ['proc/cpuinfo', 'sys/kernel/hostname', 'dev/null', 'run/smolvm-agent.pid', 'tmp/claude-1000', 'var/tmp/cache.bin']) {
        assert.ok(lstatSync(join(root, volatile)), `${volatile} exists in the machine, so only the excludes keep it out`);
      }
      await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'rm', '-f', archive]);
    });

    it('makes the in-VM tar exit 1 (files changed) or 2 with SMOLVM_SIM_TAR_EXIT', async () => {
      const tarArgs = ['machine', 'exec', '--name', 'bot-bottle-a', '--', 'tar', '-czf', '/var/tmp/t.tar.gz', '-C', '/', 'etc'];
      const changed = await sim(tarArgs, { SMOLVM_SIM_TAR_EXIT: '1' });
      assert.equal(changed.exitCode, 1);
      assert.match(changed.stderr, /file changed as we read it/);
      assert.doesNotMatch(changed.stderr, /^Error:/m);
      assert.ok(existsSync(join(machineRootfs(data.dataDir, 'bot-bottle-a'), 'var/tmp/t.tar.gz')));
      const fatal = await sim(tarArgs, { SMOLVM_SIM_TAR_EXIT: '2@bot-bottle-a' });
      assert.equal(fatal.exitCode, 2);
      assert.match(fatal.stderr, /Exiting with failure status/);
      assert.equal((await sim(tarArgs, { SMOLVM_SIM_TAR_EXIT: '2@other-machine' })).exitCode, 0);
    });

    it('refuses a second concurrent exec with SMOLVM_SIM_BUSY_EXEC=1', async () => {
      const env = { SMOLVM_SIM_BUSY_EXEC: '1' };
      const first = sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'sleep', '1.5'], env);
      await new Promise((r) => setTimeout(r, 600));
      assertSmolvmError(await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true'], env), /busy/);
      assert.equal((await first).exitCode, 0);
      assert.equal((await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true'], env)).exitCode, 0);
    });
  });

  describe('machine cp', () => {
    it('copies a file into the machine and back unchanged, with progress on stderr', async () => {
      const source = join(data.scratch, 'payload.bin');
      writeFileSync(source, randomBytes(3 * 1024 * 1024));
      const up = await sim(['machine', 'cp', source, 'bot-bottle-a:/home/node/payload.bin']);
      assert.equal(up.exitCode, 0, up.stderr);
      // The shapes of smolvm's ProgressBar (src/cli/mod.rs:114-169); test/integration/sim-source.test.ts has the redraws.
      assert.match(up.stderr, /Uploading .* -> \/home\/node\/payload\.bin: 3\.0 MB \/ 3\.0 MB \(100\.0%, [\d.]+ [KMG]?B\/s\)\n$/);
      const inGuest = statSync(join(machineRootfs(data.dataDir, 'bot-bottle-a'), 'home/node/payload.bin'));
      assert.deepEqual([inGuest.uid, inGuest.mode & 0o777], [0, 0o644]);
      const back = join(data.scratch, 'back.bin');
      const down = await sim(['machine', 'cp', 'bot-bottle-a:/home/node/payload.bin', back]);
      assert.equal(down.exitCode, 0, down.stderr);
      assert.match(down.stderr, /Downloading \/home\/node\/payload\.bin -> .*: 3\.0 MB \([\d.]+ [KMG]?B\/s\)\n$/);
      assert.equal(sha256File(back), sha256File(source));
    });

    it('follows the `:` rules and copies single files from running machines only', async () => {
      assertSmolvmError(await sim(['machine', 'cp', join(data.scratch, 'a'), join(data.scratch, 'b')]), /machine:path/);
      assertSmolvmError(await sim(['machine', 'cp', '/tmp/odd:name', 'bot-bottle-a:/tmp/x']));
      assertSmolvmError(await sim(['machine', 'cp', 'bot-bottle-a:/etc', join(data.scratch, 'etc')]), /Is a directory/);
      assertSmolvmError(await sim(['machine', 'cp', 'bot-bottle-a:/no/such/file', join(data.scratch, 'none')]), /No such file/);
      assertSmolvmError(await sim(['machine', 'cp', 'bot-bottle-stopped:/etc/passwd', join(data.scratch, 'p')]), /is not running/);
    });

    it('slows down to SMOLVM_SIM_CP_RATE bytes per second', async () => {
      const started = Date.now();
      const result = await sim(['machine', 'cp', 'bot-bottle-a:/usr/bin/tar', join(data.scratch, 'tar')], { SMOLVM_SIM_CP_RATE: String(Math.round(statSync('/usr/bin/tar').size * 1.25)) });
      assert.equal(result.exitCode, 0);
      assert.ok(Date.now() - started >= 700, `took ${Date.now() - started} ms`);
    });
  });

  describe('fault injection', () => {
    it('fails a subcommand with SMOLVM_SIM_FAIL, an exit code and a message, per machine', async () => {
      const failed = await sim(['machine', 'cp', 'bot-bottle-a:/etc/passwd', join(data.scratch, 'p')], { SMOLVM_SIM_FAIL: 'cp=5', SMOLVM_SIM_FAIL_MESSAGE: 'simulated cp failure' });
      assert.deepEqual([failed.exitCode, failed.stderr], [5, 'Error: simulated cp failure\n']);
      assertSmolvmError(await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'tar', '--version'], { SMOLVM_SIM_FAIL: 'exec:tar' }));
      assert.equal((await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true'], { SMOLVM_SIM_FAIL: 'exec:tar' })).exitCode, 0);
      assert.equal((await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true'], { SMOLVM_SIM_FAIL: 'exec@bot-bottle-other' })).exitCode, 0);
      assertSmolvmError(await sim(['pack', 'create', '--image', 'localhost:1/x:y', '-o', join(data.scratch, 'out')], { SMOLVM_SIM_FAIL: 'pack' }), /simulated failure at pack/);
    });

    it('hangs with SMOLVM_SIM_HANG until the process group is killed, leaving no process behind', async () => {
      const child = spawn(simBin, ['machine', 'cp', 'bot-bottle-a:/etc/passwd', join(data.scratch, 'hang')], { detached: true, stdio: 'ignore', env: simEnv(data.dataDir, { SMOLVM_SIM_HANG: 'cp' }) });
      const group = child.pid as number;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      await waitUntil(() => liveProcessesInGroup(group).length >= 2, 5000);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(child.exitCode, null, 'still hanging');
      process.kill(-group, 'SIGKILL');
      await exited;
      await waitUntil(() => liveProcessesInGroup(group).length === 0, 3000);
      assert.deepEqual(liveProcessesInGroup(group), []);
    });

    it('shows a forced state from SMOLVM_SIM_STATE_<name> or `sim set-state`', async () => {
      const unreachable = await runSim(['machine', 'ls', '--json'], { dataDir: data.dataDir, env: { 'SMOLVM_SIM_STATE_bot_bottle_a': 'unreachable' } });
      assert.equal((JSON.parse(unreachable.stdout) as Array<{ name: string; state: string }>).find((m) => m.name === 'bot-bottle-a')?.state, 'unreachable');
      assertSmolvmError(await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true'], { 'SMOLVM_SIM_STATE_bot-bottle-a': 'failed' }));
      assert.equal((await sim(['sim', 'set-state', '--name', 'bot-bottle-a', 'frozen'])).exitCode, 0);
      assert.equal(JSON.parse((await sim(['machine', 'status', '--name', 'bot-bottle-a', '--json'])).stdout).state, 'frozen');
      assertSmolvmError(await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true']), /frozen/);
      await sim(['sim', 'set-state', '--name', 'bot-bottle-a', 'clear']);
      assert.equal(JSON.parse((await sim(['machine', 'status', '--name', 'bot-bottle-a', '--json'])).stdout).state, 'running');
    });

    it('logs every invocation to SMOLVM_SIM_LOG and delays with SMOLVM_SIM_DELAY', async () => {
      const log = join(data.scratch, 'calls.jsonl');
      const started = Date.now();
      await sim(['machine', 'ls', '--json'], { SMOLVM_SIM_LOG: log, SMOLVM_SIM_DELAY: 'ls=400' });
      assert.ok(Date.now() - started >= 400);
      await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true'], { SMOLVM_SIM_LOG: log });
      assert.deepEqual(readSimLog(log).map((call) => call.argv), [['machine', 'ls', '--json'], ['machine', 'exec', '--name', 'bot-bottle-a', '--', 'true']]);
    });
  });

  describe('concurrency and helpers', () => {
    it('lets exactly one of two concurrent creates of a name win, and runs two machines\' commands at once', async () => {
      const results = await Promise.all([1, 2].map(() => sim(['machine', 'create', '--name', 'bot-bottle-race'])));
      assert.deepEqual(results.map((r) => r.exitCode).sort(), [0, 1]);
      await sim(['machine', 'start', '--name', 'bot-bottle-race']);
      const both = await Promise.all(['bot-bottle-a', 'bot-bottle-race'].map((name) => sim(['machine', 'exec', '--name', name, '--', 'sh', '-c', `sleep 0.5; echo ${name} > /var/tmp/who`])));
      assert.deepEqual(both.map((r) => r.exitCode), [0, 0]);
      for (const name of ['bot-bottle-a', 'bot-bottle-race']) assert.equal(readFileSync(join(machineRootfs(data.dataDir, name), 'var/tmp/who'), 'utf8'), `${name}\n`);
      assert.equal((await listMachines()).filter((m) => m.name === 'bot-bottle-race').length, 1);
    });

    it('packs a stopped machine with --from-vm and refuses a running one', async () => {
      assertSmolvmError(await sim(['pack', 'create', '--from-vm', 'bot-bottle-a', '-o', join(data.scratch, 'running')]), /is running/);
      await sim(['machine', 'stop', '--name', 'bot-bottle-race']);
      const out = join(data.scratch, 'from-vm');
      const packed = await sim(['pack', 'create', '--from-vm', 'bot-bottle-race', '-o', out]);
      assert.equal(packed.exitCode, 0, packed.stderr);
      assert.match(packed.stdout, /^Packed: /m);
      assert.equal((await sim(['machine', 'create', '--name', 'bot-bottle-race-copy', '--from', `${out}.smolmachine`])).exitCode, 0);
      assert.equal(readFileSync(join(machineRootfs(data.dataDir, 'bot-bottle-race-copy'), 'var/tmp/who'), 'utf8'), 'bot-bottle-race\n');
    });

    it('creates and starts the two demo bottles with `sim demo`', async () => {
      const demo = makeSimDataDir();
      try {
        const result = await runSim(['sim', 'demo'], { dataDir: demo.dataDir });
        assert.equal(result.exitCode, 0, result.stderr);
        const listed = JSON.parse((await runSim(['machine', 'ls', '--json'], { dataDir: demo.dataDir })).stdout) as Array<{ name: string; state: string }>;
        assert.deepEqual(listed.map((m) => [m.name, m.state]), [['bot-bottle-demo-api', 'running'], ['bot-bottle-demo-docs', 'running']]);
        assert.equal((await runSim(['sim', 'demo'], { dataDir: demo.dataDir })).exitCode, 0);
      } finally {
        demo.cleanup();
      }
    });
  });

  describe('pack create and create --from', () => {
    let registry: Registry;
    let pushedRef: string;
    let sidecar: string;

    before(async () => {
      registry = await startRegistry();
      const pushed = await pushImage(registry.pushHost, 'bot-bottle/committed', 'v1', [gzipLayer(tarDirectory(buildImageTree(join(data.scratch, 'image-tree'))))], {
        config: { User: 'node', WorkingDir: '/home/node', Env: ['PATH=/usr/bin:/bin', 'COLOR=blue'], Cmd: ['/bin/sh'] },
      });
      pushedRef = pushed.ref;
    });

    after(async () => registry?.stop());

    it('pulls the image and writes the launcher and the sidecar, printing the closing lines', async () => {
      const out = join(data.scratch, 'state', 'committed-smolmachine');
      mkdirSync(join(data.scratch, 'state'), { recursive: true });
      const result = await sim(['pack', 'create', '--image', pushedRef, '-o', out]);
      assert.equal(result.exitCode, 0, result.stderr);
      const lines = result.stdout.split('\n');
      for (const prefix of [`Packed: ${out} (`, `Assets: ${out}.smolmachine (`, `Run with: ${out}`, 'Note: ', 'Options: ']) {
        assert.ok(lines.some((line) => line.startsWith(prefix)), `no line starting with ${prefix}\n${result.stdout}`);
      }
      assert.ok(statSync(out).mode & 0o111, 'launcher is executable');
      sidecar = `${out}.smolmachine`;
      const bytes = readFileSync(sidecar);
      assert.equal(bytes.subarray(bytes.length - 64, bytes.length - 56).toString(), 'SMOLPACK');
      const manifestStart = Number(bytes.readBigUInt64LE(bytes.length - 64 + 36));
      const manifest = JSON.parse(bytes.subarray(manifestStart, bytes.length - 64).toString()) as Record<string, unknown>;
      for (const key of ['mode', 'image', 'digest', 'platform', 'cmd', 'env', 'workdir', 'cpus', 'mem', 'network', 'created', 'smolvm_version', 'assets']) assert.ok(key in manifest, key);
      assert.deepEqual([manifest.image, manifest.workdir, 'user' in manifest], [pushedRef, '/home/node', false]);
    });

    it('creates a machine from the sidecar with contents and modes kept, and every owner remapped to 501 when asked (smolvm before 1.8.1)', async () => {
      const created = await sim(['machine', 'create', '--name', 'bot-bottle-resumed', '--from', sidecar], { SMOLVM_SIM_REMAP_UID: '501' });
      assert.equal(created.exitCode, 0, created.stderr);
      assert.deepEqual(created.stdout.split('\n').slice(0, 2), ['Extracting .smolmachine assets...', 'Created machine: bot-bottle-resumed']);
      const root = machineRootfs(data.dataDir, 'bot-bottle-resumed');
      assert.equal(readFileSync(join(root, 'home/node/project/main.py'), 'utf8'), 'print("hello")\n');
      assert.equal(statSync(join(root, 'home/node/project/run.sh')).mode & 0o7777, 0o755);
      assert.equal(statSync(join(root, 'home/node/secret.txt')).mode & 0o7777, 0o640);
      assert.equal(statSync(join(root, 'var/shared')).mode & 0o7777, 0o1777);
      assert.equal(lstatSync(join(root, 'home/node/link')).isSymbolicLink(), true);
      const owners = new Set(walk(root).map((path) => `${lstatSync(path).uid}:${lstatSync(path).gid}`));
      assert.deepEqual([...owners], ['501:501']);
      const machine = (await listMachines()).find((m) => m.name === 'bot-bottle-resumed');
      assert.equal(machine?.image, pushedRef);
      await sim(['machine', 'start', '--name', 'bot-bottle-resumed']);
      assert.equal((await sim(['machine', 'exec', '--name', 'bot-bottle-resumed', '--', 'pwd'])).stdout, '/home/node\n');
      assert.equal((await sim(['machine', 'exec', '--name', 'bot-bottle-resumed', '--', 'sh', '-c', 'echo $COLOR'])).stdout, 'blue\n');
    });

    it('refuses a sidecar that is corrupt, truncated, not a smolmachine or for another CPU', async () => {
      const flipped = join(data.scratch, 'flipped.smolmachine');
      const bytes = readFileSync(sidecar);
      bytes[Math.floor(bytes.length / 2)] ^= 0xff;
      writeFileSync(flipped, bytes);
      assertSmolvmError(await sim(['machine', 'create', '--name', 'bad-flip', '--from', flipped]));
      const truncated = join(data.scratch, 'truncated.smolmachine');
      writeFileSync(truncated, readFileSync(sidecar));
      truncateSync(truncated, statSync(truncated).size - 100);
      assertSmolvmError(await sim(['machine', 'create', '--name', 'bad-trunc', '--from', truncated]), /not a \.smolmachine/);
      const junk = join(data.scratch, 'junk.smolmachine');
      writeFileSync(junk, randomBytes(4096));
      assertSmolvmError(await sim(['machine', 'create', '--name', 'bad-junk', '--from', junk]), /not a \.smolmachine/);
      // src/platform/mod.rs:249-264
      assertSmolvmError(await sim(['machine', 'create', '--name', 'bad-arch', '--from', sidecar], { SMOLVM_SIM_HOST_ARCH: 'riscv64' }), /^Error: agent operation failed: platform mismatch: this artifact is built for architecture '(amd64|arm64)'/m);
      const names = (await listMachines()).map((m) => m.name);
      assert.ok(!names.some((name) => String(name).startsWith('bad-')), names.join(','));
    });

    it('refuses -o ending in .smolmachine, an unreachable registry and a blob with a bad digest', async () => {
      assertSmolvmError(await sim(['pack', 'create', '--image', pushedRef, '-o', join(data.scratch, 'x.smolmachine')]), /\.smolmachine/);
      assertSmolvmError(await sim(['pack', 'create', '--image', '127.0.0.1:9/nothing:here', '-o', join(data.scratch, 'unreachable')]), /Connection refused/);
      const pushed = await pushImage(registry.pushHost, 'bot-bottle/tampered', 'v1', [gzipLayer(tarDirectory(buildImageTree(join(data.scratch, 'tamper-tree'))))]);
      const blob = blobPath(registry, pushed.layerDigests[0]);
      writeFileSync(blob, gzipSync(Buffer.concat([readFileSync(blob), Buffer.from('tampered')])));
      assertSmolvmError(await sim(['pack', 'create', '--image', pushed.ref, '-o', join(data.scratch, 'tampered')]), /digest mismatch/);
    });

    it('reads docker media types, plain tar layers, several layers and an index with another platform first', async () => {
      const lower = join(data.scratch, 'lower');
      mkdirSync(join(lower, 'etc/app'), { recursive: true });
      writeFileSync(join(lower, 'etc/app/base.conf'), 'base\n');
      const upper = join(data.scratch, 'upper');
      mkdirSync(join(upper, 'etc/app'), { recursive: true });
      writeFileSync(join(upper, 'etc/app/extra.conf'), 'extra\n');
      const layers: Layer[] = [gzipLayer(tarDirectory(lower), MEDIA.dockerLayerGzip), plainLayer(tarDirectory(upper))];
      const pushed = await pushImage(registry.pushHost, 'bot-bottle/layered', 'v1', layers, { format: 'docker', index: true });
      const out = join(data.scratch, 'layered');
      const packed = await sim(['pack', 'create', '--image', pushed.ref, '-o', out]);
      assert.equal(packed.exitCode, 0, packed.stderr);
      assert.equal((await sim(['machine', 'create', '--name', 'bot-bottle-layered', '--from', `${out}.smolmachine`])).exitCode, 0);
      const root = machineRootfs(data.dataDir, 'bot-bottle-layered');
      assert.deepEqual(readdirSync(join(root, 'etc/app')).sort(), ['base.conf', 'extra.conf']);
      assert.ok(!existsSync(join(root, 'WRONG_PLATFORM')));
    });

    it('round-trips a freeze: in-VM tar, cp out, push, pack, create --from', async () => {
      const archive = '/var/tmp/.bot-bottle-commit.tar.gz';
      const tar = await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'tar', '--create', '--gzip', ...TAR_EXCLUDES, `--file=${archive}`, '--directory=/', '.']);
      assert.ok(tar.exitCode <= 1, tar.stderr);
      const local = join(data.scratch, 'rootfs.tar.gz');
      assert.equal((await sim(['machine', 'cp', `bot-bottle-a:${archive}`, local])).exitCode, 0);
      await sim(['machine', 'exec', '--name', 'bot-bottle-a', '--', 'rm', '-f', archive]);
      const pushed = await pushImage(registry.pushHost, 'bot-bottle-committed-a', 'latest', [layerFromTarGz(readFileSync(local))], { config: { User: 'node', WorkingDir: '/home/node' } });
      const out = join(data.scratch, 'frozen', 'committed-smolmachine');
      mkdirSync(join(data.scratch, 'frozen'));
      assert.equal((await sim(['pack', 'create', '--image', pushed.ref, '-o', out])).exitCode, 0);
      // The seed's case: smolvm before 1.8.1 gave every file to the host user (501), so the
      // agent's /tmp/claude-1000 and home had to be chowned back.
      for (const args of [['machine', 'create', '--name', 'bot-bottle-thawed', '--from', `${out}.smolmachine`], ['machine', 'start', '--name', 'bot-bottle-thawed']]) {
        const result = await sim(args, { SMOLVM_SIM_REMAP_UID: '501' });
        assert.equal(result.exitCode, 0, result.stderr);
      }
      const root = machineRootfs(data.dataDir, 'bot-bottle-thawed');
      assert.ok(!existsSync(join(root, 'tmp')) && !existsSync(join(root, 'var/tmp')) && !existsSync(join(root, 'proc')));
      assert.equal(statSync(join(root, 'home/node/project/README.md')).uid, 501);
      const init = await sim(['machine', 'exec', '--name', 'bot-bottle-thawed', '--', 'sh', '-c', 'mkdir -p /tmp /var/tmp && chmod 1777 /tmp /var/tmp && chown -R 1000:1000 /home/node && stat -c %a /tmp']);
      assert.deepEqual([init.exitCode, init.stdout], [0, '1777\n']);
      assert.equal(statSync(join(root, 'home/node/project/README.md')).uid, 1000);
    });
  });
});

/** An image root owned by node (1000) with a few distinctive modes, a symlink and busybox as its tools. */
function buildImageTree(dir: string): string {
  assert.ok(existsSync(BUSYBOX), `${BUSYBOX} is missing: apt-get install busybox-static`);
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const tool of ['sh', 'pwd', 'cat', 'ls']) symlinkSync('busybox', join(dir, 'bin', tool));
  const files: Array<[string, string, number]> = [
    ['home/node/project/main.py', 'print("hello")\n', 0o644],
    ['home/node/project/run.sh', '#!/bin/sh\necho run\n', 0o755],
    ['home/node/secret.txt', 'secret\n', 0o640],
  ];
  for (const [path, content, mode] of files) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
    chmodSync(join(dir, path), mode);
  }
  mkdirSync(join(dir, 'var/shared'), { recursive: true });
  chmodSync(join(dir, 'var/shared'), 0o1777);
  symlinkSync('project/main.py', join(dir, 'home/node/link'));
  for (const path of walk(join(dir, 'home/node'))) chownSync(path, 1000, 1000);
  return dir;
}

function liveProcessesInGroup(group: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === group && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return members;
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
