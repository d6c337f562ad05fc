/**
 * The fault matrix: every step of freeze (docker and native image paths) and of resume, under three
 * faults — the tool fails; the tool hangs and the user cancels; the user cancels while the step is
 * inside its work. Each cell checks that the fault happened where it says: the failure or cancel
 * names the faulted step, the misbehaving tool was really there when Cancel came (it leaves a marker
 * with its pid on reaching the fault; the test cancels then, not after a guessed delay), and every
 * process below it is gone afterwards. The mid-step delays sit inside the work (tar has written part
 * of the archive, cp part of the file, pack part of the sidecar), and that partial work must be on
 * disk at the marker and gone after the cancel. After each, nothing may be lost and nothing left
 * behind. The matrix is printed at the end.
 *
 * Steps with no tool of their own are faulted in this process: `keep` by a disk failing mid-install
 * and a cancel while it reads the staged sidecar, `image` by a damaged archive and a cancel while it
 * hashes it, resume's `verify` by a sidecar that does not match its record and a cancel while it
 * hashes it. A hang has no meaning there (nothing outside this process to wait for), so those cells
 * are listed as not applicable. Not in the matrix: `bot-bottle`, which runs after the snapshot is
 * kept (a failure there loses nothing and is the subject of bot-bottle-files.test.ts), and the steps
 * of a docker bottle's freeze (container.ts), whose faults docker-bottles.test.ts covers.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, StepFailedError } from '../../src/core/errors';
import { ownerOfTempDir } from '../../src/core/fsutil';
import { realInstallFs, type InstallFs } from '../../src/core/install';
import { DOCKER_FREEZE_STEPS, freezeBottle, NATIVE_FREEZE_STEPS } from '../../src/core/freeze/smolmachines';
import type { PipelineProgress } from '../../src/core/pipeline';
import { RESUME_STEPS, resumeBottle } from '../../src/core/resume';
import type { Services } from '../../src/core/services';
import type { CoreSettings } from '../../src/core/settings';
import { StateStore, type Snapshot } from '../../src/core/state';
import { runTool } from '../../src/core/run';
import { markChildren, processesMarked, processTree, stillRunningAfter, waitFor } from '../support/processes';
import { misbehavingTool, type Misbehaviour } from '../support/shims';
import { processesMentioning, SIM_BIN, sha256, startWorld, type World } from '../support/world';

type Fault = 'fails' | 'hangs, cancelled' | 'cancelled mid-step';
const FAULTS: readonly Fault[] = ['fails', 'hangs, cancelled', 'cancelled mid-step'];
const MISBEHAVIOUR: Record<Fault, Misbehaviour> = { fails: 'fail', 'hangs, cancelled': 'hang', 'cancelled mid-step': 'slow' };
const SIM_ENV: Record<Misbehaviour, string> = { fail: 'SMOLVM_SIM_FAIL', hang: 'SMOLVM_SIM_HANG', slow: 'SMOLVM_SIM_DELAY' };
/** A delay the test never waits out: it cancels at the marker. */
const MID_STEP_DELAY_MS = 60_000;
/** Cancel must stop a hung tool promptly; this bound only catches a cancel that waits for a timeout. */
const CANCEL_BOUND_MS = 5000;
/** How long a cell waits for its tool to reach the fault before calling the fault missed. */
const MARKER_WAIT_MS = 60_000;

type Operation = 'freeze (docker)' | 'freeze (native)' | 'resume';

const STEP_TITLES: Record<Operation, ReadonlyMap<string, string>> = {
  'freeze (docker)': new Map(DOCKER_FREEZE_STEPS.map((s) => [s.id, s.title])),
  'freeze (native)': new Map(NATIVE_FREEZE_STEPS.map((s) => [s.id, s.title])),
  resume: new Map(RESUME_STEPS.map((s) => [s.id, s.title])),
};

