/** What every freeze step reads and writes: the bottle's names, the tools, and what earlier steps made. */
import type { Log } from '../log';
import type { Runner } from '../run';
import type { StateStore } from '../state';
import type { Pusher } from '../tools/push';
import type { SmolvmCli } from '../tools/smolvm';

/** Inside the VM, on disk (`/tmp` is tmpfs) so that it survives until `machine cp`. */
export const VM_ARCHIVE = '/var/tmp/.bot-bottle-commit.tar.gz';

/** Left out of the archive: kernel and runtime file systems, and the ephemeral temp folders. */
export const ARCHIVE_EXCLUDES = ['./proc', './sys', './dev', './run', './tmp', './var/tmp'] as const;

/** Cleanups run after cancel too, so they get their own time limit instead of the signal. */
export const CLEANUP_TIMEOUT_MS = 60_000;

export interface FreezeTools {
  smolvm: SmolvmCli;
  docker?: string;
  registry?: string;
  pusher: Pusher;
}

export interface FreezeState {
  readonly slug: string;
  readonly machine: string;
  readonly imageRef: string;
  readonly store: StateStore;
  readonly tools: FreezeTools;
  readonly run: Runner;
  /** Where background tools (the registry) write their output. */
  readonly toolLog: Log;
  readonly pullHost: string;
  /** Tool name -> version, for the snapshot record. */
  readonly versions: Record<string, string>;
  /** Host temp folder holding the archive and the Dockerfile. */
  workDir?: string;
  archive?: string;
  archiveBytes?: number;
  imageId?: string;
  imageTarball?: string;
  /** Registry reference the pack step pulls from. */
  pullRef?: string;
  /** The new launcher, under a temporary name inside the state folder until it is kept. */
  stagedLauncher?: string;
}
