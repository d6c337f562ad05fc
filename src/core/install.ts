/**
 * Installing a snapshot as one unit. The live snapshot is a set of files in the bottle's folder
 * (sidecar, launcher, record). The new set waits, complete and synced, in a staging folder
 * (`.incoming-*`) beside them. A journal, written before anything live moves, names both sets and
 * the folder the old set is parked in (`.previous-*`). Then the old files are parked, the new ones
 * moved in, and the journal is marked committed: that rename is the commit point. Settling the
 * journal finishes an install that stopped anywhere: forward when it was committed, back otherwise,
 * so that the folder holds exactly the old set or the new one.
 *
 * History rides on the same journal. `keepPrevious` names the history folder the parked old set
 * becomes once the install is committed (one rename of the parked folder), so installing a new
 * snapshot and keeping the last one in the history are one unit. `takeFrom` names a history folder
 * whose files were linked into the staging folder (a history entry made the newest again): it goes
 * once the install is committed, and stays untouched when the install is rolled back.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { exists } from './fsutil';

export const JOURNAL_NAME = '.install-journal.json';
export const STAGING_PREFIX = '.incoming-';
export const PARKING_PREFIX = '.previous-';
/** The folder of a bottle's older snapshots, one folder each. */
export const HISTORY_DIR = 'history';
/** A history entry's folder name: the time of its snapshot, then a random part. */
export const HISTORY_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

/** The file operations that change a bottle's folder, replaceable in tests to fail or stop at any one. */
export interface InstallFs {
  rename(from: string, to: string): Promise<void>;
  rm(path: string, options: { recursive?: boolean; force?: boolean }): Promise<void>;
  mkdir(path: string, options: { mode: number }): Promise<unknown>;
  writeFile(path: string, data: string, options: { mode: number; flag?: string }): Promise<void>;
}

export const realInstallFs: InstallFs = { rename, rm, mkdir, writeFile };

/** What an install does with the bottle's history once it is committed. */
export interface HistoryMoves {
  /** The history entry id the parked old set becomes (when there was one). */
  keepPrevious?: string;
  /** The history entry id whose files were staged: it is removed. */
  takeFrom?: string;
}

interface Journal extends HistoryMoves {
  /** 2 when the journal moves history entries: a version that knows no history must not finish it. */
  version: 1 | 2;
  /** Folder names inside the bottle's folder. */
  incoming: string;
  previous: string;
  /** The live file names before the install, and the staged ones. */
  old: string[];
  new: string[];
  committed: boolean;
}

/** Install did not finish, and putting the old files back failed too: the journal stays for recovery. */
export class InstallUnfinishedError extends Error {
  constructor(readonly dir: string, override readonly cause: unknown, readonly undoError: unknown) {
    super(`${errorText(cause)}; putting the last good snapshot back failed too (${errorText(undoError)}). It is kept in ${dir} and is put back the next time Bot Bottle starts.`);
    this.name = 'InstallUnfinishedError';
  }
}

/** A new empty staging folder inside `dir`, private to its owner. */
export async function makeStagingDir(dir: string, fs: InstallFs = realInstallFs): Promise<string> {
  const staging = join(dir, `${STAGING_PREFIX}${randomBytes(6).toString('hex')}`);
  await fs.mkdir(staging, { mode: 0o700 });
  return staging;
}

/**
 * Makes the files `names` found in `staging` the live ones in `dir`, in place of the live files of
 * those names, as one unit. A name missing from `staging` is missing from the result.
 */
export async function installStaged(dir: string, staging: string, names: readonly string[], fs: InstallFs = realInstallFs, moves: HistoryMoves = {}): Promise<void> {
  await settleInstall(dir, fs);
  const journal: Journal = {
    ...moves,
    version: moves.keepPrevious || moves.takeFrom ? 2 : 1,
    incoming: basename(staging),
    previous: `${PARKING_PREFIX}${randomBytes(6).toString('hex')}`,
    old: await present(dir, names),
    new: await present(staging, names),
    committed: false,
  };
  if (journal.old.length === 0) delete journal.keepPrevious;
  for (const name of journal.new) await syncPath(join(staging, name));
  try {
    if (journal.keepPrevious) await fs.mkdir(join(dir, HISTORY_DIR), { mode: 0o700 }).catch(ignoreExisting);
    await writeJournal(dir, journal, fs);
    await fs.mkdir(join(dir, journal.previous), { mode: 0o700 });
    for (const name of journal.old) await fs.rename(join(dir, name), join(dir, journal.previous, name));
    for (const name of journal.new) await fs.rename(join(staging, name), join(dir, name));
    await writeJournal(dir, { ...journal, committed: true }, fs);
  } catch (error) {
    const settled = await settleInstall(dir, fs).catch((undoError: unknown) => {
      throw new InstallUnfinishedError(dir, error, undoError);
    });
    // A history folder this install made for the old set goes with it when the install went back.
    if (settled === 'back' && journal.keepPrevious) await rmdir(join(dir, HISTORY_DIR)).catch(() => undefined);
    // Only a flush after the commit point failed: the new set is live, the install done.
    if (settled !== 'forward') throw error;
    return;
  }
  // Committed: the new set is live. Parked and staged leftovers go now, or at the next settle.
  await settleInstall(dir, fs).catch(() => undefined);
}