interface CellContext {
  world: World;
  machine: string;
  markers: string;
  snapshot: Snapshot;
}

interface Injection {
  env?: Record<string, string>;
  settings?: Partial<CoreSettings>;
  /** The file the misbehaving tool writes on reaching the fault (JSON `{pid, partial}`): the test cancels then. */
  marker?: string;
  /** The marker names the tool's partial work, which must be on disk then and gone after the cancel. */
  partialWork?: boolean;
  /** Words of the injected failure, which the step's failure must carry. */
  failure?: RegExp;
  /** In-process faults: on the services before the run. */
  prepare?(services: Services): void;
  /** In-process faults: at each progress report of the faulted step; `cancel` presses Cancel. */
  atStep?(progress: PipelineProgress, cancel: () => void): void;
  /** Resume from this (a damaged record) instead of the good snapshot. */
  snapshot?: Snapshot;
  /** Something of the step's own work that exists when Cancel comes and must be gone after it. */
  workAtCancel?(): string | undefined;
}

interface Row {
  operation: Operation;
  step: string;
  /** Which tool misbehaves, for the printed matrix. */
  tool: string;
  /** Undefined: this fault cannot happen at this step (`notApplicable` says why). */
  inject(how: Misbehaviour, context: CellContext): Injection | undefined;
  notApplicable?: string;
}

/**
 * A stand-in fault at `point`, for this machine only (pack create has no machine: it applies to
 * all). `midPoint` is where the mid-step delay goes instead, inside the work, with partial work.
 */
const simPoint = (point: string, midPoint?: string) => (how: Misbehaviour, { machine, markers }: CellContext): Injection => {
  const at = how === 'slow' && midPoint ? midPoint : point;
  const target = at.startsWith('pack') ? at : `${at}@${machine}`;
  if (how === 'fail') return { env: { [SIM_ENV.fail]: target }, failure: new RegExp(`simulated failure at ${point}`) };
  const rule = how === 'slow' ? `${target}=${MID_STEP_DELAY_MS}` : target;
  return { env: { [SIM_ENV[how]]: rule, SMOLVM_SIM_MARKERS: markers }, marker: join(markers, target), partialWork: how === 'slow' && midPoint !== undefined };
};

/** A `cp` fault for the copies of one file only: a native freeze copies its listing, then its archive. */
const onlyCopiesOf = (guestFile: string, inject: Row['inject']): Row['inject'] => (how, context) => {
  const injection = inject(how, context);
  return injection && { ...injection, env: { ...injection.env, SMOLVM_SIM_CP_ONLY: guestFile } };
};

const shimmed = (tool: 'docker' | 'skopeo' | 'registry', real: string, subcommand: string) => (how: Misbehaviour, { world, markers }: CellContext): Injection => {
  const marker = join(markers, `${tool}-${subcommand}`);
  const path = misbehavingTool(join(world.root, 'shims'), tool, real, subcommand, how, marker);
  const injection: Injection = { settings: { paths: { ...world.services().settings.paths, [tool]: path } } };
  return how === 'fail' ? { ...injection, failure: new RegExp(`simulated ${tool} ${subcommand} failure`) } : { ...injection, marker };
};

/** `keep` starts no tool: the disk fails while it swaps the snapshot in, or Cancel comes while it reads the staged sidecar. */
const keepFault = (how: Misbehaviour, { world }: CellContext): Injection | undefined => {
  if (how === 'hang') return undefined;
  if (how === 'fail') return { prepare: failRenamesOfIncoming, failure: /EIO: injected/ };
  const staging = () => readdirSync(join(world.stateRoot, 'faulty')).find((n) => n.startsWith('.incoming-'));
  return {
    atStep: (_progress, cancel) => cancel(),
    workAtCancel: () => {
      const name = staging();
      return name && join(world.stateRoot, 'faulty', name);
    },
  };
};

