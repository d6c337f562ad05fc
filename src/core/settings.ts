/**
 * The `botBottle.*` settings as the extension uses them: their allowed values and their defaults.
 * package.json declares the same defaults for the Settings editor; a unit test keeps the two equal.
 */
import type { ToolName } from './executables';
import { DEFAULT_MACHINE_PREFIX } from './names';
import { DEFAULT_PULL_HOST } from './pullHost';

/** `botBottle.freeze.imageBuilder`: `auto` is native unless the user chose docker. */
export const IMAGE_BUILDER_CHOICES = ['auto', 'docker', 'native'] as const;
export type ImageBuilderChoice = (typeof IMAGE_BUILDER_CHOICES)[number];
export type ImageBuilder = Exclude<ImageBuilderChoice, 'auto'>;

/** `botBottle.freeze.compression` of the archive made in the VM. */
export const COMPRESSIONS = ['gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** The bot-bottle CLI only resumes in a terminal; a core made without its path looks on PATH. */
export type ToolPaths = Record<Exclude<ToolName, 'botBottle'>, string> & { botBottle?: string };

/** What the core needs to know. */
export interface CoreSettings {
  /** Configured tool paths; empty means "look on PATH". */
  paths: ToolPaths;
  stateDir: string;
  machinePrefix: string;
  /** The host a VM uses to reach a registry on this machine's loopback. */
  pullHost: string;
  /** How a freeze makes the image; default `auto` (native). */
  imageBuilder?: ImageBuilderChoice;
  /** The archive made in the VM; default `gzip`. */
  compression?: Compression;
  /** How many snapshots a bottle keeps, the newest counted (pinned ones always stay); 0 keeps all. Default 5. */
  snapshotsKeep?: number;
  /** Whether a freeze archives the host folders mounted into the bottle (`-v`); default false. */
  includeMounts?: boolean;
  /** Later freezes archive only what changed (native image builder). Off until a delta freeze is trusted everywhere. */
  incremental?: boolean;
}

/** Everything, the view's own settings included. */
export interface Settings extends Required<CoreSettings> {
  paths: Record<ToolName, string>;
  /** Seconds between refreshes while the view is visible; 0 turns the timer off. */
  refreshInterval: number;
  statusBarEnabled: boolean;
  /** The shell "Open Shell" starts in a bottle. */
  shell: string;
}

/** What Open Shell starts in a bottle unless the user chose another. */
const LOGIN_SHELL = '/bin/bash';

export const DEFAULT_SETTINGS: Readonly<Settings> = {
  paths: { smolvm: '', docker: '', crane: '', skopeo: '', registry: '', botBottle: '' },
  stateDir: '',
  machinePrefix: DEFAULT_MACHINE_PREFIX,
  pullHost: DEFAULT_PULL_HOST,
  imageBuilder: 'auto',
  compression: 'gzip',
  snapshotsKeep: 5,
  includeMounts: false,
  incremental: false,
  refreshInterval: 10,
  statusBarEnabled: true,
  shell: LOGIN_SHELL,
};
