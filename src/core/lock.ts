/**
 * A bottle's lock: one operation (freeze, resume, import, delete, recovery) per bottle at a time,
 * across processes and VS Code windows. The lock is a file created whole in one step (a hard link),
 * naming its owner: a random token, the pid and, on Linux, that process's start time and the boot,
 * so that a pid the system has since given to another process is not taken for the owner.
 *
 * A stale lock (its owner is gone) is taken over under a second lock file, the takeover guard:
 * only its holder may remove a stale lock, and only when the lock is still the very file it judged
 * stale. While the guard is held that file cannot change (its owner is gone, and a new lock needs
 * an empty place), so the removal is safe. Without the guard, two windows that both saw the stale
 * lock could each remove it, the second removing the lock the first had just made. A guard left by
 * a crash is itself stale and cleared the same way, minus a guard of its own: only a crash inside
 * the few steps of a takeover, with windows contending right then, could let two windows in.
 */
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { describeFsError, UserError } from './errors';
import { isProcessAlive } from './fsutil';

export interface LockOwner {
  pid: number;
  host: string;
  operation: string;
  since: string;
  /** Random per lock: only the holder of this token releases it. Missing in locks of older versions. */
  token?: string;
  /** Linux: field 22 of /proc/<pid>/stat, the owner's start time since boot. */
  startTime?: string;
  /** Linux: the boot the owner ran in; a lock from an earlier boot is stale. */
  bootId?: string;
}

export interface BottleLock {
  readonly owner: LockOwner;
  /** The owner of the stale lock this one replaced, if any. */
  readonly tookOverFrom?: LockOwner;
  /** Removes the lock file if it is still this lock's; never someone else's. */
  release(): Promise<void>;
}

/** The bottle is locked by an owner that is (or may be) alive. */
export class BottleLockedError extends UserError {
  constructor(message: string, readonly owner: LockOwner | undefined) {
    super(message);
    this.name = 'BottleLockedError';
  }
}

/** How a lock's owner looks from here. */
type OwnerState = 'alive' | 'alive-unverified' | 'elsewhere' | 'gone';

interface LockFile {
  /** The file's exact text: what a takeover compares before removing it. */
  text: string;
  /** Undefined when the text is not a lock (garbage): such a lock has no owner and is stale. */
  owner?: LockOwner;
}

/** Enough for a stale guard and a stale lock to be cleared, then the lock taken. */
const ATTEMPTS = 4;

/** Takes the lock at `path` for `operation` on bottle `slug`, taking over a stale one. */
export async function acquireLock(path: string, slug: string, operation: string): Promise<BottleLock> {
  const owner = await describeThisProcess(operation);
  let tookOverFrom: LockOwner | undefined;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (await createExclusive(path, JSON.stringify(owner))) return { owner, tookOverFrom, release: () => releaseLock(path, owner.token!) };
    const held = await readLockFile(path);
    if (!held) continue;
    const state = await ownerState(held.owner);
    if (state !== 'gone') throw new BottleLockedError(lockedMessage(slug, held.owner!, path, state), held.owner);
    if (await clearStale(path, held, slug)) tookOverFrom = held.owner;
  }
  throw new BottleLockedError(`Could not take the lock ${path} for bottle "${slug}": other windows kept taking it. Try again.`, undefined);
}

/** The lock's owner when it is (or may be) alive; undefined when there is no lock or a stale one. */
export async function liveLockOwner(path: string): Promise<LockOwner | undefined> {
  const held = await readLockFile(path);
  return held?.owner && (await ownerState(held.owner)) !== 'gone' ? held.owner : undefined;
}

async function releaseLock(path: string, token: string): Promise<void> {
  // Only a takeover could change the file between the read and the removal, and a takeover
  // needs this (living) process to be gone.
  const held = await readLockFile(path).catch(() => undefined);
  if (held?.owner?.token === token) await rm(path, { force: true });
}

