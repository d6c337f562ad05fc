/**
 * Freeze benchmark: builds a synthetic root in a stand-in bottle, then freezes it with each path
 * (docker, native, native with an uncompressed archive), interleaved, several times each, and
 * prints per path the median of every step, the host side (from the archive on the host to the
 * sidecar written), the peak extra disk in the state and temp folders, the peak RSS of the
 * freezing process, and ratios against the docker path. It prints figures; it never fails on speed.
 *
 * Usage: npm run bench -- [--size MB] [--runs N]     (defaults: 500 MB, 3 runs per path)
 *
 * With `--changed MB` it measures incremental freezes instead (bench/incremental.ts): per path a
 * first freeze, a second after rewriting that many MB, and the floor. `--paths native,docker`
 * picks the paths (by label).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes } from '../src/core/format';
import { startContainerService, type ContainerService } from '../test/support/containers';
import { REPO, SIM_BIN } from '../test/support/world';
import { BENCH_PATHS, type BenchPath, type FreezeJob, type FreezeResult } from './jobs';
import { allocatedBytes, median, watchPeakDisk } from './measure';
import { fillSyntheticRoot } from './synthetic-root';
import { printIncremental, rewriteData, storeBytes, timeFloor, type PairResult } from './incremental';

const SLUG = 'bench';
const MACHINE = `bot-bottle-${SLUG}`;

interface Folders {
  root: string;
  /** The stand-in's data (its machines and its pack staging): smolvm's side, not measured. */
  smolvm: string;
  /** The podman service's storage: docker's side, not measured. */
  infra: string;
  /** The state folder and the temp folder of the freezing process: what is measured. */
  state: string;
  temp: string;
}

interface Run {
  result: FreezeResult;
  /** Peak disk in the state and temp folders above what was there before the freeze. */
  extraDiskBytes: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { size: { type: 'string', default: '500' }, runs: { type: 'string', default: '3' }, changed: { type: 'string' }, paths: { type: 'string' } },
  });
  const sizeMb = Number(values.size);
  const runs = Number(values.runs);
  if (!(sizeMb > 0) || !(runs > 0)) throw new Error('--size (MB) and --runs must be positive numbers');
  ensureSimBuilt();
  const folders = makeFolders();
  let containers: ContainerService | undefined;
  try {
    process.env.TMPDIR = folders.infra;
    containers = await startContainerService({ storageDriver: 'overlay' });
    // HOME too: every freeze also leaves its snapshot in ~/.bot-bottle, which must be the bench's own.
    const env = { ...process.env, ...containers.env, SMOLVM_DATA_DIR: folders.smolvm, TMPDIR: folders.temp, HOME: folders.root };
    const root = createBottle(env, folders.smolvm);
    const started = Date.now();
    const synthetic = fillSyntheticRoot(join(root, 'opt', 'bench'), sizeMb);
    console.log(`Synthetic root: ${synthetic.files} files, ${formatBytes(synthetic.bytes)} (+ the stand-in's base root), written in ${seconds(Date.now() - started)}`);
    const paths = values.paths ? BENCH_PATHS.filter((p) => values.paths!.split(',').includes(p.label)) : BENCH_PATHS;
    if (values.changed !== undefined) {
      console.log(`${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); incremental: ${values.changed} MB changed between two freezes, one pair per path\n`);
      printIncremental(await runPairs(paths, Number(values.changed), env, folders, join(root, 'opt', 'bench', 'data')), Number(values.changed));
      return;
    }
    console.log(`${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); ${runs} runs per path, interleaved\n`);
    const results = await runInterleaved(runs, env, folders);
    printReport(results);
  } finally {
    await containers?.stop();
    rmSync(folders.root, { recursive: true, force: true });
  }
}

function ensureSimBuilt(): void {
  if (!existsSync(join(REPO, 'out', 'sim', 'smolvm.cjs'))) spawnSync('node', ['scripts/build.mjs'], { cwd: REPO, stdio: 'inherit' });
}

