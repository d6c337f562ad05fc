/**
 * The bottle state folders: one per slug under a root, holding the last good snapshot at the seed's
 * paths (`committed-smolmachine` and its `.smolmachine` sidecar) and a JSON record beside them, and
 * the older snapshots in `history/<id>/`, each a folder of the same three files.
 *
 * The three files are one snapshot and change only together, through install.ts: the flat seed paths
 * stay the live files (other tools and older versions read them there), and a journal makes the swap
 * of all three one unit. Folders are private to their owner (0700), files 0600.
 */
import { homedir } from 'node:os';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describeFsError, UserError } from './errors';
import { exists, writeFileAtomic } from './fsutil';
import { newHistoryId, REMOVING_PREFIX } from './history';
import { HISTORY_DIR, HISTORY_ID, installStaged as installStagedFiles, makeStagingDir, PARKING_PREFIX, realInstallFs, restoreParked, settleInstall, STAGING_PREFIX, type InstallFs } from './install';
import { acquireLock, BottleLockedError, liveLockOwner, type BottleLock, type LockOwner } from './lock';
import type { MachineSettings } from './machineSettings';
import { slugProblem } from './names';

export { BottleLockedError, type BottleLock, type LockOwner };

export const LAUNCHER_NAME = 'committed-smolmachine';
export const SIDECAR_NAME = `${LAUNCHER_NAME}.smolmachine`;
export const RECORD_NAME = 'snapshot.json';
export const IMAGE_TARBALL_NAME = 'committed.image.tar';
/** The listing of the root filesystem the snapshot was archived after (gzip), for the next freeze's delta. */
export const LISTING_NAME = 'rootfs.listing.gz';
/** The files of one snapshot, installed and removed together. */
export const SNAPSHOT_FILES: readonly string[] = [SIDECAR_NAME, LAUNCHER_NAME, RECORD_NAME, LISTING_NAME];
const LOCK_NAME = '.bot-bottle.lock';
const PRIVATE_DIR = 0o700;
const PRIVATE_FILE = 0o600;
/** The launcher is a program: its owner may run it. */
const PRIVATE_PROGRAM = 0o700;

export interface StepTiming {
  id: string;
  title: string;
  ms: number;
}

/** One layer of the image a snapshot was packed from, kept in the layer store (layerStore.ts). */
export interface LayerRecord {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  /** `full`: the whole root filesystem; `delta`: what changed since the snapshot below; `whiteouts`: what was deleted. */
  role: 'full' | 'delta' | 'whiteouts';
}

/** Where the listing kept with a snapshot came from, to tell whether the next freeze can trust it. */
export interface ListingRecord {
  /** The file's name in the bottle's folder, and the sha256 of its bytes. */
  file: string;
  sha256: string;
  /** The machine listed, and when smolvm says it was created: another machine of the same name has other inodes. */
  machine: string;
  machineCreatedAt: string;
  entries: number;
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
  /** `gzip`, `zstd` or `none`: the archive made in the VM. */
  compression?: string;
  /** The bottle's mount points the archive left out (host folders, `-v`). */
  mountsLeftOut?: string[];
  /** Set when the sidecar was imported from a file rather than frozen here. */
  importedFrom?: string;
  /** The machine's settings as smolvm reported them at freeze time, for the resume to give back. */
  machineSettings?: MachineSettings;
  /** The image's layers, bottom first (native path). */
  layers?: LayerRecord[];
  /** The listing the snapshot was archived after (native path, with GNU find in the bottle). */
  listing?: ListingRecord;
  tools: Record<string, string>;
  steps: StepTiming[];
  /** What the user named the snapshot; without one it goes by its time. */
  name?: string;
  note?: string;
  /** A pinned snapshot is never pruned from the history. */
  pinned?: boolean;
}

/** What the user can change of a snapshot's record. */
export interface SnapshotLabels {
  /** An empty name goes back to the time. */
  name?: string;
  /** An empty note removes it. */
  note?: string;
  pinned?: boolean;
}