function failRenamesOfIncoming(services: Services): void {
  const store = services.store;
  const failing: InstallFs = {
    ...realInstallFs,
    async rename(from, to) {
      if (from.includes('.incoming-')) throw Object.assign(new Error(`EIO: injected i/o error, rename '${from}' -> '${to}'`), { code: 'EIO' });
      await realInstallFs.rename(from, to);
    },
  };
  store.replaceSnapshot = (record, staged) => StateStore.prototype.replaceSnapshot.call(store, record, staged, failing);
}

/** `verify` hashes the sidecar: it no longer matches its record, or Cancel comes while it hashes. */
const verifyFault = (how: Misbehaviour, { snapshot }: CellContext): Injection | undefined => {
  if (how === 'hang') return undefined;
  if (how === 'fail') return { snapshot: { ...snapshot, record: { ...snapshot.record!, sha256: '0'.repeat(64) } }, failure: /is damaged: its sha256 is/ };
  return { atStep: (_progress, cancel) => cancel() };
};

const NO_HANG = 'starts no tool and waits on nothing outside this process, so there is nothing to hang';

function freezeRows(operation: Operation): Row[] {
  const probe: Row = { operation, step: 'probe', tool: 'smolvm exec id', inject: simPoint('exec:id') };
  const archive: Row = { operation, step: 'archive', tool: 'smolvm exec tar', inject: simPoint('exec:tar', 'tar:write') };
  const copy: Row = { operation, step: 'copy', tool: 'smolvm machine cp', inject: onlyCopiesOf('.bot-bottle-commit', simPoint('cp', 'cp:write')) };
  const pack: Row = { operation, step: 'pack', tool: 'smolvm pack create', inject: simPoint('pack', 'pack:write') };
  const keep: Row = { operation, step: 'keep', tool: 'the state folder', inject: keepFault, notApplicable: NO_HANG };
  if (operation === 'freeze (native)') {
    return [
      probe,
      { operation, step: 'inspect', tool: 'smolvm exec uname', inject: simPoint('exec:uname') },
      archive,
      copy,
      // No `image` row: the archive is digested while it is copied (the copy step's cells fault that),
      // so describing the image reads nothing that a fault could hit; a damaged archive fails the pack's digest check.
      pack,
      keep,
    ];
  }
  return [
    probe,
    archive,
    copy,
    { operation, step: 'build', tool: 'docker build', inject: shimmed('docker', '/usr/local/bin/docker', 'build') },
    { operation, step: 'save', tool: 'docker save', inject: shimmed('docker', '/usr/local/bin/docker', 'save') },
    { operation, step: 'push', tool: 'registry serve', inject: shimmed('registry', '/usr/bin/docker-registry', 'serve') },
    { operation, step: 'push', tool: 'skopeo copy', inject: shimmed('skopeo', '/usr/bin/skopeo', 'copy') },
    pack,
    keep,
  ];
}

const RESUME_ROWS: Row[] = [
  { operation: 'resume', step: 'verify', tool: 'the sidecar', inject: verifyFault, notApplicable: NO_HANG },
  { operation: 'resume', step: 'replace', tool: 'smolvm machine delete', inject: simPoint('delete') },
  { operation: 'resume', step: 'create', tool: 'smolvm machine create', inject: simPoint('create') },
  { operation: 'resume', step: 'start', tool: 'smolvm machine start', inject: simPoint('start') },
  { operation: 'resume', step: 'init', tool: 'smolvm exec mkdir', inject: simPoint('exec:mkdir') },
];

const matrix: string[] = [];

