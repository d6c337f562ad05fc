/**
 * The bottle state folders: one per slug under a root, holding the last good snapshot at the seed's
 * paths (`committed-smolmachine` and its `.smolmachine` sidecar) and a JSON record beside them.
 */
import { homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describeFsError, UserError } from './errors';
import { exists, writeFileAtomic } from './fsutil';
import { acquireLock, BottleLockedError, liveLockOwner, type BottleLock, type LockOwner } from './lock';
import { slugProblem } from './names';

export { BottleLockedError, type BottleLock, type LockOwner };

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
   * Takes the bottle's lock for one operation (freeze, resume, import, delete), across processes and
   * VS Code windows; a lock whose owner is gone is taken over (see lock.ts).
   */
  async lock(slug: string, operation: string): Promise<BottleLock> {
    await this.ensureBottleDir(slug);
    return acquireLock(this.lockPath(slug), slug, operation);
  }

  /** Runs `work` holding the bottle's lock. */
  async withLock<T>(slug: string, operation: string, work: () => Promise<T>): Promise<T> {
    const lock = await this.lock(slug, operation);
    try {
      return await work();
    } finally {
      await lock.release();
    }
  }

  /** The live owner of a bottle's lock, if any (to disable Freeze while one runs elsewhere). */
  async lockOwner(slug: string): Promise<LockOwner | undefined> {
    return liveLockOwner(this.lockPath(slug));
  }

  lockPath(slug: string): string {
    return join(this.bottleDir(slug), LOCK_NAME);
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

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
