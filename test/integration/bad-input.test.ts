/**
 * The bad input catalogue, part 2: inputs that need real parts — the smolvm stand-in, docker on
 * podman, Distribution, skopeo, mounts (a read-only tmpfs, a read-only bind mount, small tmpfs that
 * fill up), a second process holding a bottle's lock. Each case is an input and the exact message
 * the user reads (for accepted input: exactly what is shown), then a check that nothing was lost
 * and nothing left behind. Part 1, without real tools, is test/unit/bad-input.test.ts.
 *
 * Needs root for `mount` (as CI runs). As root, chmod does not stop writes, so "no write
 * permission" is a read-only mount; "disk full" is a tmpfs too small for what is written.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { resumeBottle } from '../../src/core/resume';
import type { Services } from '../../src/core/services';
import type { CoreSettings } from '../../src/core/settings';
import { exportSnapshot, importSnapshot } from '../../src/core/snapshots';
import type { LockOwner, Snapshot } from '../../src/core/state';
import { runTool } from '../../src/core/run';
import { requireContainerTools } from '../support/containers';
import { processesMentioning, REPO, sha256, SIM_BIN, startWorld, type World } from '../support/world';

/** The listing is there only for a snapshot the native path froze with GNU find in the bottle. */
const SNAPSHOT_FILES = ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json', 'rootfs.listing.gz'];
const presentIn = (dir: string) => SNAPSHOT_FILES.filter((name) => existsSync(join(dir, name)));
const PROBE_HINT = 'If an interactive session is attached, smolvm may refuse a second exec.';

/** What the user sees: the error's message, or (for input that is accepted) the value shown. */
type Expected = { error: string | RegExp } | { shows: string };

/** Values a case learns while it runs (a child's pid, a temp path) for its expected message. */
type Vars = Record<string, string>;

interface Case {
  input: string;
  /** Throws for refused input; returns what is shown for accepted input. */
  act(v: Vars): Promise<unknown>;
  expected(v: Vars): Expected;
  /** Nothing lost, nothing left behind. */
  after?(v: Vars): void | Promise<void>;
}

const signal = () => new AbortController().signal;

let world: World;
/** os.tmpdir() of the code under test: every case must leave it empty. */
let hostTemp: string;
const mounts: string[] = [];
const children: ChildProcess[] = [];

function services(overrides: Partial<CoreSettings> = {}): Services {
  return world.services(overrides);
}

function toolPaths(overrides: Partial<CoreSettings['paths']>): CoreSettings['paths'] {
  return { ...world.services().settings.paths, ...overrides };
}

/** A folder under the world's root (made if missing). */
function dir(...parts: string[]): string {
  const path = join(world.root, ...parts);
  mkdirSync(path, { recursive: true });
  return path;
}