function makeFolders(): Folders {
  const root = mkdtempSync(join(tmpdir(), 'bb-bench-'));
  const folders = { root, smolvm: join(root, 'smolvm'), infra: join(root, 'infra'), state: join(root, 'state'), temp: join(root, 'temp') };
  for (const dir of [folders.smolvm, folders.infra, folders.state, folders.temp]) mkdirSync(dir);
  return folders;
}

/** A running stand-in bottle; returns its root folder on the host. */
function createBottle(env: NodeJS.ProcessEnv, smolvmData: string): string {
  for (const args of [['machine', 'create', '--name', MACHINE, '--image', 'node:22'], ['machine', 'start', '--name', MACHINE]]) {
    const result = spawnSync(SIM_BIN, args, { env, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`smolvm ${args.join(' ')}: ${result.stderr}`);
  }
  return join(smolvmData, 'machines', MACHINE, 'rootfs');
}

async function runInterleaved(runs: number, env: NodeJS.ProcessEnv, folders: Folders): Promise<Map<BenchPath, Run[]>> {
  const results = new Map<BenchPath, Run[]>(BENCH_PATHS.map((path) => [path, []]));
  for (let round = 1; round <= runs; round++) {
    for (const path of BENCH_PATHS) {
      const run = await freezeOnce(path, env, folders);
      results.get(path)!.push(run);
      console.log(`run ${round}/${runs} ${path.label.padEnd(12)} ${seconds(run.result.wallMs)}  (host side ${seconds(hostSideMs(run.result))})`);
    }
  }
  return results;
}

async function runPairs(paths: readonly BenchPath[], changedMb: number, env: NodeJS.ProcessEnv, folders: Folders, dataDir: string): Promise<PairResult[]> {
  const pairs: PairResult[] = [];
  for (const path of paths) {
    rmSync(folders.state, { recursive: true, force: true });
    mkdirSync(folders.state);
    const job: FreezeJob = { smolvm: SIM_BIN, stateDir: folders.state, slug: SLUG, imageBuilder: path.imageBuilder, compression: path.compression };
    const first = await runChild(job, env);
    const full = first.layers?.[0];
    const floorFile = full && join(folders.state, '.layers', 'sha256', full.digest.slice('sha256:'.length));
    const floorMs = floorFile ? timeFloor(floorFile) : undefined;
    const rewritten = rewriteData(dataDir, changedMb);
    const second = await runChild(job, env);
    console.log(`${path.label.padEnd(12)} first ${seconds(first.wallMs)}, second ${seconds(second.wallMs)} after rewriting ${formatBytes(rewritten)}`);
    pairs.push({ path, first, second, floorMs, floorBytes: full?.size, storeBytes: await storeBytes(folders.state) });
  }
  return pairs;
}

async function freezeOnce(path: BenchPath, env: NodeJS.ProcessEnv, folders: Folders): Promise<Run> {
  // Every run starts from no snapshot, so that "extra" is what the freeze needs on top of its result.
  rmSync(join(folders.state, SLUG), { recursive: true, force: true });
  const measured = [folders.state, folders.temp];
  const before = await allocatedBytes(measured);
  const job: FreezeJob = { smolvm: SIM_BIN, stateDir: folders.state, slug: SLUG, imageBuilder: path.imageBuilder, compression: path.compression };
  const watcher = watchPeakDisk(measured);
  const result = await runChild(job, env).finally(() => watcher.stop());
  const after = await allocatedBytes(measured);
  return { result, extraDiskBytes: (await watcher.stop()) - Math.max(before, after) };
}

function runChild(job: FreezeJob, env: NodeJS.ProcessEnv): Promise<FreezeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench', 'freeze-once.ts'), JSON.stringify(job)], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as FreezeResult);
      else reject(new Error(`the ${job.imageBuilder}/${job.compression} freeze failed (${code}):\n${stderr.slice(-4000)}`));
    });
  });
}

/** From the archive on the host to the sidecar written: the steps after `copy`, up to `pack`. */
function hostSideMs(result: FreezeResult): number {
  const ids = result.steps.map((s) => s.id);
  return result.steps.slice(ids.indexOf('copy') + 1, ids.indexOf('pack') + 1).reduce((sum, s) => sum + s.ms, 0);
}

