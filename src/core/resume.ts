/**
 * Resuming a frozen bottle: check the sidecar against its record, recreate the machine from it,
 * start it, and make it ready for the agent. A failed or cancelled resume deletes the machine it
 * half-created and leaves the snapshot as it was.
 */
import { machineSlugs, refuseCaseTwin } from './caseClash';
import { CancelledError, isCancelled, UserError } from './errors';
import { machineName, validateSlug } from './names';
import { CLEANUP_TIMEOUT_MS, runPipeline, type PipelineProgress, type Step } from './pipeline';
import { clearResuming, markResuming } from './resumeMarker';
import type { Services } from './services';
import { smolmachineProblem } from './snapshots';
import { sha256File, type Snapshot } from './state';
import { checkSize, createOptionsFor, describeCarried, describeSize, notCarriedBy, type MachineSize } from './machineSettings';
import { runTool } from './run';
import type { SmolvmCli } from './tools/smolvm';

/** A freeze leaves /tmp and /var/tmp out, so they are made before their owner and mode are set. */
export const INIT_COMMANDS: readonly (readonly string[])[] = [
  ['mkdir', '-p', '/tmp', '/var/tmp'],
  ['chown', 'root:root', '/tmp', '/var/tmp'],
  ['chmod', '1777', '/tmp', '/var/tmp'],
];

export interface ResumeState {
  readonly snapshot: Snapshot;
  /** The bottle being resumed into (the snapshot's own, or the one asked for). */
  readonly slug: string;
  readonly machine: string;
  readonly smolvm: SmolvmCli;
  readonly services: Services;
  /** Stop and delete a machine of the same name first (the user confirmed it). */
  readonly replace: boolean;
  /** Resume a snapshot that has no record to check it against (the user confirmed it). */
  readonly allowUnverified: boolean;
  /** The size the user chose instead of the recorded one. */
  readonly size?: MachineSize;
  /** Set once the machine it replaces is deleted: from then on, stopping short has cost the user that machine. */
  replaced: boolean;
  /** Set once the machine is up and initialised: from then on it is kept. */
  ready: boolean;
  /** What the machine had that this resume could not give back, in the user's words. */
  notCarried: string[];
}

export interface ResumedBottle {
  /** The machine that now runs. */
  machine: string;
  /** What the frozen machine had, or may have had, that the resumed one lacks: for the user to redo. */
  notCarried: string[];
}

/** A machine of that name exists and the caller did not ask to replace it. */
export class MachineExistsError extends UserError {
  constructor(readonly machine: string) {
    super(`A machine named ${machine} already exists. Replace it, or resume under another name.`);
    this.name = 'MachineExistsError';
  }
}

/**
 * The snapshot has no record it can be checked against (none, unreadable, or from a newer version):
 * resuming it could restore a damaged or changed bottle. The UI asks, then passes allowUnverified.
 */
export class UnverifiedSnapshotError extends UserError {
  constructor(readonly snapshot: Snapshot, readonly reason: string) {
    super(`The snapshot ${snapshot.sidecar} ${reason}, so it cannot be checked against what was frozen: it may be damaged or changed. Resume it only if you trust where it came from.`);
    this.name = 'UnverifiedSnapshotError';
  }
}

export const verifySidecar: Step<ResumeState> = {
  id: 'verify',
  title: 'Checking the snapshot',
  weight: 10,
  async run(ctx, s) {
    await verifySnapshotIntegrity(s.snapshot, ctx.signal, s.allowUnverified);
  },
};

export const replaceExisting: Step<ResumeState> = {
  id: 'replace',
  title: 'Removing the machine it replaces',
  weight: 2,
  async run(ctx, s) {
    if (!s.replace || !(await machineExists(s, ctx.signal))) return;
    await runTool(s.services.run, s.smolvm.stop(s.machine), { signal: ctx.signal });
    await runTool(s.services.run, s.smolvm.delete(s.machine), { signal: ctx.signal });
    s.replaced = true;
  },
};

export const createFromSidecar: Step<ResumeState> = {
  id: 'create',
  title: 'Creating the machine from the snapshot',
  weight: 50,
  async run(ctx, s) {
    ctx.defer('delete the half-created machine', () => (s.ready ? undefined : deleteMachine(s)));
    const settings = s.snapshot.record?.machineSettings;
    s.notCarried = notCarriedBy(settings);
    if (s.size) ctx.log.info(`Size chosen for the resume: ${describeSize(s.size) || 'smolvm’s defaults and the pack’s'}`);
    if (settings) ctx.log.info(`Carried over: ${describeCarried(settings, s.size)}`);
    for (const lost of s.notCarried) ctx.log.warn(`Not carried over: ${lost}`);
    const options = { name: s.machine, from: s.snapshot.sidecar, ...createOptionsFor(settings, s.size) };
    await markResuming(s.services.store, s.slug, s.machine);
    await runTool(s.services.run, s.smolvm.create(options), { signal: ctx.signal });
  },
};

export const startMachine: Step<ResumeState> = {
  id: 'start',
  title: 'Starting the machine',
  weight: 20,
  async run(ctx, s) {
    await runTool(s.services.run, s.smolvm.start(s.machine), { signal: ctx.signal });
  },
};

/** Runs `commands` in the new machine, one exec each; the resume is done when they are. */
export function initialiseMachine(commands: readonly (readonly string[])[]): Step<ResumeState> {
  return {
    id: 'init',
    title: 'Preparing it for the agent',
    weight: 5,
    async run(ctx, s) {
      for (const command of commands) await runTool(s.services.run, s.smolvm.exec(s.machine, command), { signal: ctx.signal });
      s.ready = true;
      await clearResuming(s.services.store, s.slug);
    },
  };
}