export interface Snapshot {
  slug: string;
  sidecar: string;
  launcher: string;
  sizeBytes: number;
  createdAt: Date;
  /** Missing for a sidecar that bot-bottle's own tools or an older version wrote. */
  record?: SnapshotRecord;
  /** Why there is no record, in words that follow "the snapshot": e.g. "has no record". */
  recordProblem?: string;
  /** The id of its folder in the bottle's history; absent for the newest, at the seed's paths. */
  historyId?: string;
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
      await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
    } catch (error) {
      throw new UserError(`Cannot create the state folder ${dir}: ${describeFsError(await realMkdirError(dir, error))}. Check botBottle.stateDir.`);
    }
    await makePrivate(dir);
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

  historyDir(slug: string): string {
    return join(this.bottleDir(slug), HISTORY_DIR);
  }

  /** The folder that holds a snapshot's files: the bottle's own for the newest, else its history entry. */
  snapshotDir(slug: string, historyId?: string): string {
    return historyId === undefined ? this.bottleDir(slug) : join(this.historyDir(slug), historyId);
  }

  /** The newest snapshot, at the seed's paths. */
  async readSnapshot(slug: string): Promise<Snapshot | undefined> {
    return this.readSnapshotIn(slug, undefined);
  }

  /** The older snapshots, newest first. */
  async readHistory(slug: string): Promise<Snapshot[]> {
    const ids = (await readdir(this.historyDir(slug)).catch(() => [] as string[])).filter((name) => HISTORY_ID.test(name));
    const entries = await Promise.all(ids.map((id) => this.readSnapshotIn(slug, id)));
    return entries.filter((s): s is Snapshot => s !== undefined).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (b.historyId! < a.historyId! ? -1 : 1));
  }

  /** The bytes of every snapshot file the bottle keeps, the history's included. */
  async diskUsage(slug: string): Promise<number> {
    const dirs = [this.bottleDir(slug), ...(await this.readHistory(slug)).map((s) => this.snapshotDir(slug, s.historyId))];
    const sizes = await Promise.all(dirs.flatMap((dir) => SNAPSHOT_FILES.map((name) => stat(join(dir, name)).then((info) => (info.isFile() ? info.size : 0), () => 0))));
    return sizes.reduce((sum, size) => sum + size, 0);
  }

  private async readSnapshotIn(slug: string, historyId: string | undefined): Promise<Snapshot | undefined> {
    const dir = this.snapshotDir(slug, historyId);
    const sidecar = join(dir, SIDECAR_NAME);
    let info;
    try {
      info = await stat(sidecar);
    } catch {
      return undefined;
    }
    if (!info.isFile()) return undefined;
    const { record, problem } = await readRecordFile(join(dir, RECORD_NAME));
    const snapshot: Snapshot = {
      slug,
      sidecar,
      launcher: join(dir, LAUNCHER_NAME),
      sizeBytes: info.size,
      createdAt: record ? new Date(record.createdAt) : info.mtime,
      record,
      recordProblem: problem,
    };
    if (historyId !== undefined) snapshot.historyId = historyId;
    return snapshot;
  }

  async writeRecord(record: SnapshotRecord): Promise<void> {
    await writeFileAtomic(this.recordPath(record.slug), recordText(record));
    await chmod(this.recordPath(record.slug), PRIVATE_FILE);
  }

  /** A new, empty staging folder in the bottle's folder, for the files of a snapshot to install. */
  async makeStaging(slug: string): Promise<string> {
    return makeStagingDir(await this.ensureBottleDir(slug));
  }

  /** Writes the record into a staging folder, beside the sidecar it describes. */
  async writeStagedRecord(staging: string, record: SnapshotRecord, fs: InstallFs = realInstallFs): Promise<void> {
    await fs.writeFile(join(staging, RECORD_NAME), recordText(record), { mode: PRIVATE_FILE, flag: 'wx' });
  }

  /**
   * Makes the snapshot in `staging` (from makeStaging: sidecar, launcher if any, record) the newest
   * as one unit, and the last good one the newest entry of the history: after any failure or crash
   * the bottle has one of the two as its newest, whole, and loses neither. The caller holds the lock.
   */
  async installStaged(slug: string, staging: string, fs: InstallFs = realInstallFs): Promise<void> {
    for (const name of SNAPSHOT_FILES) await chmod(join(staging, name), name === LAUNCHER_NAME ? PRIVATE_PROGRAM : PRIVATE_FILE).catch(ignoreMissing);
    const live = await this.readSnapshot(slug);
    const keepPrevious = live ? newHistoryId(live.createdAt) : undefined;
    await installStagedFiles(this.bottleDir(slug), staging, SNAPSHOT_FILES, fs, { keepPrevious });
  }

  /**
   * Puts a new snapshot in place of the last good one as one unit (see installStaged). The staged
   * pair must be `committed-smolmachine` and its sidecar in a staging folder of the bottle's folder.
   */
  async replaceSnapshot(record: SnapshotRecord, staged: { sidecar: string; launcher: string }, fs: InstallFs = realInstallFs): Promise<void> {
    const staging = dirname(staged.sidecar);
    if (dirname(staging) !== this.bottleDir(record.slug) || staged.sidecar !== join(staging, SIDECAR_NAME) || staged.launcher !== join(staging, LAUNCHER_NAME))
      throw new Error(`The snapshot to keep must be staged in a folder of ${this.bottleDir(record.slug)} as ${LAUNCHER_NAME} and ${SIDECAR_NAME}.`);
    await this.writeStagedRecord(staging, record, fs);
    await this.installStaged(record.slug, staging, fs);
  }

  /**
   * Removes the newest snapshot as one unit. The newest entry of the history, if any, takes its place
   * in the same install (its files linked into the staging folder, its folder removed once
   * committed). Returns the snapshot that is now the newest. The caller holds the lock.
   */
  async deleteSnapshot(slug: string, fs: InstallFs = realInstallFs): Promise<Snapshot | undefined> {
    const [next] = await this.readHistory(slug);
    const staging = await this.makeStaging(slug);
    try {
      if (next) for (const name of SNAPSHOT_FILES) await link(join(this.snapshotDir(slug, next.historyId), name), join(staging, name)).catch(ignoreMissing);
      await installStagedFiles(this.bottleDir(slug), staging, SNAPSHOT_FILES, fs, { takeFrom: next?.historyId });
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    return this.readSnapshot(slug);
  }

  /**
   * Removes one entry of the history: renamed out of the way in one step, then deleted, so that a
   * crash leaves the whole entry or none (recovery finishes the removal). The caller holds the lock.
   */
  async deleteHistoryEntry(slug: string, historyId: string): Promise<void> {
    if (!HISTORY_ID.test(historyId)) throw new Error(`"${historyId}" is not a history entry.`);
    const removing = join(this.historyDir(slug), `${REMOVING_PREFIX}${historyId}`);
    await rename(this.snapshotDir(slug, historyId), removing);
    await rm(removing, { recursive: true, force: true });
  }

  /**
   * Changes a snapshot's name, note or pin in its record, in one atomic rename of the record (its
   * sidecar and sha256 are untouched). A snapshot without a record this version can read has
   * nowhere to keep them. The caller holds the lock.
   */
  async labelSnapshot(slug: string, historyId: string | undefined, labels: SnapshotLabels): Promise<Snapshot> {
    await settleInstall(this.bottleDir(slug));
    const snapshot = await this.readSnapshotIn(slug, historyId);
    if (!snapshot) throw new UserError(`That snapshot of ${slug} is gone.`);
    if (!snapshot.record) throw new UserError(`The snapshot of ${slug} ${snapshot.recordProblem ?? 'has no record'}, so it cannot keep a name, a note or a pin.`);
    const record: SnapshotRecord = { ...snapshot.record };
    if (labels.name !== undefined) setOrDrop(record, 'name', labels.name.trim());
    if (labels.note !== undefined) setOrDrop(record, 'note', labels.note.trim());
    if (labels.pinned !== undefined) setOrDrop(record, 'pinned', labels.pinned || undefined);
    const path = join(this.snapshotDir(slug, historyId), RECORD_NAME);
    await writeFileAtomic(path, recordText(record), PRIVATE_FILE);
    return { ...snapshot, record };
  }

  /**
   * After a crash: finishes an install that stopped, and removes staging and temporary files. Returns
   * one line per thing it did. The caller holds the bottle's lock.
   */
  async recoverSnapshotFiles(slug: string): Promise<string[]> {
    const dir = this.bottleDir(slug);
    const done: string[] = [];
    const settled = await settleInstall(dir);
    if (settled === 'forward') done.push('finished installing the new snapshot');
    if (settled === 'back') done.push('put back the last good snapshot');
    for (const name of await readdir(dir)) {
      if (name.startsWith(PARKING_PREFIX)) done.push(await this.settleOlderParking(slug, name));
      else if (name.startsWith(STAGING_PREFIX) || name.endsWith('.importing') || isLeftoverTemp(name)) {
        await rm(join(dir, name), { recursive: true, force: true });
        done.push(`removed ${name}`);
      }
    }
    done.push(...(await this.recoverHistory(slug)));
    return done;
  }

  /** A history entry whose removal stopped is removed; a record's temporary file goes. */
  private async recoverHistory(slug: string): Promise<string[]> {
    const history = this.historyDir(slug);
    const done: string[] = [];
    for (const name of await readdir(history).catch(() => [] as string[])) {
      if (name.startsWith(REMOVING_PREFIX)) {
        await rm(join(history, name), { recursive: true, force: true });
        done.push(`finished removing the history entry ${name.slice(REMOVING_PREFIX.length)}`);
      } else if (HISTORY_ID.test(name)) {
        for (const file of await readdir(join(history, name)).catch(() => [] as string[])) {
          if (isLeftoverTemp(file)) await rm(join(history, name, file), { force: true });
        }
      }
    }
    return done;
  }

  /**
   * A parked folder without a journal was left by an older version's interrupted swap. Nothing is
   * guessed: the whole snapshot of the two is kept, and when neither is whole both stay for the user.
   */
  private async settleOlderParking(slug: string, name: string): Promise<string> {
    const dir = this.bottleDir(slug);
    const parked = await readdir(join(dir, name));
    if ((await isWholeSnapshotIn(dir)) || !SNAPSHOT_FILES.some((file) => parked.includes(file))) {
      await rm(join(dir, name), { recursive: true, force: true });
      return `removed ${name}`;
    }
    if (await isWholeSnapshotIn(join(dir, name))) {
      await restoreParked(dir, name, SNAPSHOT_FILES);
      return 'put back the last good snapshot';
    }
    return `kept ${join(dir, name)}: neither it nor the snapshot beside it is whole, so both were left as they are`;
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
/**
 * A folder made by an older version (0755) is made private too. On a read-only file system it cannot
 * be, and nothing can be written there either: the lock says so.
 */
async function makePrivate(dir: string): Promise<void> {
  if (((await stat(dir)).mode & 0o777) === PRIVATE_DIR) return;
  await chmod(dir, PRIVATE_DIR).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'EROFS') return;
    throw new UserError(`Cannot make the state folder ${dir} private (mode 0700): ${describeFsError(error)}. Check botBottle.stateDir.`);
  });
}

