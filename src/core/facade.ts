/**
 * Everything the VS Code layer asks of the core, in one place: the bottles with their snapshots,
 * freeze, resume, the snapshot files, what a shell or the agent log needs, and the names. `src/ui`
 * imports this module (and errors.ts and format.ts) and nothing else of the core.
 */
import { join } from 'node:path';
import { backendOf, type Bottle } from './bottles';
import { freezeContainer, type CommittedImage } from './freeze/container';
import { freezeBottle } from './freeze/smolmachines';
import { botBottleSlugProblem } from './botBottleState';
import { errorMessage, UserError } from './errors';
import { previewResume, sizeTextProblem, type MachineSize, type ResumePreview, type SizeField } from './machineSettings';
import { machineName, slugProblem } from './names';
import type { PipelineProgress } from './pipeline';
import { recoverInterruptedWork } from './recovery';
import { resumeBottle, type ResumedBottle } from './resume';
import { changeBottle, type LifecycleAction } from './lifecycle';
import { killAllChildren, runTool } from './run';
import { Services, type CoreLogs } from './services';
import type { CoreSettings } from './settings';
import { containerShellArgv, shellArgv } from './shell';
import { deleteSnapshot, exportSnapshot, importSnapshot, labelSnapshot, type ExportedFiles } from './snapshots';
import type { Snapshot, SnapshotLabels } from './state';

export { backendOf, isRunning, type Backend, type Bottle } from './bottles';
export type { CommittedImage } from './freeze/container';
export { isFreezePullReference } from './committedImage';
export { LIFECYCLE_ACTIONS, type LifecycleAction } from './lifecycle';
export type { DockerContainer } from './tools/docker';
export type { BotBottleEntry, BotBottleMetadata } from './botBottleState';
export { MachineExistsError, UnverifiedSnapshotError, type ResumedBottle } from './resume';
export { SmolvmMissingError, type CoreLogs } from './services';
export { COMPRESSIONS, DEFAULT_SETTINGS, IMAGE_BUILDER_CHOICES, type CoreSettings, type Settings } from './settings';
export { ExportTargetExistsError, SnapshotExistsError, type ExportedFiles } from './snapshots';
export type { Snapshot, SnapshotLabels } from './state';
export { isPinned } from './history';
export type { Machine } from './tools/smolvm';
export { SMOLMACHINE_SUFFIX } from './tools/smolvm';
export type { ToolName } from './executables';
export type { Log } from './log';
export { parseSizeText, SIZE_LIMITS, sizeAmount, type MachineSize, type ResumePreview, type SizeField } from './machineSettings';
export type { PipelineProgress } from './pipeline';

/** smolvm writes what the agent prints here, in the machine's data folder. */
const AGENT_LOG_NAME = 'agent-console.log';

export interface OperationOptions {
  signal: AbortSignal;
  onProgress?: (progress: PipelineProgress) => void;
  /** Freeze only: one full layer even when only what changed could be archived. */
  full?: boolean;
}

export interface ResumePlacement {
  /** Stop and delete a machine of the same name first (the user confirmed it). */
  replace?: boolean;
  /** Resume under this slug instead of the snapshot's own. */
  asSlug?: string;
  /** Resume a snapshot that has no record to check it against (the user confirmed a warning). */
  allowUnverified?: boolean;
  /** Create the machine with this size instead of the recorded one (the user changed it). */
  size?: MachineSize;
}

export class BotBottle {
  private readonly services: Services;

  /** Throws a UserError when the settings cannot work (a machine prefix smolvm would refuse). */
  constructor(settings: CoreSettings, logs: CoreLogs) {
    this.services = new Services(settings, logs);
  }

  get settings(): CoreSettings {
    return this.services.settings;
  }

  get stateRoot(): string {
    return this.services.store.root;
  }

  /** bot-bottle's own `~/.bot-bottle/state`, watched for its commits and labels. */
  get botBottleStateRoot(): string {
    return this.services.botBottle.root;
  }

  get machinePrefix(): string {
    return this.services.prefix;
  }

  machineName(slug: string): string {
    return machineName(slug, this.services.prefix);
  }

  /** Why `slug` cannot name a bottle, in the user's words, or undefined when it can. */
  slugProblem(slug: string): string | undefined {
    return slugProblem(slug, this.services.prefix);
  }

  /** Every bottle, running or only frozen; concurrent calls share one `machine ls`. */
  listBottles(): Promise<Bottle[]> {
    return this.services.catalog.refresh();
  }