export function resumeSteps(initCommands = INIT_COMMANDS): readonly Step<ResumeState>[] {
  return [verifySidecar, replaceExisting, createFromSidecar, startMachine, initialiseMachine(initCommands)];
}

export const RESUME_STEPS = resumeSteps();

export interface ResumeOptions {
  signal: AbortSignal;
  onProgress?: (progress: PipelineProgress) => void;
  /** Resume under this slug instead of the snapshot's own. */
  asSlug?: string;
  replace?: boolean;
  /** Resume even a snapshot with no record to check it against (after the user confirmed a warning). */
  allowUnverified?: boolean;
  /** Create the machine with this size instead of the recorded one; refused (UserError) if smolvm would refuse or ignore it. */
  size?: MachineSize;
}

export async function resumeBottle(services: Services, snapshot: Snapshot, options: ResumeOptions, steps = RESUME_STEPS): Promise<ResumedBottle> {
  const slug = validateSlug(options.asSlug ?? snapshot.slug, services.prefix);
  const machine = machineName(slug, services.prefix);
  const smolvm = services.smolvm();
  if (options.size) checkSize(options.size, snapshot.record?.machineSettings);
  await refuseCaseTwin(services.store, slug, await machineSlugs(services, options.signal));
  const locks = [await services.store.lock(snapshot.slug, 'resume')];
  try {
    if (slug !== snapshot.slug) locks.push(await services.store.lock(slug, 'resume'));
    const state: ResumeState = {
      snapshot, slug, machine, smolvm, services, replace: options.replace ?? false, allowUnverified: options.allowUnverified ?? false,
      size: options.size, replaced: false, ready: false, notCarried: [],
    };
    if (!state.replace && (await machineExists(state, options.signal))) throw new MachineExistsError(machine);
    services.logs.main.info(`Resuming ${machine} from ${snapshot.sidecar}`);
    await runPipeline(steps, state, { signal: options.signal, log: services.logs.main, onProgress: options.onProgress }).catch((error: unknown) => {
      throw isCancelled(error) && state.replaced ? new CancelledError(error.message, `The machine ${machine} it was to replace had already been deleted.`) : error;
    });
    const lost = state.notCarried.length > 0 ? ` Not carried over: ${state.notCarried.join('; ')}.` : '';
    services.logs.main.info(`${machine} is running.${lost}`);
    return { machine, notCarried: state.notCarried };
  } finally {
    for (const lock of locks.reverse()) await lock.release();
  }
}

/**
 * Refuses a sidecar whose size or sha256 differs from its record: it would restore a damaged bottle.
 * A sidecar with no usable record is refused too (UnverifiedSnapshotError) unless `allowUnverified`.
 */
export async function verifySnapshotIntegrity(snapshot: Snapshot, signal?: AbortSignal, allowUnverified = false): Promise<void> {
  const record = snapshot.record;
  if (!record) {
    // A file that is no .smolmachine at all is refused outright: there is nothing to confirm.
    await verifySmolmachine(snapshot.sidecar);
    if (!allowUnverified) throw new UnverifiedSnapshotError(snapshot, snapshot.recordProblem ?? 'has no record');
    return;
  }
  if (snapshot.sizeBytes !== record.sidecarBytes)
    throw new UserError(`The snapshot ${snapshot.sidecar} is ${snapshot.sizeBytes} bytes, but it was written as ${record.sidecarBytes} bytes: it is truncated or was changed. It was not used.`);
  const actual = await sha256File(snapshot.sidecar, signal);
  if (actual !== record.sha256)
    throw new UserError(`The snapshot ${snapshot.sidecar} is damaged: its sha256 is ${actual}, but it was written as ${record.sha256}. It was not used.`);
  await verifySmolmachine(snapshot.sidecar);
}

/** A file with no smolmachine footer (a sidecar replaced by hand, say) is refused before smolvm sees it. */
async function verifySmolmachine(sidecar: string): Promise<void> {
  const problem = await smolmachineProblem(sidecar);
  if (problem) throw new UserError(`The snapshot ${sidecar} ${problem}. It was not used.`);
}

async function machineExists(s: ResumeState, signal: AbortSignal): Promise<boolean> {
  const machines = await runTool(s.services.run, s.smolvm.list(), { signal });
  return machines.some((m) => m.name === s.machine);
}

/** Cleanup after a failed resume: no signal (it runs after cancel too), but a time limit. */
async function deleteMachine(s: ResumeState): Promise<void> {
  await deleteHalfResumedMachine(s.services, s.slug, s.machine);
}

/**
 * Stops and deletes a machine a resume did not finish, then drops the resume's marker. A machine
 * smolvm never got to create counts as deleted. Recovery uses it for a resume whose window died.
 */
export async function deleteHalfResumedMachine(services: Services, slug: string, machine: string): Promise<void> {
  const smolvm = services.smolvm();
  const limit = { timeoutMs: CLEANUP_TIMEOUT_MS };
  await runTool(services.run, smolvm.stop(machine), limit).catch(() => undefined);
  try {
    await runTool(services.run, smolvm.delete(machine), limit);
  } catch (error) {
    const listed = await runTool(services.run, smolvm.list(), limit).catch(() => undefined);
    if (!listed || listed.some((m) => m.name === machine)) throw error;
  }
  await clearResuming(services.store, slug);
}
