/**
 * The fault matrix: every step of freeze (docker and native image paths) and of resume, under three
 * faults — the tool fails; the tool hangs and the user cancels; the user cancels while the step runs
 * normally. After each, nothing may be lost and nothing left behind. The matrix is printed at the end.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError } from '../../src/core/errors';
import { ownerOfTempDir } from '../../src/core/fsutil';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { StepFailedError } from '../../src/core/errors';
import type { PipelineProgress } from '../../src/core/pipeline';
import { resumeBottle } from '../../src/core/resume';
import type { CoreSettings } from '../../src/core/settings';
import type { Snapshot } from '../../src/core/state';
import { runTool } from '../../src/core/run';
import { markChildren, processesMarked } from '../support/processes';
import { misbehavingTool, type Misbehaviour } from '../support/shims';
import { processesMentioning, SIM_BIN, sha256, startWorld, type World } from '../support/world';

type Fault = 'fails' | 'hangs, cancelled' | 'cancelled mid-step';
const FAULTS: readonly Fault[] = ['fails', 'hangs, cancelled', 'cancelled mid-step'];
const MISBEHAVIOUR: Record<Fault, Misbehaviour> = { fails: 'fail', 'hangs, cancelled': 'hang', 'cancelled mid-step': 'slow' };
const SIM_ENV: Record<Misbehaviour, string> = { fail: 'SMOLVM_SIM_FAIL', hang: 'SMOLVM_SIM_HANG', slow: 'SMOLVM_SIM_DELAY' };
/** How long after a step starts the user presses Cancel. */
const CANCEL_AFTER_MS = 400;
/** Cancel must stop a hung tool promptly; this bound only catches a cancel that waits for a timeout. */
const CANCEL_BOUND_MS = 5000;

interface Injection {
  env?: Record<string, string>;
  settings?: Partial<CoreSettings>;
}

interface Row {
  operation: 'freeze (docker)' | 'freeze (native)' | 'resume';
  step: string;
  /** Which tool misbehaves, for the printed matrix. */
  tool: string;
  inject(how: Misbehaviour, world: World, machine: string): Injection;
}

/** A stand-in fault at `point`, for this machine only (pack create has no machine: it applies to all). */
const simPoint = (point: string) => (how: Misbehaviour, _world: World, machine: string): Injection => {
  const target = point === 'pack' ? point : `${point}@${machine}`;
  return { env: { [SIM_ENV[how]]: how === 'slow' ? `${target}=3000` : target } };
};

const shimmed = (tool: 'docker' | 'skopeo' | 'registry', real: string, subcommand: string) => (how: Misbehaviour, world: World): Injection => ({
  settings: { paths: { ...world.services().settings.paths, [tool]: misbehavingTool(join(world.root, 'shims'), tool, real, subcommand, how) } },
});

function freezeRows(operation: Row['operation']): Row[] {
  const common: Row[] = [
    { operation, step: 'probe', tool: 'smolvm exec id', inject: simPoint('exec:id') },
    { operation, step: 'archive', tool: 'smolvm exec tar', inject: simPoint('exec:tar') },
    { operation, step: 'copy', tool: 'smolvm machine cp', inject: simPoint('cp') },
    { operation, step: 'pack', tool: 'smolvm pack create', inject: simPoint('pack') },
  ];
  // The native path's first `machine cp` copies the listing out (step list): a cp fault meets it there.
  if (operation === 'freeze (native)') return [common[0], { operation, step: 'list', tool: 'smolvm machine cp (the listing)', inject: simPoint('cp') }, common[1], common[3]];
  return [
    ...common.slice(0, 3),
    { operation, step: 'build', tool: 'docker build', inject: shimmed('docker', '/usr/local/bin/docker', 'build') },
    { operation, step: 'save', tool: 'docker save', inject: shimmed('docker', '/usr/local/bin/docker', 'save') },
    { operation, step: 'push', tool: 'registry serve', inject: shimmed('registry', '/usr/bin/docker-registry', 'serve') },
    { operation, step: 'push', tool: 'skopeo copy', inject: shimmed('skopeo', '/usr/bin/skopeo', 'copy') },
    common[3],
  ];
}

const RESUME_ROWS: Row[] = [
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
  const slug = 'faulty';
  const machine = `bot-bottle-${slug}`;

  let mark: ReturnType<typeof markChildren>;
  let neighbour: ChildProcess | undefined;

  before(async () => {
    world = await startWorld('faults');
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

  function cancelWhen(step: string, controller: AbortController, cancelled: { at?: number }) {
    return (p: PipelineProgress) => {
      if (p.stepId !== step || cancelled.at !== undefined) return;
      cancelled.at = -1;
      setTimeout(() => {
        cancelled.at = Date.now();
        controller.abort();
      }, CANCEL_AFTER_MS);
    };
  }

  for (const row of [...freezeRows('freeze (docker)'), ...freezeRows('freeze (native)'), ...RESUME_ROWS]) {
    for (const fault of FAULTS) {
      it(`${row.operation}: ${row.step} (${row.tool}) ${fault}`, async function () {
        const how = MISBEHAVIOUR[fault];
        const injection = row.inject(how, world, row.operation === 'resume' ? 'bot-bottle-faulty-r' : machine);
        const services = world.services({ imageBuilder: row.operation === 'freeze (native)' ? 'native' : 'docker', ...injection.settings });
        const undoEnv = world.withEnv(injection.env ?? {});
        const tempBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('bot-bottle-'));
        const controller = new AbortController();
        const cancelled: { at?: number } = {};
        const onProgress = how === 'fail' ? undefined : cancelWhen(row.step, controller, cancelled);
        const started = Date.now();
        let error: unknown;
        try {
          if (row.operation === 'resume') {
            if (row.step === 'replace') world.createRunningBottle('faulty-r');
            await resumeBottle(services, snapshot, { signal: controller.signal, onProgress, asSlug: 'faulty-r', replace: row.step === 'replace' });
          } else {
            await freezeBottle(services, slug, { signal: controller.signal, onProgress });
          }
        } catch (caught) {
          error = caught;
        } finally {
          undoEnv();
        }
        const stoppedIn = cancelled.at && cancelled.at > 0 ? Date.now() - cancelled.at : undefined;
        try {
          assertNamesTheStep(error, fault, row);
          if (stoppedIn !== undefined) assert.ok(stoppedIn < CANCEL_BOUND_MS, `cancel took ${stoppedIn} ms`);
          assert.deepEqual(snapshotFiles(), goodFiles, 'the last good snapshot is byte-identical');
          assert.deepEqual(await leftovers(tempBefore), []);
          if (row.operation === 'resume') await assertNoMachine(services, row.step === 'replace' ? undefined : 'bot-bottle-faulty-r');
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

function assertNamesTheStep(error: unknown, fault: Fault, row: Row): void {
  assert.ok(error, 'the operation must not succeed');
  if (fault === 'fails') {
    assert.ok(error instanceof StepFailedError, `expected a step failure, got ${String(error)}`);
    assert.equal(error.stepId, row.step);
    assert.match(error.message, /failed: /);
    return;
  }
  assert.ok(error instanceof CancelledError, `expected a cancellation, got ${String(error)}`);
  assert.match(error.message, /^Cancelled during "/);
}

function printMatrix(): void {
  if (!matrix.length) return;
  console.log(`\n  Fault matrix (${matrix.filter((l) => / pass/.test(l)).length} of ${matrix.length} pass):\n${matrix.map((l) => `    ${l}`).join('\n')}\n`);
}