describe('fault matrix: nothing lost, nothing left behind', function () {
  let world: World;
  let snapshot: Snapshot;
  let goodFiles: string[];
  let markers: string;
  const slug = 'faulty';
  const machine = `bot-bottle-${slug}`;

  let mark: ReturnType<typeof markChildren>;
  let neighbour: ChildProcess | undefined;

  before(async () => {
    world = await startWorld('faults');
    markers = join(world.root, 'markers');
    neighbour = await startNeighbourStandIn(world.root);
    mark = markChildren();
    world.createRunningBottle(slug);
    snapshot = await freezeBottle(world.services({ imageBuilder: 'docker' }), slug, { signal: new AbortController().signal });
    goodFiles = snapshotFiles();
  });
  after(async () => {
    mark?.unmark();
    await stopNeighbour(neighbour);
    await world?.stop();
    printMatrix();
  });

  it('counts only its own processes: a stand-in of another run, busy on the same machine, is no leftover', () => {
    const pid = neighbour?.pid;
    assert.ok(pid && processesMentioning('out/sim/smolvm.cjs').some((l) => Number(l.trim().split(/\s+/)[0]) === pid), 'the other stand-in runs');
    assert.ok(!processesMarked(mark.marker).some((l) => Number(l.split(' ')[0]) === pid), 'it is not one of this run’s processes');
  });

  function snapshotFiles(): string[] {
    return ['committed-smolmachine.smolmachine', 'committed-smolmachine', 'snapshot.json'].map((n) => sha256(readFileSync(join(world.stateRoot, slug, n))));
  }

  async function leftovers(tempBefore: string[]): Promise<string[]> {
    const found: string[] = [];
    const stateEntries = readdirSync(join(world.stateRoot, slug)).filter((n) => !['committed-smolmachine.smolmachine', 'committed-smolmachine', 'snapshot.json', 'rootfs.listing.gz'].includes(n));
    if (stateEntries.length) found.push(`state folder: ${stateEntries.join(', ')}`);
    const resumedEntries = existsSync(join(world.stateRoot, 'faulty-r')) ? readdirSync(join(world.stateRoot, 'faulty-r')) : [];
    if (resumedEntries.length) found.push(`resumed bottle's state folder: ${resumedEntries.join(', ')}`);
    // Only this process's temp folders (their names carry its pid): other runs make theirs meanwhile.
    const temp = readdirSync(tmpdir()).filter((n) => ownerOfTempDir(n) === process.pid && !tempBefore.includes(n));
    if (temp.length) found.push(`temp: ${temp.join(', ')}`);
    if (readdirSync(join(world.rootfs(machine), 'var/tmp')).some((n) => n.startsWith('.bot-bottle-commit'))) found.push('archive in the VM');
    if (await world.services().store.lockOwner(slug)) found.push('lock still held');
    const processes = await settledProcesses();
    if (processes.length) found.push(`processes: ${processes.join(' | ')}`);
    return found;
  }

  /** Killed process groups take a moment to go: wait for them, then report any of this run's still there. */
  async function settledProcesses(): Promise<string[]> {
    const stray = () => processesMarked(mark.marker);
    for (let waited = 0; waited < 4000 && stray().length; waited += 100) await new Promise((r) => setTimeout(r, 100));
    return stray();
  }

  for (const row of [...freezeRows('freeze (docker)'), ...freezeRows('freeze (native)'), ...RESUME_ROWS]) {
    for (const fault of FAULTS) {
      const title = `${row.operation}: ${row.step} (${row.tool}) ${fault}`;
      if (fault === 'hangs, cancelled' && row.notApplicable) {
        matrix.push(`${row.operation.padEnd(16)} ${`${row.step} (${row.tool})`.padEnd(34)} ${fault.padEnd(19)} not applicable: ${row.step} ${row.notApplicable}`);
        continue;
      }
      it(title, async function () {
        const started = Date.now();
        try {
          const stoppedIn = await runCell(row, fault);
          matrix.push(`${row.operation.padEnd(16)} ${`${row.step} (${row.tool})`.padEnd(34)} ${fault.padEnd(19)} pass${stoppedIn !== undefined ? ` (stopped ${stoppedIn} ms after cancel)` : ''} [${Date.now() - started} ms]`);
        } catch (failure) {
          matrix.push(`${row.operation.padEnd(16)} ${`${row.step} (${row.tool})`.padEnd(34)} ${fault.padEnd(19)} FAIL: ${(failure as Error).message.split('\n')[0]}`);
          throw failure;
        } finally {
          if (row.operation === 'resume') removeMachine('bot-bottle-faulty-r');
        }
      });
    }
  }

  /** Runs one cell; returns how long the operation took to stop after Cancel, for a cancelled one. */
  async function runCell(row: Row, fault: Fault): Promise<number | undefined> {
    const how = MISBEHAVIOUR[fault];
    rmSync(markers, { recursive: true, force: true });
    mkdirSync(markers);
    const injection = row.inject(how, { world, machine: row.operation === 'resume' ? 'bot-bottle-faulty-r' : machine, markers, snapshot });
    assert.ok(injection, `${row.step} has no ${fault} fault`);
    const services = world.services({ imageBuilder: row.operation === 'freeze (native)' ? 'native' : 'docker', ...injection.settings });
    injection.prepare?.(services);
    const tempBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('bot-bottle-'));
    const controller = new AbortController();
    const cancel: CancelRecord = {};
    const pressCancel = () => {
      if (cancel.at !== undefined) return;
      cancel.work = injection.workAtCancel?.();
      cancel.at = Date.now();
      controller.abort();
    };
    const onProgress = (p: PipelineProgress) => {
      if (p.stepId === row.step) injection.atStep?.(p, pressCancel);
    };
    const undoEnv = world.withEnv(injection.env ?? {});
    let error: unknown;
    try {
      if (row.operation === 'resume' && row.step === 'replace') world.createRunningBottle('faulty-r');
      const operation = startOperation(row, services, injection, controller.signal, onProgress);
      const atFault = injection.marker ? cancelAtMarker(injection.marker, operation, pressCancel, cancel) : Promise.resolve();
      error = await operation.then(() => undefined, (caught: unknown) => caught);
      await atFault;
    } finally {
      undoEnv();
    }
    const stoppedIn = cancel.at === undefined ? undefined : Date.now() - cancel.at;
    assertNamesTheStep(error, fault, row, injection);
    if (how !== 'fail') assert.ok(cancel.at !== undefined, 'Cancel was pressed while the step ran');
    if (stoppedIn !== undefined) assert.ok(stoppedIn < CANCEL_BOUND_MS, `cancel took ${stoppedIn} ms`);
    if (how === 'hang') assert.ok(cancel.tree && cancel.tree.length > 1, `the hung tool has a child of its own at the marker (${cancel.tree?.join(', ')})`);
    await assertToolGone(cancel);
    if (injection.partialWork) assert.ok(cancel.partial && cancel.partialBytes! > 0, `the tool had written part of its work by the marker (${cancel.partial}: ${cancel.partialBytes} bytes)`);
    if (injection.workAtCancel) assert.ok(cancel.work, 'the step’s own work was on disk when Cancel came');
    for (const work of [cancel.partial, cancel.work]) if (work) assert.ok(!existsSync(work), `${work} is removed after the cancel`);
    assert.deepEqual(snapshotFiles(), goodFiles, 'the last good snapshot is byte-identical');
    assert.deepEqual(await leftovers(tempBefore), []);
    if (row.operation === 'resume') await assertNoMachine(services, row.step === 'replace' ? undefined : 'bot-bottle-faulty-r');
    return stoppedIn;
  }

  function startOperation(row: Row, services: Services, injection: Injection, signal: AbortSignal, onProgress: (p: PipelineProgress) => void): Promise<unknown> {
    if (row.operation !== 'resume') return freezeBottle(services, slug, { signal, onProgress });
    return resumeBottle(services, injection.snapshot ?? snapshot, { signal, onProgress, asSlug: 'faulty-r', replace: row.step === 'replace' });
  }

  function removeMachine(name: string) {
    try {
      world.sim('machine', 'delete', '--name', name, '-f');
    } catch {
      // not there: nothing to remove
    }
  }

  async function assertNoMachine(services: ReturnType<World['services']>, name: string | undefined) {
    if (!name) return;
    const machines = await runTool(services.run, services.smolvm().list());
    assert.ok(!machines.some((m) => m.name === name), `${name} was left behind`);
  }
});

