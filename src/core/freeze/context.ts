/** What every freeze step reads and writes: the bottle's names, the tools, and what earlier steps made. */
import type { Log } from '../log';
import type { MachineSettings } from '../machineSettings';
import type { LayerFile, OciImage } from '../oci/image';
import type { LayerDigests } from '../oci/layer';
import type { LayerStore } from '../layerStore';
import type { Delta, Listing } from './delta';
import type { Runner } from '../run';
import { COMPRESSIONS, type Compression, type ImageBuilder } from '../settings';
import type { LayerRecord, StateStore } from '../state';
import type { BotBottleState } from '../botBottleState';
import { ROOTFS_ARCHIVE } from '../committedImage';
import type { Pusher } from '../tools/push';
import type { SmolvmCli } from '../tools/smolvm';
import type { GuestMount } from './mounts';

/** How the archive made in the VM is compressed: the setting's choice, or zstd where the native path finds it on both sides. */
export type ArchiveFormat = Compression | 'zstd';
const ARCHIVE_FORMATS: readonly ArchiveFormat[] = [...COMPRESSIONS, 'zstd'];
const SUFFIXES: Record<ArchiveFormat, string> = { gzip: '.tar.gz', zstd: '.tar.zst', none: '.tar' };

/** Inside the VM, on disk (`/tmp` is tmpfs) so that it survives until `machine cp`. */
export function vmArchivePath(format: ArchiveFormat): string {
  return `/var/tmp/.bot-bottle-commit${SUFFIXES[format]}`;
}

/** The listing of `/` an incremental freeze makes, and the list of changed paths tar reads. */
export const VM_LISTING = '/var/tmp/.bot-bottle-listing';
export const VM_FILES_LIST = '/var/tmp/.bot-bottle-files';

/** Everything a freeze may leave inside the VM, whichever compression it used. */
export const VM_ARCHIVES: readonly string[] = [...ARCHIVE_FORMATS.map(vmArchivePath), VM_LISTING, VM_FILES_LIST];

/** The archive's name in the host temp folder; the docker path's Dockerfile expects the gzip one. */
export function hostArchiveName(format: ArchiveFormat): string {
  return format === 'gzip' ? ROOTFS_ARCHIVE : `rootfs${SUFFIXES[format]}`;
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
  /** botBottle.freeze.incremental: list the tree, and archive only what changed when the last snapshot allows. */
  readonly incremental?: boolean;
  /** The archive's compression: `compression`, or zstd (native path) when the bottle and this host have it. */
  format: ArchiveFormat;
  /** zstd on this host, to read zstd layers (native path). */
  hostZstd?: string;
  /** The archive's digests, worked out while `machine cp` wrote it (native path). */
  archiveDigests?: LayerDigests;
  readonly layerStore: LayerStore;
  /** "Freeze (full)": one full layer even when a delta would do. */
  readonly fullRequested: boolean;
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
  /** When smolvm says the machine was created: the listing's claim to be from this machine. */
  machineCreatedAt?: string;
  /** Whether the bottle has GNU find (a listing can be made) and zstd. */
  guestFind?: boolean;
  /** The root filesystem's listing, made just before the archive (native path, GNU find). */
  listing?: Listing;
  /** Set when only what changed is archived: the delta, and the last snapshot's layers it goes on. */
  delta?: { changes: Delta; below: LayerRecord[] };
  /** Every layer of the image, bottom first, as files in the layer store (native path). */
  layers?: (LayerFile & { role: LayerRecord['role'] })[];
  /** The image described around the archive (native path). */
  image?: OciImage;
  /** Registry reference the pack step pulls from. */
  pullRef?: string;
  /** Added to `pack create`'s environment: how smolvm finds the pull's credentials (native path). */
  packEnv?: Record<string, string>;
  /** The new launcher, under a temporary name inside the state folder until it is kept. */
  stagedLauncher?: string;
}
