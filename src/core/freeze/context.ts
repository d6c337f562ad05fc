/** What every freeze step reads and writes: the bottle's names, the tools, and what earlier steps made. */
import type { Log } from '../log';
import type { MachineSettings } from '../machineSettings';
import type { OciImage } from '../oci/image';
import type { Runner } from '../run';
import { COMPRESSIONS, type Compression, type ImageBuilder } from '../settings';
import type { StateStore } from '../state';
import type { BotBottleState } from '../botBottleState';
import { ROOTFS_ARCHIVE } from '../committedImage';
import type { Pusher } from '../tools/push';
import type { SmolvmCli } from '../tools/smolvm';
import type { GuestMount } from './mounts';

/** Inside the VM, on disk (`/tmp` is tmpfs) so that it survives until `machine cp`. */
export function vmArchivePath(compression: Compression): string {
  return compression === 'gzip' ? '/var/tmp/.bot-bottle-commit.tar.gz' : '/var/tmp/.bot-bottle-commit.tar';
}

/** Everything a freeze may leave inside the VM, whichever compression it used. */
export const VM_ARCHIVES: readonly string[] = COMPRESSIONS.map(vmArchivePath);

/** The archive's name in the host temp folder; the docker path's Dockerfile expects the gzip one. */
export function hostArchiveName(compression: Compression): string {
  return compression === 'gzip' ? ROOTFS_ARCHIVE : 'rootfs.tar';
}

/** Left out of the archive: kernel and runtime file systems, and the ephemeral temp folders. */
export const ARCHIVE_EXCLUDES = ['./proc', './sys', './dev', './run', './tmp', './var/tmp'] as const;

export interface FreezeTools {
  smolvm: SmolvmCli;
  /** The docker path's tools; the native path needs none of them. */
  docker?: string;
  registry?: string;
  pusher?: Pusher;
}

export interface FreezeState {
  readonly slug: string;
  readonly machine: string;
  readonly imageRef: string;
  readonly store: StateStore;
  /** bot-bottle's own state folders, where the last step leaves the snapshot for `bot-bottle resume`. */
  readonly botBottle: BotBottleState;
  readonly tools: FreezeTools;
  readonly run: Runner;
  /** Where background tools (the registry) write their output. */
  readonly toolLog: Log;
  readonly pullHost: string;
  readonly imageBuilder: ImageBuilder;
  readonly compression: Compression;
  /** Whether the archive holds the host folders mounted into the bottle; left out unless true. */
  readonly includeMounts?: boolean;
  /** Tool name -> version, for the snapshot record. */
  readonly versions: Record<string, string>;
  /** The bottle's mounts as its guest sees them (the probe reads them). */
  mounts?: GuestMount[];
  /** What smolvm reported of the machine's settings, for the pack and the snapshot record. */
  machineSettings?: MachineSettings;
  /** Host temp folder holding the archive and the Dockerfile. */
  workDir?: string;
  /** The VM's CPU as an OCI architecture name (native path). */
  architecture?: string;
  archive?: string;
  archiveBytes?: number;
  imageId?: string;
  imageTarball?: string;
  /** The image described around the archive (native path). */
  image?: OciImage;
  /** Registry reference the pack step pulls from. */
  pullRef?: string;
  /** Added to `pack create`'s environment: how smolvm finds the pull's credentials (native path). */
  packEnv?: Record<string, string>;
  /** The new launcher, under a temporary name inside the state folder until it is kept. */
  stagedLauncher?: string;
}