  /**
   * A smolmachines bottle (or a bare slug) freezes into a `.smolmachine` snapshot; a bottle of
   * bot-bottle's docker backend into a committed image, as bot-bottle's own commit does.
   */
  freeze(slug: string, options: OperationOptions): Promise<Snapshot>;
  freeze(bottle: Bottle, options: OperationOptions): Promise<Snapshot | CommittedImage>;
  freeze(target: Bottle | string, options: OperationOptions): Promise<Snapshot | CommittedImage> {
    if (typeof target === 'string') return freezeBottle(this.services, target, options);
    if (backendOf(target) === 'docker') return freezeContainer(this.services, target.slug, options);
    return freezeBottle(this.services, target.slug, options);
  }

  /**
   * `bot-bottle resume <slug>`, for a terminal: bot-bottle rebuilds the whole session (egress proxy,
   * git gate, agent) around what its state folder names. Throws a UserError when no bot-bottle CLI
   * is found.
   */
  botBottleResumeArgv(slug: string): string[] {
    const problem = botBottleSlugProblem(slug);
    if (problem) throw new UserError(`${problem} So bot-bottle cannot resume it.`);
    return [this.services.tool('botBottle'), 'resume', slug];
  }

  /** Resolves to the machine that now runs, and what of the frozen machine's settings it lacks. */
  resume(snapshot: Snapshot, options: OperationOptions & ResumePlacement): Promise<ResumedBottle> {
    return resumeBottle(this.services, snapshot, options);
  }

  /** What a resume of `snapshot` (with `size`, if the user changed it) gives back and what it cannot: said before it creates anything. */
  resumePreview(snapshot: Snapshot, size?: MachineSize): ResumePreview {
    return previewResume(snapshot.record?.machineSettings, size);
  }

  /** Why `text` cannot be this field of the size of a machine resumed from `snapshot`, or undefined when it can. */
  resumeSizeProblem(snapshot: Snapshot, field: SizeField, text: string): string | undefined {
    return sizeTextProblem(field, text, snapshot.record?.machineSettings);
  }

  /** Refuses to replace existing files (ExportTargetExistsError) unless `overwrite`. */
  exportSnapshot(snapshot: Snapshot, target: string, overwrite = false): Promise<ExportedFiles> {
    return exportSnapshot(snapshot, target, { overwrite });
  }

  importSnapshot(source: string, slug: string, replace = false): Promise<Snapshot> {
    return importSnapshot(this.services.store, source, slug, replace);
  }

  /**
   * Deletes the bottle's newest snapshot (a slug, or that snapshot) or one of its history. When the
   * newest goes, the newest of the history takes its place, also where bot-bottle looks.
   */
  async deleteSnapshot(target: string | Snapshot): Promise<void> {
    const { newest, promoted } = await deleteSnapshot(this.services.store, target);
    if (!promoted || !newest || botBottleSlugProblem(newest.slug)) return;
    await this.services.botBottle.leaveSnapshot(newest).catch((error: unknown) => {
      this.services.logs.main.warn(`bot-bottle resume ${newest.slug} will not find the snapshot that is now the newest: ${errorMessage(error)}`);
    });
  }

  /** Renames a snapshot, sets or clears its note, pins or unpins it. */
  labelSnapshot(snapshot: Snapshot, labels: SnapshotLabels): Promise<Snapshot> {
    return labelSnapshot(this.services.store, snapshot, labels);
  }

  /** Start, stop, restart or delete the bottle's machine (or container); deleting keeps its snapshots. */
  changeBottle(bottle: Bottle, action: LifecycleAction, signal?: AbortSignal): Promise<void> {
    return changeBottle(this.services, bottle, action, signal);
  }

  /** The argv of a login shell inside the bottle (`smolvm machine exec -i -t ...`, or `docker exec` for a docker bottle). */
  shellArgv(bottle: Bottle, shell: string): string[] {
    if (backendOf(bottle) === 'docker') return containerShellArgv(this.services.tool('docker'), bottle.machineName, shell);
    return shellArgv(this.services.smolvm(), bottle.machineName, shell);
  }

  async agentLogPath(bottle: Bottle): Promise<string> {
    const dataDir = await runTool(this.services.run, this.services.smolvm().dataDir(bottle.machineName));
    return join(dataDir, AGENT_LOG_NAME);
  }

  /** Cleans what a crashed window left half done; one line per thing it did. */
  recoverInterruptedWork(): Promise<string[]> {
    return recoverInterruptedWork(this.services);
  }
}

/** Ends every tool this process started that still runs (the extension's deactivate). */
export function endAllTools(): Promise<void> {
  return killAllChildren();
}
