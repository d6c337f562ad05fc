/**
 * A whole machine's worth of real parts for one integration test file: the smolvm stand-in with its
 * own data folder, a podman-backed docker, Distribution's registry and skopeo on PATH, and the
 * core's Services pointed at them, as the extension would build them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryLog } from '../support/memoryLog';
import { Services } from '../../src/core/services';
import type { CoreSettings } from '../../src/core/settings';
import { requireContainerTools, startContainerService, type ContainerService } from './containers';
import { ensureSimBuilt } from './sim';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const SIM_BIN = join(REPO, 'test', 'sim', 'bin', 'smolvm');

/**
 * What freeze and resume run in a bottle (and the stand-in's `sh`), and what these tests run in
 * one themselves: a bottle needs no other program (see keepOnlyTools).
 */
export const BOTTLE_TOOLS: readonly string[] = [
  'sh', 'id', 'tar', 'gzip', 'zstd', 'rm', 'stat', 'uname', 'du', 'df', 'mkdir', 'chown', 'chmod', 'cat', 'find', 'grep', 'date',
  'ln', 'touch', 'sleep',
];

/** The top-level folders a freeze leaves out. */
export const EXCLUDED_TOP = ['proc', 'sys', 'dev', 'run', 'tmp', 'var/tmp'];

export interface World {
  readonly root: string;
  readonly dataDir: string;
  readonly stateRoot: string;
  /** HOME while the world runs, so that bot-bottle's own `~/.bot-bottle` is the test's. */
  readonly home: string;
  readonly log: MemoryLog;
  readonly toolLog: MemoryLog;
  readonly containers: ContainerService;
  services(overrides?: Partial<CoreSettings>): Services;
  /** Runs the stand-in directly (test set-up, not the code under test). */
  sim(...args: string[]): string;
  /** A running `bot-bottle-<slug>` holding only BOTTLE_TOOLS, or the whole base root filesystem. */
  createRunningBottle(slug: string, options?: { wholeRootfs?: boolean }): string;
  rootfs(machine: string): string;
  /** Environment changes a test wants for a while (fault injection); returns the undo. */
  withEnv(env: Record<string, string>): () => void;
  stop(): Promise<void>;
}

export async function startWorld(label: string): Promise<World> {
  requireContainerTools();
  ensureSimBuilt();
  const root = mkdtempSync(join(tmpdir(), `bot-bottle ${label} `));
  const dataDir = join(root, 'smolvm data');
  const stateRoot = join(root, 'state: bottles');
  const home = join(root, 'home');
  mkdirSync(home);
  const containers = await startContainerService();
  const restoreEnv = setEnv({ ...containers.env, SMOLVM_DATA_DIR: dataDir, HOME: home });
  const log = new MemoryLog();
  const toolLog = new MemoryLog();
  const world: World = {
    root,
    dataDir,
    stateRoot,
    home,
    log,
    toolLog,
    containers,
    services: (overrides = {}) =>
      new Services(
        { paths: { smolvm: SIM_BIN, docker: '', crane: '', skopeo: '', registry: '' }, stateDir: stateRoot, machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1', ...overrides },
        { main: log, tools: toolLog },
      ),
    sim: (...args) => execFileSync(SIM_BIN, args, { encoding: 'utf8', env: process.env, stdio: ['ignore', 'pipe', 'pipe'] }),
    createRunningBottle(slug, options = {}) {
      const machine = `bot-bottle-${slug}`;
      world.sim('machine', 'create', '--name', machine, '--image', 'node:22');
      if (!options.wholeRootfs) keepOnlyTools(world.rootfs(machine), BOTTLE_TOOLS);
      world.sim('machine', 'start', '--name', machine);
      return machine;
    },
    rootfs: (machine) => join(dataDir, 'machines', machine, 'rootfs'),
    withEnv: setEnv,
    async stop() {
      restoreEnv();
      await containers.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return world;
}

/**
 * Leaves in a bottle's root filesystem only `tools` (those of them it has, in /usr/bin, with the
 * links among them) and the libraries they load: a tool it lacks stays missing, so every probe
 * (zstd, GNU find) answers as in the whole root filesystem. Every freeze archives, compresses, copies and packs the whole tree: a
 * test that never looks at the other files need not pay for them.
 */
export function keepOnlyTools(rootfs: string, tools: readonly string[]): void {
  const bin = join(rootfs, 'usr/bin');
  const kept = new Set<string>();
  for (let name of tools.filter((tool) => existsSync(join(bin, tool)))) {
    kept.add(name);
    while (lstatSync(join(bin, name)).isSymbolicLink()) kept.add((name = basename(readlinkSync(join(bin, name)))));
  }
  for (const name of readdirSync(bin)) if (!kept.has(name)) rmSync(join(bin, name));
  const libraries = new Set([...kept].flatMap((name) => librariesOf(join(bin, name))));
  for (const dir of ['usr/lib', 'usr/lib64'].map((d) => join(rootfs, d))) {
    for (const path of (readdirSync(dir, { recursive: true }) as string[]).map((p) => join(dir, p))) {
      if (lstatSync(path).isFile() && !libraries.has(basename(path))) rmSync(path);
    }
  }
}

/** The file names of the libraries `ldd` says `binary` loads. */
function librariesOf(binary: string): string[] {
  const out = spawnSync('ldd', [binary], { encoding: 'utf8' }).stdout ?? '';
  return [...out.matchAll(/(\/\S+)\s+\(0x/g)].map((match) => basename(match[1]));
}

function setEnv(env: Record<string, string>): () => void {
  const before = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [key, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

export interface Entry {
  type: 'file' | 'dir' | 'link' | 'other';
  mode: number;
  uid: number;
  /** sha256 of a file's content, or a link's target. */
  content?: string;
}

/** Every path under `dir` (relative, no leading slash) with its type, mode and content. */
export function describeTree(dir: string, exclude: readonly string[] = []): Map<string, Entry> {
  const result = new Map<string, Entry>();
  const walk = (relative: string) => {
    for (const name of readdirSync(join(dir, relative))) {
      const path = relative ? `${relative}/${name}` : name;
      if (exclude.includes(path)) continue;
      const full = join(dir, path);
      const info = lstatSync(full);
      const mode = info.mode & 0o7777;
      if (info.isSymbolicLink()) result.set(path, { type: 'link', mode, uid: info.uid, content: readlinkSync(full) });
      else if (info.isDirectory()) {
        result.set(path, { type: 'dir', mode, uid: info.uid });
        walk(path);
      } else if (info.isFile()) result.set(path, { type: 'file', mode, uid: info.uid, content: sha256(readFileSync(full)) });
      else result.set(path, { type: 'other', mode, uid: info.uid });
    }
  };
  walk('');
  return result;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Processes whose command line mentions `needle` (leftover registries, copies, sleeps). */
export function processesMentioning(needle: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes(needle) && !line.includes('ps -eo'));
}