interface CancelRecord {
  at?: number;
  /** The misbehaving tool and every process below it when Cancel came. */
  tree?: number[];
  partial?: string;
  partialBytes?: number;
  work?: string;
}

/** Waits until the tool is at its fault (its marker is written), notes its processes and partial work, then cancels. */
async function cancelAtMarker(marker: string, operation: Promise<unknown>, pressCancel: () => void, cancel: CancelRecord): Promise<void> {
  let ended = false;
  void operation.then(
    () => (ended = true),
    () => (ended = true),
  );
  await waitFor(() => ended || existsSync(marker), MARKER_WAIT_MS);
  assert.ok(existsSync(marker), `the tool never reached its fault (no ${marker}) before the operation ended`);
  const { pid, partial } = JSON.parse(readFileSync(marker, 'utf8')) as { pid: number; partial?: string };
  cancel.tree = processTree(pid);
  assert.ok(cancel.tree.includes(pid), `the tool (pid ${pid}) runs at its fault`);
  if (partial) {
    cancel.partial = partial;
    cancel.partialBytes = existsSync(partial) ? statSync(partial).size : undefined;
  }
  pressCancel();
}

/** Every process of the tool seen at the marker (its own children too, in any group) is gone. */
async function assertToolGone(cancel: CancelRecord): Promise<void> {
  if (!cancel.tree) return;
  const left = await stillRunningAfter(cancel.tree, 4000);
  assert.deepEqual(left, [], `processes of the cancelled tool still run: ${left.join(', ')} (of ${cancel.tree.join(', ')})`);
}

