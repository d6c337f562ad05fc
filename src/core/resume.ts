/**
 * Resuming a frozen bottle: check the sidecar against its record, recreate the machine from it,
 * start it, and make it ready for the agent. A failed or cancelled resume deletes the machine it
 * half-created and leaves the snapshot as it was.
 */
import { machineSlugs, refuseCaseTwin } from './caseClash';
import { UserError } from './errors';
import { machineName, validateSlug } from './names';
import { runPipeline, type PipelineProgress, type Step } from './pipeline';
import { clearResuming, markResuming } from './resumeMarker';
import type { Services } from './services';
import { smolmachineProblem } from './snapshots';
import { sha256File, type Snapshot } from './state';
import { runTool } from './tools/command';
import type { SmolvmCli } from './tools/smolvm';

/** A freeze leaves /tmp and /var/tmp out, so they are made before their owner and mode are set. */
export const INIT_COMMANDS: readonly (readonly string[])[] = [
  ['mkdir', '-p', '/tmp', '/var/tmp'],
  ['chown', 'root:root', '/tmp', '/var/tmp'],
  ['chmod', '1777', '/tmp', '/var/tmp'],
];

const CLEANUP_TIMEOUT_MS = 60_000;

export interface ResumeState {
  readonly snapshot: Snapshot;
  /** The bottle being resumed into (the snapshot's own, or the one asked for). */
  readonly slug: string;
  readonly machine: string;
  readonly smolvm: SmolvmCli;
  readonly services: Services;
  /** Stop and delete a machine of the same name first (the user confirmed it). */
  readonly replace: boolean;
  readonly initCommands: readonly (readonly string[])[];
  /** Set once the machine is up and initialised: from then on it is kept. */
  ready: boolean;
}

/** A machine of that name exists and the caller did not ask to replace it. */
export class MachineExistsError extends UserError {
  constructor(readonly machine: string) {
    super(`A machine named ${machine} already exists. Replace it, or resume under another name.`);
    this.name = 'MachineExistsError';
  }
}

export const verifySidecar: Step<ResumeState> = {
  id: 'verify',
  title: 'Checking the snapshot',
  weight: 10,
  async run(ctx, s) {
    await verifySnapshotIntegrity(s.snapshot, ctx.signal);
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
  },
};

export const createFromSidecar: Step<ResumeState> = {
  id: 'create',
  title: 'Creating the machine from the snapshot',
  weight: 50,
  async run(ctx, s) {
    ctx.defer('delete the half-created machine', () => (s.ready ? undefined : deleteMachine(s)));
    await markResuming(s.services.store, s.slug, s.machine);
    await runTool(s.services.run, s.smolvm.create({ name: s.machine, from: s.snapshot.sidecar }), { signal: ctx.signal });
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

export const initialiseMachine: Step<ResumeState> = {
  id: 'init',
  title: 'Preparing it for the agent',
  weight: 5,
  async run(ctx, s) {
    for (const command of s.initCommands) await runTool(s.services.run, s.smolvm.exec(s.machine, command), { signal: ctx.signal });
    s.ready = true;
    await clearResuming(s.services.store, s.slug);
  },
};

export const RESUME_STEPS: readonly Step<ResumeState>[] = [verifySidecar, replaceExisting, createFromSidecar, startMachine, initialiseMachine];

export interface ResumeOptions {
  signal: AbortSignal;
  onProgress?: (progress: PipelineProgress) => void;
  /** Resume under this slug instead of the snapshot's own. */
  asSlug?: string;
  replace?: boolean;
  /** Only for tests that show what the seed's fix is for. */
  initCommands?: readonly (readonly string[])[];
}

export async function resumeBottle(services: Services, snapshot: Snapshot, options: ResumeOptions): Promise<string> {
  const slug = validateSlug(options.asSlug ?? snapshot.slug, services.prefix);
  const machine = machineName(slug, services.prefix);
  const smolvm = services.smolvm();
  await refuseCaseTwin(services.store, slug, await machineSlugs(services, options.signal));
  const locks = [await services.store.lock(snapshot.slug, 'resume')];
  try {
    if (slug !== snapshot.slug) locks.push(await services.store.lock(slug, 'resume'));
    const state: ResumeState = {
      snapshot, slug, machine, smolvm, services, replace: options.replace ?? false, initCommands: options.initCommands ?? INIT_COMMANDS, ready: false,
    };
    if (!state.replace && (await machineExists(state, options.signal))) throw new MachineExistsError(machine);
    services.logs.main.info(`Resuming ${machine} from ${snapshot.sidecar}`);
    await runPipeline(RESUME_STEPS, state, { signal: options.signal, log: services.logs.main, onProgress: options.onProgress });
    services.logs.main.info(`${machine} is running.`);
    return machine;
  } finally {
    for (const lock of locks.reverse()) await lock.release();
  }
}

/** Refuses a sidecar whose size or sha256 differs from its record: it would restore a damaged bottle. */
export async function verifySnapshotIntegrity(snapshot: Snapshot, signal?: AbortSignal): Promise<void> {
  const record = snapshot.record;
  if (!record) return verifySmolmachine(snapshot.sidecar);
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