/**
 * Finishes an install that stopped (a crash, or a failure whose undo failed too): forward if it was
 * committed, else back. Returns what it did.
 */
export async function settleInstall(dir: string, fs: InstallFs = realInstallFs): Promise<'none' | 'forward' | 'back'> {
  const journal = await readJournal(dir);
  if (!journal) return 'none';
  await settle(dir, journal, fs);
  await fs.rm(join(dir, JOURNAL_NAME), { force: true });
  return journal.committed ? 'forward' : 'back';
}

/** Makes the files `names` in the parked folder `parked` (a name in `dir`) the live set again, exactly. */
export async function restoreParked(dir: string, parked: string, names: readonly string[], fs: InstallFs = realInstallFs): Promise<void> {
  const journal: Journal = { version: 1, incoming: '', previous: parked, old: await present(join(dir, parked), names), new: [...names], committed: false };
  await settle(dir, journal, fs);
}

async function settle(dir: string, journal: Journal, fs: InstallFs): Promise<void> {
  if (!journal.committed) await rollBack(dir, journal, fs);
  else await moveHistory(dir, journal, fs);
  await fs.rm(join(dir, journal.previous), { recursive: true, force: true });
  if (journal.incoming) await fs.rm(join(dir, journal.incoming), { recursive: true, force: true });
  await syncPath(dir);
}

/**
 * Puts the parked files back. A live file is new (to be removed) if its name is not an old one, or
 * if the old file of that name is parked; that holds at every point of an install and of this undo,
 * so a rollback stopped halfway is finished by running it again.
 */
async function rollBack(dir: string, journal: Journal, fs: InstallFs): Promise<void> {
  const parked = join(dir, journal.previous);
  for (const name of journal.new) if (!journal.old.includes(name)) await fs.rm(join(dir, name), { force: true });
  for (const name of journal.old) if (await exists(join(parked, name))) await fs.rename(join(parked, name), join(dir, name));
}

/**
 * After the commit point: the parked set becomes a history entry, and a history entry that was made
 * the newest goes. Each is one rename or removal, and a settle run again skips what is done.
 */
async function moveHistory(dir: string, journal: Journal, fs: InstallFs): Promise<void> {
  const parked = join(dir, journal.previous);
  if (journal.keepPrevious && (await exists(parked))) {
    const entry = join(dir, HISTORY_DIR, journal.keepPrevious);
    if (!(await exists(entry))) await fs.rename(parked, entry);
  }
  if (journal.takeFrom) await fs.rm(join(dir, HISTORY_DIR, journal.takeFrom), { recursive: true, force: true });
}

async function writeJournal(dir: string, journal: Journal, fs: InstallFs): Promise<void> {
  const path = join(dir, JOURNAL_NAME);
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.writeFile(temp, `${JSON.stringify(journal)}\n`, { mode: 0o600, flag: 'wx' });
    await syncPath(temp);
    await fs.rename(temp, path);
  } catch (error) {
    await fs.rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
  await syncPath(dir);
}

async function readJournal(dir: string): Promise<Journal | undefined> {
  let text;
  try {
    text = await readFile(join(dir, JOURNAL_NAME), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const journal = parseJournal(text);
  if (!journal) throw new Error(`${join(dir, JOURNAL_NAME)} is not an install journal this version can finish. Move it away to use this bottle.`);
  return journal;
}

/** Only names this module makes: a journal must never point a removal outside the bottle's folder. */
function parseJournal(text: string): Journal | undefined {
  try {
    const journal = JSON.parse(text) as Journal;
    const names = [...journal.old, ...journal.new];
    const historyIds = [journal.keepPrevious, journal.takeFrom].filter((id) => id !== undefined);
    const ok = (journal.version === 1 ? historyIds.length === 0 : journal.version === 2) && typeof journal.committed === 'boolean'
      && historyIds.every((id) => typeof id === 'string' && HISTORY_ID.test(id))
      && /^\.previous-[0-9a-f]+$/.test(journal.previous)
      && /^\.incoming-[A-Za-z0-9]+$/.test(journal.incoming)
      && names.every((name) => typeof name === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name));
    return ok ? journal : undefined;
  } catch {
    return undefined;
  }
}

async function present(dir: string, names: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const name of names) if (await exists(join(dir, name))) found.push(name);
  return found;
}

/** Flushes a file or folder to disk, so that a power cut cannot undo a step the journal relies on. */
async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ignoreExisting(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