interface Summary {
  steps: Map<string, number>;
  hostSideMs: number;
  wallMs: number;
  archiveBytes: number;
  sidecarBytes: number;
  extraDiskBytes: number;
  maxRssKib: number;
}

function summarise(runs: readonly Run[]): Summary {
  const of = (pick: (run: Run) => number) => median(runs.map(pick));
  const stepIds = runs[0]?.result.steps.map((s) => s.id) ?? [];
  return {
    steps: new Map(stepIds.map((id) => [id, of((run) => run.result.steps.find((s) => s.id === id)?.ms ?? 0)])),
    hostSideMs: of((run) => hostSideMs(run.result)),
    wallMs: of((run) => run.result.wallMs),
    archiveBytes: of((run) => run.result.archiveBytes),
    sidecarBytes: of((run) => run.result.sidecarBytes),
    extraDiskBytes: of((run) => run.extraDiskBytes),
    maxRssKib: of((run) => run.result.maxRssKib),
  };
}

function printReport(results: Map<BenchPath, Run[]>): void {
  const paths = [...results.keys()];
  const summaries = paths.map((path) => summarise(results.get(path)!));
  const stepIds = mergeInOrder(summaries.map((s) => [...s.steps.keys()]));
  const rows: [string, ...string[]][] = [
    ['median of each', ...paths.map((p) => p.label)],
    ...stepIds.map((id): [string, ...string[]] => [`  ${id}`, ...summaries.map((s) => (s.steps.has(id) ? seconds(s.steps.get(id)!) : '-'))]),
    ['host side (archive on host → sidecar)', ...summaries.map((s) => seconds(s.hostSideMs))],
    ['  of which making the image (not pack)', ...summaries.map((s) => seconds(s.hostSideMs - (s.steps.get('pack') ?? 0)))],
    ['whole freeze', ...summaries.map((s) => seconds(s.wallMs))],
    ['archive', ...summaries.map((s) => formatBytes(s.archiveBytes))],
    ['sidecar', ...summaries.map((s) => formatBytes(s.sidecarBytes))],
    ['peak extra disk (state + temp)', ...summaries.map((s) => formatBytes(s.extraDiskBytes))],
    ['  ÷ archive', ...summaries.map((s) => ratio(s.extraDiskBytes, s.archiveBytes))],
    ['peak RSS of the freezing process', ...summaries.map((s) => formatBytes(s.maxRssKib * 1024))],
  ];
  printTable(rows);
  const docker = summaries[0];
  console.log('\nagainst the docker path');
  printTable([
    ['', ...paths.slice(1).map((p) => p.label)],
    ['host side', ...summaries.slice(1).map((s) => ratio(s.hostSideMs, docker.hostSideMs))],
    ['  making the image', ...summaries.slice(1).map((s) => ratio(s.hostSideMs - (s.steps.get('pack') ?? 0), docker.hostSideMs - (docker.steps.get('pack') ?? 0)))],
    ['whole freeze', ...summaries.slice(1).map((s) => ratio(s.wallMs, docker.wallMs))],
    ['peak extra disk', ...summaries.slice(1).map((s) => ratio(s.extraDiskBytes, docker.extraDiskBytes))],
    ['peak RSS', ...summaries.slice(1).map((s) => ratio(s.maxRssKib, docker.maxRssKib))],
  ]);
}

/** One list of step ids keeping each path's order: a step new to the list goes after its predecessor. */
function mergeInOrder(lists: readonly string[][]): string[] {
  const merged: string[] = [];
  for (const list of lists) {
    list.forEach((id, index) => {
      if (!merged.includes(id)) merged.splice(index === 0 ? 0 : merged.indexOf(list[index - 1]) + 1, 0, id);
    });
  }
  return merged;
}

function printTable(rows: readonly string[][]): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  for (const row of rows) console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('   '));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function ratio(value: number, base: number): string {
  return base > 0 ? `${(value / base).toFixed(2)}×` : '-';
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
