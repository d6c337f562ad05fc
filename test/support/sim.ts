/**
 * Helpers to drive the smolvm stand-in (test/sim) from tests: where it is, a throwaway data
 * dir, the environment that puts it on PATH, and a runner that never throws on exit status.
 */
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The checkout holding this file (found upwards from here, or from the working directory). */
export const repoRoot = findRepoRoot();
/** Put this first on PATH to make the stand-in answer as `smolvm`. */
export const simBinDir = join(repoRoot, 'test/sim/bin');
export const simBin = join(simBinDir, 'smolvm');
export const simBundle = join(repoRoot, 'out/sim/smolvm.cjs');

function findRepoRoot(): string {
  const starts = [typeof __dirname === 'string' ? __dirname : undefined, process.cwd()];
  for (const start of starts) {
    for (let dir = start; dir && dir !== dirname(dir); dir = dirname(dir)) {
      if (existsSync(join(dir, 'test/sim/bin/smolvm'))) return dir;
    }
  }
  throw new Error('cannot find the bot-bottle checkout (test/sim/bin/smolvm)');
}

/** Builds the stand-in when its bundle is missing or older than any file under test/sim. */
export function ensureSimBuilt(): void {
  if (simBundleIsFresh()) return;
  const built = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repoRoot, stdio: 'inherit' });
  if (built.status !== 0) throw new Error(`building the stand-in failed: node scripts/build.mjs exited with ${built.status ?? built.signal}`);
  if (!simBundleIsFresh()) throw new Error(`node scripts/build.mjs left ${simBundle} older than the files under test/sim`);
}

function simBundleIsFresh(): boolean {
  return existsSync(simBundle) && newestChangeUnder(join(repoRoot, 'test/sim')) <= statSync(simBundle).mtimeMs;
}

/** The latest mtime of `dir` and everything under it (a folder's changes when a file is added or removed). */
function newestChangeUnder(dir: string): number {
  const entries = readdirSync(dir, { recursive: true }) as string[];
  return Math.max(statSync(dir).mtimeMs, ...entries.map((entry) => statSync(join(dir, entry)).mtimeMs));
}

export function simEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, SMOLVM_DATA_DIR: dataDir, PATH: `${simBinDir}:${process.env.PATH ?? ''}`, ...extra };
}

export interface SimDataDir {
  /** `SMOLVM_DATA_DIR` for the stand-in. */
  dataDir: string;
  /** A scratch folder beside it, removed with it. */
  scratch: string;
  cleanup(): void;
}

let templateCache: string | undefined;

/**
 * A fresh data dir under the system temp folder. The stand-in's base root filesystem template
 * (about 2 s to build) is built once per test process and copied in.
 */
export function makeSimDataDir(): SimDataDir {
  const top = mkdtempSync(join(tmpdir(), 'bb-sim-'));
  const dataDir = join(top, 'smolvm');
  const scratch = join(top, 'scratch');
  mkdirSync(dataDir);
  mkdirSync(scratch);
  seedTemplate(dataDir);
  return { dataDir, scratch, cleanup: () => rmSync(top, { recursive: true, force: true }) };
}

function seedTemplate(dataDir: string): void {
  if (!templateCache) {
    ensureSimBuilt();
    templateCache = mkdtempSync(join(tmpdir(), 'bb-sim-template-'));
    const seeded = spawnSync(process.execPath, [simBundle, 'machine', 'create', '--name', 'template-seed'], { env: simEnv(templateCache), encoding: 'utf8' });
    if (seeded.status !== 0) throw new Error(`could not build the stand-in's rootfs template: ${seeded.stderr}`);
    const cache = templateCache;
    process.once('exit', () => rmSync(cache, { recursive: true, force: true }));
  }
  spawnSync('cp', ['-a', join(templateCache, 'templates'), join(dataDir, 'templates')]);
}

export interface SimResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunSimOptions {
  dataDir: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

/** Runs `smolvm ARGS...` (the real executable wrapper) and returns status and output. */
export async function runSim(args: readonly string[], options: RunSimOptions): Promise<SimResult> {
  const result = await execa(simBin, [...args], {
    env: simEnv(options.dataDir, options.env),
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    input: options.input ?? '',
    timeout: options.timeoutMs ?? 60_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** `create --image` + `start`; throws with the stand-in's output if either fails. */
export async function createRunningMachine(dataDir: string, name: string, createArgs: readonly string[] = ['--image', 'localhost:5000/bot-bottle/base:latest']): Promise<void> {
  for (const args of [['machine', 'create', '--name', name, ...createArgs], ['machine', 'start', '--name', name]]) {
    const result = await runSim(args, { dataDir });
    if (result.exitCode !== 0) throw new Error(`smolvm ${args.join(' ')} failed (${result.exitCode}): ${result.stderr}`);
  }
}

/** The host folder that is machine `name`'s `/`. */
export function machineRootfs(dataDir: string, name: string): string {
  return join(dataDir, 'machines', name, 'rootfs');
}

export interface LoggedCall {
  time: string;
  pid: number;
  argv: string[];
  cwd: string;
}

/** The calls recorded through `SMOLVM_SIM_LOG=file`. */
export function readSimLog(file: string): LoggedCall[] {
  if (!existsSync(file) || statSync(file).size === 0) return [];
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as LoggedCall);
}