/** Mounts and remembers it for after(); a sandbox that forbids mount fails the case with the reason. */
function mount(args: string[], target: string): void {
  try {
    execFileSync('mount', [...args, target], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    throw new Error(`mount ${args.join(' ')} ${target} is not permitted here (${String((error as { stderr?: Buffer }).stderr ?? error).trim()}); this case needs root and mount`);
  }
  mounts.push(target);
}

function readOnlyTmpfs(name: string): string {
  const target = dir(name);
  mount(['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs'], target);
  return target;
}

function smallTmpfs(name: string, bytes: number): string {
  const target = dir(name);
  mount(['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs'], target);
  return target;
}

/** The same files, read-only from now on (a bind mount of `source` onto itself). */
function makeReadOnly(target: string): void {
  mount(['--bind', target], target);
  execFileSync('mount', ['-o', 'remount,bind,ro', target]);
}

/** sha256 of each file of a bottle's last good snapshot. */
function snapshotHashes(stateRoot: string, slug: string): string[] {
  return presentIn(join(stateRoot, slug)).map((name) => `${name} ${sha256(readFileSync(join(stateRoot, slug, name)))}`);
}

/** A state folder holding a copy of `slug`'s last good snapshot, at `stateRoot`. */
function copySnapshot(slug: string, stateRoot: string): void {
  mkdirSync(join(stateRoot, slug), { recursive: true });
  for (const name of presentIn(join(world.stateRoot, slug))) cpSync(join(world.stateRoot, slug, name), join(stateRoot, slug, name));
}

async function machines(): Promise<string[]> {
  const s = services();
  return (await runTool(s.run, s.smolvm().list())).map((m) => m.name).sort();
}

/**
 * Everything a failed freeze could leave: extra state files, temp folders, the VM archive, the lock, a
 * registry. A freeze that succeeded over a snapshot keeps that one in the history: `historyEntries`.
 */
async function assertNothingLeft(stateRoot: string, slug: string, machine = `bot-bottle-${slug}`, historyEntries = 0): Promise<void> {
  const bottleDir = join(stateRoot, slug);
  const expected = historyEntries > 0 ? [...SNAPSHOT_FILES, 'history'] : SNAPSHOT_FILES;
  const extra = existsSync(bottleDir) ? readdirSync(bottleDir).filter((n) => !expected.includes(n)) : [];
  assert.deepEqual(extra, [], `left in the state folder ${bottleDir}`);
  if (historyEntries > 0) assert.equal(readdirSync(join(bottleDir, 'history')).length, historyEntries, 'the snapshots it replaced are in the history');
  assert.deepEqual(readdirSync(hostTemp), [], 'left in the temp folder');
  const vmTmp = join(world.rootfs(machine), 'var/tmp');
  if (existsSync(vmTmp)) assert.deepEqual(readdirSync(vmTmp).filter((n) => n.startsWith('.bot-bottle-commit')), [], 'the archive is still in the VM');
  assert.deepEqual(processesMentioning('registry serve').filter((l) => l.includes(hostTemp)), [], 'a registry still runs');
}

/** A second VS Code window: a separate Node process that takes the bottle's lock and holds it. */
async function otherWindowHolding(stateRoot: string, slug: string): Promise<{ owner: LockOwner; child: ChildProcess }> {
  const script = join(dir('scripts'), 'hold-lock.mts');
  writeFileSync(script, [
    `import { StateStore } from ${JSON.stringify(pathToFileURL(join(REPO, 'src/core/state.ts')).href)};`,
    'const lock = await new StateStore(process.argv[2]).lock(process.argv[3], "freeze");',
    'process.stdout.write(JSON.stringify(lock.owner) + "\\n");',
    'process.stdin.on("end", async () => { await lock.release(); process.exit(0); });',
    'process.stdin.resume();',
  ].join('\n'));
  // Its own temp folder: tsx keeps a cache there, which is not the code under test's to clean.
  const env = { ...process.env, TMPDIR: dir('lock holder temp') };
  const child = spawn(process.execPath, ['--import', 'tsx', script, stateRoot, slug], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)));
  });
  return { owner: JSON.parse(line) as LockOwner, child };
}

function frozeLine(stateRoot: string, slug: string): string {
  return `Froze bot-bottle-${slug} into ${stateRoot}/${slug}/committed-smolmachine.smolmachine. To move it to another machine, copy it with its launcher ${stateRoot}/${slug}/committed-smolmachine.`;
}

async function freezeAndTell(s: Services, slug: string): Promise<string> {
  await freezeBottle(s, slug, { signal: signal() });
  return world.log.lines.filter((l) => l.startsWith('Froze ')).at(-1)!;
}

/** Another program's port on 127.0.0.1, held for the length of a case; counts who connects to it. */
async function otherProgramsPort(): Promise<{ port: number; connections(): number; close(): void }> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve());
  });
  return { port: (server.address() as { port: number }).port, connections: () => connections, close: () => server.close() };
}

/** smolvm's own `Error:` line when run by hand with `args`, which it must refuse. */
function smolvmRefusal(args: string[]): string {
  try {
    world.sim(...args);
  } catch (error) {
    const line = String((error as { stderr?: string }).stderr ?? '').split('\n').find((l) => l.startsWith('Error: '));
    assert.ok(line, `smolvm ${args.join(' ')} failed without an Error: line: ${String(error)}`);
    return line;
  }
  assert.fail(`smolvm ${args.join(' ')} was expected to refuse, but it succeeded`);
}