async function realMkdirError(dir: string, error: unknown): Promise<unknown> {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return error;
  let missing = dir;
  while (dirname(missing) !== missing && !(await exists(dirname(missing)))) missing = dirname(missing);
  return mkdir(missing).then(() => error, (real: unknown) => real);
}

/** The record, or why there is none in words that follow "the snapshot". */
async function readRecordFile(path: string): Promise<{ record?: SnapshotRecord; problem?: string }> {
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { problem: 'has no record' };
    return { problem: `has a record that cannot be read (${describeFsError(error)})` };
  }
  let value: Partial<SnapshotRecord> | null;
  try {
    value = JSON.parse(text) as Partial<SnapshotRecord> | null;
  } catch {
    return { problem: 'has a record that is not valid JSON' };
  }
  const version = value?.version as unknown;
  if (typeof version === 'number' && version > 1) return { problem: `has a record written by a newer version of Bot Bottle (record version ${version})` };
  if (version !== 1 || typeof value?.sha256 !== 'string' || typeof value.sidecarBytes !== 'number') return { problem: 'has a record this version cannot read' };
  return { record: value as SnapshotRecord };
}

/** Whether `dir` holds a sidecar whose size and sha256 are those in the record beside it. */
async function isWholeSnapshotIn(dir: string): Promise<boolean> {
  const { record } = await readRecordFile(join(dir, RECORD_NAME));
  const sidecar = join(dir, SIDECAR_NAME);
  const info = await stat(sidecar).catch(() => undefined);
  if (!record || !info?.isFile() || info.size !== record.sidecarBytes) return false;
  return (await sha256File(sidecar)) === record.sha256;
}

function recordText(record: SnapshotRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

/** A temporary file of writeFileAtomic, the install journal or the lock, left by a crash. */
function isLeftoverTemp(name: string): boolean {
  return name.startsWith('.') && /\.[0-9a-f]{8,}\.(tmp|stale)$/.test(name);
}

function setOrDrop<K extends 'name' | 'note' | 'pinned'>(record: SnapshotRecord, key: K, value: SnapshotRecord[K] | ''): void {
  if (value === '' || value === undefined) delete record[key];
  else record[key] = value as SnapshotRecord[K];
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
