/**
 * The bottle state folders: one per slug under a root, holding the last good snapshot at the seed's
 * paths (`committed-smolmachine` and its `.smolmachine` sidecar) and a JSON record beside them.
 */
import { hostname, homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describeFsError, UserError } from './errors';
import { exists, isProcessAlive, writeFileAtomic } from './fsutil';
import type { MachineSettings } from './machineSettings';
import { slugProblem } from './names';

export const LAUNCHER_NAME = 'committed-smolmachine';
export const SIDECAR_NAME = `${LAUNCHER_NAME}.smolmachine`;
export const RECORD_NAME = 'snapshot.json';
export const IMAGE_TARBALL_NAME = 'committed.image.tar';
const LOCK_NAME = '.bot-bottle.lock';

/** fs.rename, or a stand-in that fails on purpose in tests. */
type RenameFile = (from: string, to: string) => Promise<void>;

export interface StepTiming {
  id: string;
  title: string;
  ms: number;
}

/** What a freeze writes beside the sidecar. */
export interface SnapshotRecord {
  version: 1;
  slug: string;
  machine: string;
  createdAt: string;
  sidecar: string;
  launcher: string;
  sidecarBytes: number;
  sha256: string;
  archiveBytes?: number;
  /** `docker` or `native`: how the image that was packed was made. */
  imageBuilder?: string;
  /** `gzip` or `none`: the archive made in the VM. */
  compression?: string;
  /** Set when the sidecar was imported from a file rather than frozen here. */
  importedFrom?: string;
  /** The machine's settings as smolvm reported them at freeze time, for the resume to give back. */
  machineSettings?: MachineSettings;
  tools: Record<string, string>;
  steps: StepTiming[];
}

export interface Snapshot {
  slug: string;
  sidecar: string;
  launcher: string;
  sizeBytes: number;
  createdAt: Date;
  /** Missing for a sidecar that bot-bottle's own tools or an older version wrote. */
  record?: SnapshotRecord;
}

export interface LockOwner {
  pid: number;
  host: string;
  operation: string;
  since: string;
}

export interface BottleLock {
  readonly owner: LockOwner;
  release(): Promise<void>;
}

/** The platform's bot-bottle state folder, used when `botBottle.stateDir` is empty. */
export function defaultStateRoot(platform = process.platform, env = process.env, home = homedir()): string {
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'bot-bottle', 'bottles');
  const stateHome = env.XDG_STATE_HOME || join(home, '.local', 'state');
  return join(stateHome, 'bot-bottle', 'bottles');
}

export class StateStore {
  constructor(readonly root: string) {}

  bottleDir(slug: string): string {
    return join(this.root, slug);
  }

  sidecarPath(slug: string): string {
    return join(this.bottleDir(slug), SIDECAR_NAME);
  }

  launcherPath(slug: string): string {
    return join(this.bottleDir(slug), LAUNCHER_NAME);
  }

  recordPath(slug: string): string {
    return join(this.bottleDir(slug), RECORD_NAME);
  }