/** A docker that is real except that `docker image inspect` prints garbage. */
function dockerPrintingGarbage(): string {
  const path = join(dir('shims'), 'docker-garbage');
  writeFileSync(path, `#!/bin/sh\nif [ "$1" = image ] && [ "$2" = inspect ]; then echo 'garbage'; exit 0; fi\nexec '${requireContainerTools().docker}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

const CASES: Case[] = [
  // -- state folders and temp folders ---------------------------------------------------------------
  {
    input: 'state folder with spaces, ":" and unicode (native image)',
    act: async (v) => freezeAndTell(services({ stateDir: (v.root = dir('stäte: föld ✓')) }), 'odd'),
    expected: (v) => ({ shows: frozeLine(v.root, 'odd') }),
    after: (v) => assertNothingLeft(v.root, 'odd'),
  },
  {
    input: 'state folder with spaces, ":" and unicode (docker image, skopeo)',
    act: async (v) => freezeAndTell(services({ stateDir: (v.root = dir('stäte: dockér ✓')), imageBuilder: 'docker' }), 'odd'),
    expected: (v) => ({ shows: frozeLine(v.root, 'odd') }),
    after: (v) => assertNothingLeft(v.root, 'odd'),
  },
  {
    input: 'temp folder (TMPDIR) with ":" in its path',
    act: async (v) => {
      const undo = world.withEnv({ TMPDIR: (v.temp = dir('tmp: colon')) });
      try {
        return await freezeBottle(services(), 'keep', { signal: signal() });
      } finally {
        undo();
      }
    },
    expected: (v) => ({
      error: `Copying the archive failed: The temp folder ${v.temp} has ":" in its path, which smolvm machine cp would read as a machine name. Start VS Code with TMPDIR set to a folder without ":".`,
    }),
    after: async (v) => {
      assert.deepEqual(readdirSync(v.temp), [], 'the temp folder under TMPDIR is removed');
      assert.deepEqual(snapshotHashes(world.stateRoot, 'keep'), keepHashes, 'the last good snapshot is untouched');
      await assertNothingLeft(world.stateRoot, 'keep');
    },
  },
  {
    input: 'state folder on a read-only file system (empty)',
    act: async (v) => freezeBottle(services({ stateDir: (v.root = readOnlyTmpfs('ro-empty')) }), 'keep', { signal: signal() }),
    expected: (v) => ({ error: `Cannot create the state folder ${v.root}/keep: the file system is read-only (EROFS). Check botBottle.stateDir.` }),
    after: async (v) => {
      assert.deepEqual(readdirSync(v.root), []);
      await assertNothingLeft(v.root, 'keep');
    },
  },
  {
    input: 'state folder made read-only while it holds the last good snapshot',
    act: async (v) => {
      v.root = dir('ro-kept');
      copySnapshot('keep', v.root);
      makeReadOnly(v.root);
      return freezeBottle(services({ stateDir: v.root }), 'keep', { signal: signal() });
    },
    expected: (v) => ({ error: `Cannot write in the state folder ${v.root}/keep: the file system is read-only (EROFS). Check botBottle.stateDir.` }),
    after: async (v) => {
      assert.deepEqual(snapshotHashes(v.root, 'keep'), keepHashes, 'the last good snapshot is untouched');
      await assertNothingLeft(v.root, 'keep');
    },
  },
  {
    input: 'state folder on a disk with room for the last good snapshot but not a second one',
    act: async (v) => {
      const size = presentIn(join(world.stateRoot, 'keep')).reduce((sum, name) => sum + statSync(join(world.stateRoot, 'keep', name)).size, 0);
      v.root = smallTmpfs('full-state', Math.ceil(size / 4096) * 4096 + 256 * 1024);
      copySnapshot('keep', v.root);
      return freezeBottle(services({ stateDir: v.root }), 'keep', { signal: signal() });
    },
    // The native path copies the archive into the layer store, on the state folder's disk: the copy step
    // measures that disk against the archive's size first, and refuses before copying anything.
    expected: (v) => ({
      error: new RegExp(`^Copying the archive failed: Not enough free space on this computer for the bottle's archive: it is [\\d.]+ [KMG]?B, and the disk of ${escape(v.root)}/\\.layers has [\\d.]+ [KMG]?B free\\. Nothing was copied\\. Free some space there \\(it holds the snapshots, or the temp folder\\)\\.$`),
    }),
    after: async (v) => {
      assert.deepEqual(snapshotHashes(v.root, 'keep'), keepHashes, 'the last good snapshot is untouched');
      assert.deepEqual(readdirSync(join(v.root, '.layers')).filter((name) => name.startsWith('.incoming-')), [], 'no half-copied layer is left');
      await assertNothingLeft(v.root, 'keep');
    },
  },

  // -- export and import targets --------------------------------------------------------------------
  {
    input: 'export to a read-only folder',
    act: async (v) => exportSnapshot(await keepSnapshot(), join((v.root = readOnlyTmpfs('ro-export')), 'keep')),
    expected: (v) => ({ error: `Could not export the snapshot of keep to ${v.root}/keep.smolmachine: the file system is read-only (EROFS). Nothing was exported.` }),
    after: (v) => assert.deepEqual(readdirSync(v.root), []),
  },
  {
    input: 'export to a full disk (a 64 KiB tmpfs)',
    act: async (v) => exportSnapshot(await keepSnapshot(), join((v.root = smallTmpfs('full-export', 64 * 1024)), 'keep')),
    expected: (v) => ({ error: `Could not export the snapshot of keep to ${v.root}/keep.smolmachine: the disk is full (ENOSPC). Nothing was exported.` }),
    after: (v) => {
      assert.deepEqual(readdirSync(v.root), [], 'no partial file is left');
      assert.deepEqual(snapshotHashes(world.stateRoot, 'keep'), keepHashes);
    },
  },
  {
    input: 'export to a folder with spaces, ":" and unicode, then import it back from there',
    act: async (v) => {
      const files = await exportSnapshot(await keepSnapshot(), join(dir('exports: ünï ✓'), 'keep: copy'));
      const imported = await importSnapshot(services().store, files.sidecar, 'keep-copy');
      assert.deepEqual(readFileSync(imported.sidecar), readFileSync(join(world.stateRoot, 'keep', 'committed-smolmachine.smolmachine')));
      assert.deepEqual(readFileSync(imported.launcher), readFileSync(join(world.stateRoot, 'keep', 'committed-smolmachine')));
      v.root = world.root;
      return `exported to ${files.sidecar.slice(world.root.length + 1)}; imported from ${imported.record!.importedFrom!.slice(world.root.length + 1)}`;
    },
    expected: () => ({ shows: 'exported to exports: ünï ✓/keep: copy.smolmachine; imported from exports: ünï ✓/keep: copy.smolmachine' }),
  },
  {
    input: 'import into a state folder on a full disk (a 64 KiB tmpfs)',
    act: async (v) => importSnapshot(services({ stateDir: (v.root = smallTmpfs('full-import', 64 * 1024)) }).store, (await keepSnapshot()).sidecar, 'fat'),
    expected: () => ({ error: `Could not import ${world.stateRoot}/keep/committed-smolmachine.smolmachine: the disk is full (ENOSPC). Nothing was imported.` }),
    after: (v) => assert.deepEqual(readdirSync(join(v.root, 'fat')), [], 'no partial import and no lock left'),
  },

  // -- tools -------------------------------------------------------------------------------------------
  {
    input: 'botBottle.paths.smolvm pointing at nothing, then Freeze',
    act: async (v) => freezeBottle(services({ stateDir: (v.root = dir('state-missing-smolvm')), paths: toolPaths({ smolvm: '/nonexistent/smolvm' }) }), 'keep', { signal: signal() }),
    expected: () => ({ error: 'botBottle.paths.smolvm is set to "/nonexistent/smolvm", but that does not exist.' }),
    after: (v) => assert.deepEqual(readdirSync(v.root), [], 'nothing was started: not even a lock'),
  },
  {
    input: 'botBottle.paths.smolvm pointing at a file that is not executable, then Freeze',
    act: async (v) => {
      v.tool = join(dir('shims'), 'smolvm-not-executable');
      writeFileSync(v.tool, readFileSync(SIM_BIN));
      chmodSync(v.tool, 0o644);
      return freezeBottle(services({ paths: toolPaths({ smolvm: v.tool }) }), 'keep', { signal: signal() });
    },
    expected: (v) => ({ error: `botBottle.paths.smolvm is set to "${v.tool}", but that is not executable.` }),
    after: () => assertNothingLeft(world.stateRoot, 'keep'),
  },
  {
    input: 'botBottle.paths.docker pointing at nothing, then Freeze with the docker image builder',
    act: async () => freezeBottle(services({ imageBuilder: 'docker', paths: toolPaths({ docker: '/nonexistent/docker' }) }), 'keep', { signal: signal() }),
    expected: () => ({ error: 'botBottle.paths.docker is set to "/nonexistent/docker", but that does not exist.' }),
    after: () => assertNothingLeft(world.stateRoot, 'keep'),
  },
  {
    input: 'botBottle.paths.smolvm pointing at a program that is not smolvm (/bin/false)',
    act: async () => freezeBottle(services({ paths: toolPaths({ smolvm: '/bin/false' }) }), 'keep', { signal: signal() }),
    expected: () => ({ error: `Checking that the bottle answers failed: smolvm exec is not available for bot-bottle-keep (exit 1: <no output>). ${PROBE_HINT}` }),
    after: () => assertNothingLeft(world.stateRoot, 'keep'),
  },
  {
    input: 'a docker whose image inspect prints garbage',
    act: async () => freezeBottle(services({ imageBuilder: 'docker', paths: toolPaths({ docker: dockerPrintingGarbage() }) }), 'keep', { signal: signal() }),
    expected: () => ({ error: 'Building the image failed: docker image inspect printed "garbage" where an image id (sha256:...) was expected' }),
    after: async () => {
      assert.deepEqual(snapshotHashes(world.stateRoot, 'keep'), keepHashes);
      await assertNothingLeft(world.stateRoot, 'keep');
      assert.equal(execFileSync('docker', ['images', '--quiet', 'bot-bottle-committed-keep'], { encoding: 'utf8' }).trim(), '', 'the half-made image was removed');
    },
  },

  // -- machines --------------------------------------------------------------------------------------
  {
    input: 'a machine in a state this extension does not know ("paused"), listed',
    act: async () => {
      world.createRunningBottle('paused');
      const undo = world.withEnv({ 'SMOLVM_SIM_STATE_bot-bottle-paused': 'paused' });
      try {
        const bottle = (await services().catalog.refresh()).find((b) => b.slug === 'paused');
        return `${bottle?.machineName}: ${bottle?.machine?.state}`;
      } finally {
        undo();
      }
    },
    expected: () => ({ shows: 'bot-bottle-paused: paused' }),
  },
  {
    input: 'Freeze of a machine in the unknown state "paused"',
    act: async () => {
      const undo = world.withEnv({ 'SMOLVM_SIM_STATE_bot-bottle-paused': 'paused' });
      try {
        return await freezeBottle(services(), 'paused', { signal: signal() });
      } finally {
        undo();
      }
    },
    expected: () => ({
      error: "Checking that the bottle answers failed: bot-bottle-paused is paused, not running (exit 1: Error: agent operation failed: connect: machine 'bot-bottle-paused' is not running. Use 'smolvm machine start --name bot-bottle-paused' first.). Start it, then freeze again.",
    }),
    after: () => assertNothingLeft(world.stateRoot, 'paused'),
  },
  {
    // smolvm runs exec as the image's USER (src/cli/vm_common.rs:315-356, :349) and exec has no --user (src/cli/machine.rs:2625-2675).
    input: 'Freeze of a bottle whose image runs commands as a non-root USER',
    act: async () => {
      const undo = world.withEnv({ SMOLVM_SIM_IMAGE_USER: 'node@bot-bottle-asnode' });
      try {
        world.createRunningBottle('asnode');
      } finally {
        undo();
      }
      return freezeBottle(services(), 'asnode', { signal: signal() });
    },
    expected: () => ({
      error:
        'Checking that the bottle answers failed: smolvm runs commands in bot-bottle-asnode as user "1000", not as root (uid 0), because its image sets a USER. ' +
        'A freeze must read every file, and smolvm machine exec cannot be told to run as root. Nothing was archived. ' +
        'Make the bottle from an image that runs as root (the agent can still switch to its own user), or freeze a bottle resumed from a snapshot: those run commands as root.',
    }),
    after: async () => {
      await assertNothingLeft(world.stateRoot, 'asnode');
      assert.ok(!existsSync(join(world.stateRoot, 'asnode', 'snapshot.json')), 'no snapshot');
    },
  },
  {
    input: 'Freeze of a bottle whose machine is gone (deleted outside the extension)',
    act: async () => freezeBottle(services(), 'gone', { signal: signal() }),
    expected: () => ({ error: "Checking that the bottle answers failed: There is no machine bot-bottle-gone any more: smolvm lists none of that name (exit 1: Error: vm not found: bot-bottle-gone). Refresh the Bottles view." }),
    after: () => assertNothingLeft(world.stateRoot, 'gone'),
  },
  {
    input: 'Freeze while an interactive session holds the bottle and smolvm refuses a second exec',
    act: async () => {
      const session = spawn(SIM_BIN, ['machine', 'exec', '--name', 'bot-bottle-keep', '--', 'sleep', '30'], { stdio: 'ignore', detached: true });
      children.push(session);
      const sessions = join(world.dataDir, 'machines', 'bot-bottle-keep', 'sessions');
      await waitFor(() => existsSync(sessions) && readdirSync(sessions).length > 0);
      const undo = world.withEnv({ SMOLVM_SIM_BUSY_EXEC: '1' });
      try {
        return await freezeBottle(services(), 'keep', { signal: signal() });
      } finally {
        undo();
        process.kill(-session.pid!, 'SIGTERM');
        await new Promise((resolve) => session.once('exit', resolve));
      }
    },
    expected: () => ({ error: /^Checking that the bottle answers failed: smolvm exec is not available for bot-bottle-keep \(exit 1: Error: agent operation failed: exec: machine 'bot-bottle-keep' is busy: .+\)\. If an interactive session is attached, smolvm may refuse a second exec\.$/ }),
    after: async () => {
      assert.deepEqual(snapshotHashes(world.stateRoot, 'keep'), keepHashes);
      await assertNothingLeft(world.stateRoot, 'keep');
    },
  },
  {
    input: 'a machine deleted while its archive is being copied out',
    act: async () => {
      world.createRunningBottle('vanish');
      const undo = world.withEnv({ SMOLVM_SIM_DELAY: 'cp@bot-bottle-vanish=1500' });
      let deleted = false;
      try {
        return await freezeBottle(services(), 'vanish', {
          signal: signal(),
          onProgress: (p) => {
            if (p.stepId !== 'copy' || deleted) return;
            deleted = true;
            world.sim('machine', 'delete', '--name', 'bot-bottle-vanish', '-f');
          },
        });
      } finally {
        undo();
      }
    },
    expected: () => ({ error: "Copying the archive failed: smolvm exited with status 1: Error: vm not found: bot-bottle-vanish" }),
    after: async () => {
      assert.ok(!(await machines()).includes('bot-bottle-vanish'));
      assert.ok(world.log.lines.includes(`Cleanup "remove the archive in the VM" failed: smolvm exited with status 1: Error: vm not found: bot-bottle-vanish`), 'the failed cleanup is in the log');
      await assertNothingLeft(world.stateRoot, 'vanish');
      assert.ok(!existsSync(join(world.stateRoot, 'vanish', 'committed-smolmachine.smolmachine')), 'no snapshot was made');
    },
  },

  // -- sidecars that are not smolmachines ----------------------------------------------------------------
  {
    input: 'Resume of a sidecar replaced by a text file (no record)',
    act: async (v) => {
      const store = services({ stateDir: (v.root = dir('state-text-sidecar')) }).store;
      await store.ensureBottleDir('text');
      writeFileSync(store.sidecarPath('text'), 'this is not a machine\n'.repeat(20));
      return resumeBottle(services({ stateDir: v.root }), (await store.readSnapshot('text'))!, { signal: signal() });
    },
    expected: (v) => ({ error: `Checking the snapshot failed: The snapshot ${v.root}/text/committed-smolmachine.smolmachine is not a .smolmachine file (its footer has no SMOLPACK magic). It was not used.` }),
    after: async () => assert.ok(!(await machines()).includes('bot-bottle-text'), 'no machine was created'),
  },
  {
    input: 'Resume of a sidecar with a smolmachine footer but no record, not confirmed',
    act: async (v) => {
      const store = services({ stateDir: (v.root = dir('state-unrecorded-sidecar')) }).store;
      await store.ensureBottleDir('unrecorded');
      writeFileSync(store.sidecarPath('unrecorded'), readFileSync(join(world.stateRoot, 'keep', 'committed-smolmachine.smolmachine')));
      return resumeBottle(services({ stateDir: v.root }), (await store.readSnapshot('unrecorded'))!, { signal: signal() });
    },
    expected: (v) => ({ error: `Checking the snapshot failed: The snapshot ${v.root}/unrecorded/committed-smolmachine.smolmachine has no record, so it cannot be checked against what was frozen: it may be damaged or changed. Resume it only if you trust where it came from.` }),
    after: async () => assert.ok(!(await machines()).includes('bot-bottle-unrecorded'), 'no machine was created'),
  },
  {
    input: 'Resume of a sidecar with a smolmachine footer but damaged contents (no record, the user confirmed)',
    act: async (v) => {
      const store = services({ stateDir: (v.root = dir('state-damaged-sidecar')) }).store;
      await store.ensureBottleDir('damaged');
      const bytes = readFileSync(join(world.stateRoot, 'keep', 'committed-smolmachine.smolmachine'));
      bytes[1000] ^= 0xff;
      writeFileSync(store.sidecarPath('damaged'), bytes);
      // smolvm 1.9.3 checks no CRC on create --from (test/sim/SMOLVM-SOURCE.md §5): the damage shows when it unpacks.
      v.smolvmSays = smolvmRefusal(['machine', 'create', '--name', 'bot-bottle-damaged', '--from', store.sidecarPath('damaged')]);
      return resumeBottle(services({ stateDir: v.root }), (await store.readSnapshot('damaged'))!, { signal: signal(), allowUnverified: true });
    },
    // smolvm's own words change between versions, so they are read from smolvm for this very file;
    // the message must carry them word for word.
    expected: (v) => ({ error: `Creating the machine from the snapshot failed: smolvm exited with status 1: ${v.smolvmSays}` }),
    after: async () => assert.ok(!(await machines()).includes('bot-bottle-damaged'), 'the half-made machine was deleted'),
  },

  // -- ports and the pull host -------------------------------------------------------------------------
  {
    // Distribution takes its listen address from REGISTRY_HTTP_ADDR over its config file: a user's
    // variable would send it to a port another program holds, and the freeze would fail.
    input: "REGISTRY_HTTP_ADDR in the environment naming another program's port, docker image builder",
    act: async (v) => {
      const other = await otherProgramsPort();
      const undo = world.withEnv({ REGISTRY_HTTP_ADDR: `127.0.0.1:${other.port}` });
      try {
        v.root = dir('state-registry-env');
        const shown = await freezeAndTell(services({ stateDir: v.root, imageBuilder: 'docker' }), 'keep');
        return `${shown} Connections to the other program's port: ${other.connections()}.`;
      } finally {
        undo();
        other.close();
      }
    },
    expected: (v) => ({ shows: `${frozeLine(v.root, 'keep')} Connections to the other program's port: 0.` }),
    after: (v) => assertNothingLeft(v.root, 'keep'),
  },
  {
    // 127.0.0.10: crane speaks plain http to any name containing "127.0.0.1" (ggcr@v0.19.0:pkg/name/registry.go:94-96), https to 127.0.0.2.
    input: 'pull host naming another address of this machine (127.0.0.10), native image builder',
    act: async (v) => {
      v.root = dir('state-other-address');
      const shown = await freezeAndTell(services({ stateDir: v.root, pullHost: '127.0.0.10' }), 'keep');
      return `${shown} Pulled from ${lastPullHost()}.`;
    },
    expected: (v) => ({ shows: `${frozeLine(v.root, 'keep')} Pulled from 127.0.0.10.` }),
    after: (v) => assertNothingLeft(v.root, 'keep'),
  },
  {
    input: 'pull host naming an address this machine does not have (a TEST-NET address, native)',
    act: async (v) => freezeBottle(services({ pullHost: (v.addr = foreignAddress()) }), 'keep', { signal: signal() }),
    expected: (v) => ({ error: `Packing the snapshot failed: Cannot serve the image for the pack on ${v.addr} (from botBottle.registry.pullHost "${v.addr}"): ${v.addr} is not an address of this machine.` }),
    after: async () => {
      assert.deepEqual(snapshotHashes(world.stateRoot, 'keep'), keepHashes);
      await assertNothingLeft(world.stateRoot, 'keep');
    },
  },
  {
    input: 'pull host 0.0.0.0 (every network), refused before any work (native)',
    act: async () => freezeBottle(services({ pullHost: '0.0.0.0' }), 'keep', { signal: signal() }),
    expected: () => ({ error: 'botBottle.registry.pullHost must name one address, not "0.0.0.0" (every network).' }),
    after: async () => {
      assert.ok(!world.log.lines.at(-1)?.startsWith('Freezing '), 'no freeze started');
      await assertNothingLeft(world.stateRoot, 'keep');
    },
  },

  // -- a second VS Code window -------------------------------------------------------------------------
  {
    input: 'Freeze while a second window (another process) freezes the same bottle',
    act: async (v) => {
      const other = await otherWindowHolding(world.stateRoot, 'keep');
      v.owner = JSON.stringify(other.owner);
      v.lock = readFileSync(join(world.stateRoot, 'keep', '.bot-bottle.lock'), 'utf8');
      return freezeBottle(services(), 'keep', { signal: signal() });
    },
    expected: (v) => {
      const owner = JSON.parse(v.owner) as LockOwner;
      return { error: `A freeze of bottle "keep" is already running (by process ${owner.pid} on ${hostname()}, since ${owner.since}). Wait for it to finish.` };
    },
    after: async (v) => {
      assert.equal(readFileSync(join(world.stateRoot, 'keep', '.bot-bottle.lock'), 'utf8'), v.lock, 'the other window keeps its lock');
      assert.deepEqual(snapshotHashes(world.stateRoot, 'keep'), keepHashes);
      assert.ok(!existsSync(join(world.rootfs('bot-bottle-keep'), 'var/tmp/.bot-bottle-commit.tar.gz')), 'nothing ran in the VM');
    },
  },
  {
    input: 'Resume while a second window freezes the same bottle',
    act: async (v) => {
      v.owner = JSON.stringify((await services().store.lockOwner('keep'))!);
      return resumeBottle(services(), await keepSnapshot(), { signal: signal(), asSlug: 'keep-twin' });
    },
    expected: (v) => {
      const owner = JSON.parse(v.owner) as LockOwner;
      return { error: `A freeze of bottle "keep" is already running (by process ${owner.pid} on ${hostname()}, since ${owner.since}). Wait for it to finish.` };
    },
    after: async () => assert.ok(!(await machines()).includes('bot-bottle-keep-twin'), 'no machine was created'),
  },
  {
    input: 'Freeze of a bottle whose stale lock cannot be removed (the lock file is a mount point)',
    act: async (v) => {
      const root = (v.root = dir('state-stuck-lock'));
      copySnapshot('keep', root);
      v.lock = join(root, 'keep', '.bot-bottle.lock');
      const stale = JSON.stringify({ pid: spawnSync('true').pid, host: hostname(), operation: 'freeze', since: '2026-01-01T00:00:00.000Z' });
      writeFileSync(v.lock, stale);
      writeFileSync(join(dir('stuck-lock'), 'lock'), stale);
      mount(['--bind', join(dir('stuck-lock'), 'lock')], v.lock);
      return freezeBottle(services({ stateDir: root }), 'keep', { signal: signal() });
    },
    expected: (v) => ({ error: `The lock ${v.lock} of bottle "keep" is left from work that was interrupted, and it cannot be removed: it is in use, e.g. a mount point (EBUSY). Delete ${v.lock} by hand.` }),
    after: (v) => {
      assert.deepEqual(snapshotHashes(v.root, 'keep'), keepHashes, 'the snapshot is as it was');
      assert.deepEqual(readdirSync(join(v.root, 'keep')).sort(), ['.bot-bottle.lock', ...presentIn(join(v.root, 'keep'))].sort(), 'no guard or temp file is left');
    },
  },
  {
    input: 'Freeze after the second window was killed while holding the lock (stale lock taken over)',
    act: async () => {
      const holder = children.at(-1)!;
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      holder.kill('SIGKILL');
      await exited;
      return freezeAndTell(services(), 'keep');
    },
    expected: () => ({ shows: frozeLine(world.stateRoot, 'keep') }),
    after: async () => {
      keepHashes = snapshotHashes(world.stateRoot, 'keep');
      await assertNothingLeft(world.stateRoot, 'keep', undefined, 1);
    },
  },
];

