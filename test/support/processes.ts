/** Is a process, or a whole process group, still there? For tests that check nothing outlives them. */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { descendantsOf } from '../sim/guest';

export function isAlive(pid: number): boolean {
  return signalZero(pid);
}

export function groupAlive(pgid: number): boolean {
  return signalZero(-pgid);
}

/** Polls until `predicate` holds or `ms` pass; says whether it held. */
export async function waitFor(predicate: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (predicate()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return predicate();
}

function signalZero(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A mark for every process a test starts: set in this process's environment, it is inherited by
 * every child and grandchild, so a test can look for its own leftovers by it and never mistake
 * another run's processes (another test file, another session on the machine) for its own.
 */
export function markChildren(): { marker: string; unmark: () => void } {
  const marker = `${process.pid}-${randomBytes(8).toString('hex')}`;
  const before = process.env[RUN_MARKER];
  process.env[RUN_MARKER] = marker;
  const unmark = () => {
    if (before === undefined) delete process.env[RUN_MARKER];
    else process.env[RUN_MARKER] = before;
  };
  return { marker, unmark };
}

const RUN_MARKER = 'BOT_BOTTLE_TEST_RUN';

/** `<pid> <command line>` of every process other than this one whose environment carries `marker`. */
export function processesMarked(marker: string): string[] {
  const wanted = `\0${RUN_MARKER}=${marker}\0`;
  const found: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const environ = readProc(name, 'environ');
    if (environ === undefined || !`\0${environ}`.includes(wanted)) continue;
    found.push(`${name} ${(readProc(name, 'cmdline') ?? '').split('\0').join(' ').trim()}`);
  }
  return found;
}

function readProc(pid: string, file: string): string | undefined {
  try {
    return readFileSync(join('/proc', pid, file), 'latin1');
  } catch {
    return undefined;
  }
}

/** Killed groups take a moment to go (zombies wait for their reaper): the ids of those still there after `ms`. */
export async function groupsLeftAfter(pgids: readonly number[], ms: number): Promise<number[]> {
  const end = Date.now() + ms;
  while (pgids.some(groupAlive) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 25));
  return pgids.filter(groupAlive);
}

/** `pid` and every live process below it, read from /proc (children a tool started in any group). */
export function processTree(pid: number): number[] {
  return [pid, ...descendantsOf(pid)].filter(isRunning);
}

/** Of `pids`, those still running (not gone, not a zombie waiting for its reaper) after up to `ms`. */
export async function stillRunningAfter(pids: readonly number[], ms: number): Promise<number[]> {
  await waitFor(() => !pids.some(isRunning), ms);
  return pids.filter(isRunning);
}

function isRunning(pid: number): boolean {
  const stat = readProc(String(pid), 'stat');
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}