  async ensureBottleDir(slug: string): Promise<string> {
    const dir = this.bottleDir(slug);
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw new UserError(`Cannot create the state folder ${dir}: ${describeFsError(await realMkdirError(dir, error))}. Check botBottle.stateDir.`);
    }
    return dir;
  }

  /** Slugs of every state folder (a folder name that could not be a bottle is passed over). */
  async listSlugs(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return entries.filter((e) => e.isDirectory() && !slugProblem(e.name)).map((e) => e.name).sort();
  }

  async readSnapshot(slug: string): Promise<Snapshot | undefined> {
    const sidecar = this.sidecarPath(slug);
    let info;
    try {
      info = await stat(sidecar);
    } catch {
      return undefined;
    }
    if (!info.isFile()) return undefined;
    const record = await this.readRecord(slug);
    return {
      slug,
      sidecar,
      launcher: this.launcherPath(slug),
      sizeBytes: info.size,
      createdAt: record ? new Date(record.createdAt) : info.mtime,
      record,
    };
  }

  async readRecord(slug: string): Promise<SnapshotRecord | undefined> {
    try {
      const value = JSON.parse(await readFile(this.recordPath(slug), 'utf8')) as SnapshotRecord;
      return value?.version === 1 && typeof value.sha256 === 'string' ? value : undefined;
    } catch {
      return undefined;
    }
  }

  async writeRecord(record: SnapshotRecord): Promise<void> {
    await writeFileAtomic(this.recordPath(record.slug), `${JSON.stringify(record, null, 2)}\n`);
  }

  /**
   * Puts a new snapshot in place of the last good one as one unit: the old files are moved aside,
   * the new ones moved in, and on any failure the old ones are moved back. The staged files must be
   * on the same file system (inside the bottle's folder) so that every move is a rename.
   */
  async replaceSnapshot(record: SnapshotRecord, staged: { sidecar: string; launcher: string }, renameFile: RenameFile = rename): Promise<void> {
    const dir = this.bottleDir(record.slug);
    const aside = await mkdtemp(join(dir, '.previous-'));
    const pairs: Array<[string, string]> = [
      [staged.sidecar, this.sidecarPath(record.slug)],
      [staged.launcher, this.launcherPath(record.slug)],
    ];
    const movedAside: Array<[string, string]> = [];
    const movedIn: string[] = [];
    try {
      for (const path of [this.sidecarPath(record.slug), this.launcherPath(record.slug), this.recordPath(record.slug)]) {
        const parked = join(aside, basename(path));
        if (await renameIfExists(renameFile, path, parked)) movedAside.push([parked, path]);
      }
      for (const [from, to] of pairs) {
        await renameFile(from, to);
        movedIn.push(to);
      }
      await this.writeRecord(record);
    } catch (error) {
      for (const path of movedIn) await rm(path, { force: true });
      for (const [parked, path] of movedAside.reverse()) await rename(parked, path);
      throw error;
    } finally {
      await rm(aside, { recursive: true, force: true });
    }
  }

  async deleteSnapshot(slug: string): Promise<void> {
    for (const path of [this.sidecarPath(slug), this.launcherPath(slug), this.recordPath(slug)]) await rm(path, { force: true });
  }

  /**
   * Takes the bottle's lock for one operation (freeze, resume), across processes and VS Code
   * windows: an exclusive lock file naming its owner. A lock whose owner process is gone is stale
   * and taken over.
   */
  async lock(slug: string, operation: string): Promise<BottleLock> {
    await this.ensureBottleDir(slug);
    const path = join(this.bottleDir(slug), LOCK_NAME);
    const owner: LockOwner = { pid: process.pid, host: hostname(), operation, since: new Date().toISOString() };
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.createLockFile(slug, path, owner)) return { owner, release: () => rm(path, { force: true }) };
      const holder = await readLockOwner(path);
      if (holder && !isStale(holder)) throw new UserError(lockedMessage(slug, holder, path));
      await rm(path, { force: true });
    }
    throw new UserError(`Could not take the lock for bottle "${slug}". Try again.`);
  }

  /** A folder the lock cannot be written in (read-only, full) is the user's to fix: say so plainly. */
  private async createLockFile(slug: string, path: string, owner: LockOwner): Promise<boolean> {
    try {
      return await createWithContent(path, JSON.stringify(owner));
    } catch (error) {
      throw new UserError(`Cannot write in the state folder ${this.bottleDir(slug)}: ${describeFsError(error)}. Check botBottle.stateDir.`);
    }
  }

  /** Removes the lock when its owner is gone, and says whose it was. */
  async takeStaleLock(slug: string): Promise<LockOwner | undefined> {
    const path = join(this.bottleDir(slug), LOCK_NAME);
    const holder = await readLockOwner(path);
    if (!holder || !isStale(holder)) return undefined;
    await rm(path, { force: true });
    return holder;
  }

  /** The live owner of a bottle's lock, if any (to disable Freeze while one runs elsewhere). */
  async lockOwner(slug: string): Promise<LockOwner | undefined> {
    const holder = await readLockOwner(join(this.bottleDir(slug), LOCK_NAME));
    return holder && !isStale(holder) ? holder : undefined;
  }
}

/**
 * Node's recursive mkdir reports ENOENT when it could not create a missing parent (on a read-only
 * file system, say); creating the first missing folder by itself gives the real reason.
 */
async function realMkdirError(dir: string, error: unknown): Promise<unknown> {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return error;
  let missing = dir;
  while (dirname(missing) !== missing && !(await exists(dirname(missing)))) missing = dirname(missing);
  return mkdir(missing).then(() => error, (real: unknown) => real);
}

async function renameIfExists(renameFile: RenameFile, from: string, to: string): Promise<boolean> {
  try {
    await renameFile(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Creates the file with its content in one step (a hard link), or returns false if it exists. */
async function createWithContent(path: string, content: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${Date.now()}`;
  await writeFile(temp, content);
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(temp, { force: true });
  }
}

async function readLockOwner(path: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Only a lock from this host whose process is gone is known to be stale. */
function isStale(owner: LockOwner): boolean {
  return owner.host === hostname() && !isProcessAlive(owner.pid);
}

function lockedMessage(slug: string, owner: LockOwner, path: string): string {
  const where = owner.pid === process.pid ? 'in this window' : `by process ${owner.pid} on ${owner.host}`;
  const message = `A ${owner.operation} of bottle "${slug}" is already running (${where}, since ${owner.since}). Wait for it to finish.`;
  // Whether a process on another host is still alive cannot be checked from here.
  return owner.host === hostname() ? message : `${message} If nothing runs on ${owner.host} any more, delete ${path}.`;
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