/**
 * Another run's stand-in, busy on this machine while the matrix runs (as when another test file or
 * another session works beside it): `smolvm machine ls` hanging, with its own data folder.
 */
async function startNeighbourStandIn(root: string): Promise<ChildProcess> {
  const env = { ...process.env, SMOLVM_DATA_DIR: join(root, 'neighbour data'), SMOLVM_SIM_HANG: 'ls' };
  const child = spawn(SIM_BIN, ['machine', 'ls'], { env, stdio: 'ignore', detached: true });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child;
}

async function stopNeighbour(child: ChildProcess | undefined): Promise<void> {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(-child.pid, 'SIGKILL');
  await exited;
}

function assertNamesTheStep(error: unknown, fault: Fault, row: Row, injection: Injection): void {
  assert.ok(error, 'the operation must not succeed');
  const title = STEP_TITLES[row.operation].get(row.step);
  assert.ok(title, `${row.operation} has a step ${row.step}`);
  if (fault === 'fails') {
    assert.ok(error instanceof StepFailedError, `expected a step failure, got ${String(error)}`);
    assert.equal(error.stepId, row.step);
    assert.equal(error.stepTitle, title);
    if (injection.failure) assert.match(error.message, injection.failure, 'the failure is the injected one');
    return;
  }
  assert.ok(error instanceof CancelledError, `expected a cancellation, got ${String(error)}`);
  assert.equal(error.message, `Cancelled during "${title}"`, 'the cancel names the faulted step');
}

function printMatrix(): void {
  if (!matrix.length) return;
  const run = matrix.filter((l) => !/ not applicable: /.test(l));
  const passed = run.filter((l) => / pass/.test(l)).length;
  console.log(`\n  Fault matrix (${passed} of ${run.length} pass, ${matrix.length - run.length} not applicable):\n${matrix.map((l) => `    ${l}`).join('\n')}\n`);
}