/** The last good snapshot of `keep`, made in before(); cases check it is never damaged. */
let keepHashes: string[];

async function keepSnapshot(): Promise<Snapshot> {
  return (await services().store.readSnapshot('keep'))!;
}

/** The host of the last `smolvm pack create --image HOST:PORT/...` in the tools log. */
function lastPullHost(): string {
  const host = world.toolLog.lines.flatMap((l) => /pack create --image ([^:\s]+):\d+\//.exec(l)?.[1] ?? []).at(-1);
  assert.ok(host, 'a pack create in the tools log');
  return host;
}

/** An address reserved for documentation (RFC 5737) that no interface of this machine has. */
function foreignAddress(): string {
  const own = new Set(Object.values(networkInterfaces()).flat().map((i) => i?.address));
  const address = ['192.0.2.1', '198.51.100.1', '203.0.113.1'].find((a) => !own.has(a));
  assert.ok(address, 'every TEST-NET candidate is an address of this machine');
  return address;
}

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !condition(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) throw new Error('timed out waiting for the session to start');
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const tally = { tried: 0, passed: 0 };

describe('bad input catalogue (real parts: stand-in smolvm, docker on podman, registry, skopeo, mounts)', function () {
  let restoreTemp: () => void;
  before(async () => {
    world = await startWorld('bad-input');
    hostTemp = join(world.root, 'host temp');
    mkdirSync(hostTemp);
    restoreTemp = world.withEnv({ TMPDIR: hostTemp });
    world.createRunningBottle('keep');
    world.createRunningBottle('odd');
    await freezeBottle(services(), 'keep', { signal: signal() });
    keepHashes = snapshotHashes(world.stateRoot, 'keep');
  });
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const target of mounts.reverse()) execFileSync('umount', [target]);
    restoreTemp?.();
    await world?.stop();
    await world?.containers.stop();
    console.log(`\n  bad input: ${tally.tried} cases, ${tally.passed} passed (real parts)\n`);
  });

  it('has a distinct input for every case', () => {
    assert.equal(new Set(CASES.map((c) => c.input)).size, CASES.length);
  });

  for (const testCase of CASES) {
    it(testCase.input, async () => {
      tally.tried++;
      await check(testCase);
      tally.passed++;
    });
  }
});

async function check(testCase: Case): Promise<void> {
  const v: Vars = {};
  let outcome: { error: Error } | { value: unknown };
  try {
    outcome = { value: await testCase.act(v) };
  } catch (error) {
    outcome = { error: error as Error };
  }
  const expected = testCase.expected(v);
  // BAD_INPUT_VERBOSE=1 prints the catalogue: each input and what the user reads.
  if (process.env.BAD_INPUT_VERBOSE) console.log(`      ${testCase.input}\n        → ${'error' in outcome ? outcome.error.message : String(outcome.value)}`);
  if ('error' in expected) {
    assert.ok('error' in outcome, `expected a refusal, but it was accepted: ${String((outcome as { value: unknown }).value)}`);
    if (typeof expected.error === 'string') assert.equal(outcome.error.message, expected.error);
    else {
      assert.ok(expected.error.source.startsWith('^') && expected.error.source.endsWith('$'), 'a message pattern is anchored at both ends');
      assert.match(outcome.error.message, expected.error);
    }
  } else {
    if ('error' in outcome) throw outcome.error;
    assert.equal(outcome.value, expected.shows);
  }
  await testCase.after?.(v);
}