/** Removes the stale lock `held`, holding the takeover guard; false if another window was first. */
async function clearStale(path: string, held: LockFile, slug: string): Promise<boolean> {
  const guard = `${path}.takeover`;
  const guardOwner = await describeThisProcess('takeover');
  if (!(await createExclusive(guard, JSON.stringify(guardOwner)))) {
    const other = await readLockFile(guard);
    if (other && (await ownerState(other.owner)) !== 'gone')
      throw new BottleLockedError(`Another window is taking over the lock ${path} of bottle "${slug}" right now. Try again.`, other.owner);
    if (other) await removeIfUnchanged(guard, other.text, slug);
    return false;
  }
  try {
    // Judged before the guard was ours: another window may have taken over and locked since.
    if ((await readLockFile(path))?.text !== held.text) return false;
    return await removeIfUnchanged(path, held.text, slug);
  } finally {
    await releaseLock(guard, guardOwner.token!);
  }
}

/**
 * Renames `path` aside and removes it if it is still the file whose text was `text`; a file that
 * changed meanwhile is put back. True if it removed the file.
 */
async function removeIfUnchanged(path: string, text: string, slug: string): Promise<boolean> {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new UserError(`The lock ${path} of bottle "${slug}" is left from work that was interrupted, and it cannot be removed: ${describeFsError(error)}. Delete ${path} by hand.`);
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  // A file that changed since it was judged stale goes back. Under the guard the lock cannot change,
  // so this happens only to a guard left by a window that crashed inside a takeover.
  if (moved !== text) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
  return moved === text;
}

/** Creates `path` with `content` in one step, or returns false if it exists. Mode 0600. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, content, { mode: 0o600, flag: 'wx' });
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new UserError(`Cannot write in the state folder ${dirname(path)}: ${describeFsError(error)}. Check botBottle.stateDir.`);
  } finally {
    await rm(temp, { force: true });
  }
}

async function readLockFile(path: string): Promise<LockFile | undefined> {
  let text;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`Cannot read the lock ${path}: ${describeFsError(error)}. Delete it if no window is working on this bottle.`);
  }
  return { text, owner: parseOwner(text) };
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner> | null;
    if (typeof value?.pid !== 'number' || typeof value.host !== 'string' || typeof value.operation !== 'string') return undefined;
    return value as LockOwner;
  } catch {
    return undefined;
  }
}

async function describeThisProcess(operation: string): Promise<LockOwner> {
  const identity = await processIdentity(process.pid);
  return {
    pid: process.pid,
    host: hostname(),
    operation,
    since: new Date().toISOString(),
    token: randomBytes(16).toString('hex'),
    startTime: identity?.startTime,
    bootId: await currentBootId(),
  };
}

/** A lock from another host cannot be checked from here; on this host, the pid, its start time and the boot are. */
async function ownerState(owner: LockOwner | undefined): Promise<OwnerState> {
  if (!owner) return 'gone';
  if (owner.host !== hostname()) return 'elsewhere';
  const boot = await currentBootId();
  if (owner.bootId && boot && owner.bootId !== boot) return 'gone';
  if (!isProcessAlive(owner.pid)) return 'gone';
  const now = await processIdentity(owner.pid);
  if (now?.zombie) return 'gone';
  if (!owner.startTime || !now) return owner.pid === process.pid ? 'alive' : 'alive-unverified';
  return now.startTime === owner.startTime ? 'alive' : 'gone';
}

/** Linux only (/proc); undefined elsewhere, where a pid alone says whether the owner lives. */
async function processIdentity(pid: number): Promise<{ startTime: string; zombie: boolean } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { startTime: fields[19], zombie: fields[0] === 'Z' };
}

async function currentBootId(): Promise<string | undefined> {
  const id = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined);
  return id?.trim() || undefined;
}

function lockedMessage(slug: string, owner: LockOwner, path: string, state: OwnerState): string {
  const where = owner.pid === process.pid && state === 'alive' ? 'in this window' : `by process ${owner.pid} on ${owner.host}`;
  const message = `A ${owner.operation} of bottle "${slug}" is already running (${where}, since ${owner.since}). Wait for it to finish.`;
  if (state === 'elsewhere') return `${message} If nothing runs on ${owner.host} any more, delete ${path}.`;
  if (state === 'alive-unverified') return `${message} If process ${owner.pid} is not a VS Code window, delete ${path}.`;
  return message;
}
