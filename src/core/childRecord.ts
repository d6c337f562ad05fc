/**
 * This process's running children, listed in a file under the state root for as long as any runs,
 * so that the next start can end those an extension host that was killed (SIGKILL, a crash) left
 * behind, before recovery removes the folders they write into. A clean exit needs no file: the
 * runner kills its children itself (`killAllChildren`, the exit hook).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from './fsutil';
import { endProcessGroup, watchChildGroups, type ChildGroup, type Runner } from './run';
import { runTool } from './run';
import { groupLeaders } from './tools/ps';

const FOLDER = '.children';
/** `ps` shows whole seconds since a process started, and the record is written just after the start. */
const START_TOLERANCE_MS = 3000;

interface ChildrenFile {
  pid: number;
  host: string;
  groups: ChildGroup[];
}

let recording: { file: string; stop: () => void } | undefined;
let exitHookInstalled = false;

/** From now on, this process's children are listed under `stateRoot` (the previous root's list is removed). */
export function recordChildrenIn(stateRoot: string): void {
  const file = join(stateRoot, FOLDER, `${safeHostName()}.${process.pid}.json`);
  if (recording?.file === file) return;
  stopRecording();
  const stop = watchChildGroups((groups) => writeList(stateRoot, file, groups));
  recording = { file, stop };
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // The runner's own exit hook kills every child group; the list would only mislead the next start.
    process.on('exit', stopRecording);
  }
}

export function stopRecording(): void {
  if (!recording) return;
  recording.stop();
  rmSync(recording.file, { force: true });
  recording = undefined;
}

/**
 * Written synchronously as each child starts, so that a kill right after a start still finds it.
 * A state root that does not exist (yet) is not created for this: nothing of a bottle runs then.
 */
function writeList(stateRoot: string, file: string, groups: readonly ChildGroup[]): void {
  try {
    if (groups.length === 0) {
      rmSync(file, { force: true });
      return;
    }
    mkdirSync(join(stateRoot, FOLDER), { mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') return;
  }
  const content: ChildrenFile = { pid: process.pid, host: hostname(), groups: [...groups] };
  const temp = `${file}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(content), { mode: 0o600 });
    renameSync(temp, file);
  } catch {
    // Best effort: a read-only state folder must not stop a tool from running.
  }
}

/**
 * Ends the process groups that processes on this host, now gone, left running, and removes their
 * lists; returns one line per group ended. A group is ended only while it is still the one that
 * was recorded: its leader started when the record says, or the leader is gone and the group
 * lives on (an id is not given to a new group while the old one has members).
 */
export async function endOrphanedChildren(stateRoot: string, run: Runner): Promise<string[]> {
  const done: string[] = [];
  const folder = join(stateRoot, FOLDER);
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    const list = readList(join(folder, name));
    if (!list || list.host !== hostname() || list.pid === process.pid || isProcessAlive(list.pid)) continue;
    for (const group of list.groups) {
      if (!(await stillTheRecordedGroup(group, run))) continue;
      const ended = await endProcessGroup(group.pgid);
      done.push(`${ended ? 'stopped' : 'could not stop'} ${group.tool} (process group ${group.pgid}) of process ${list.pid}, which is gone`);
    }
    rmSync(join(folder, name), { force: true });
  }
  return done;
}

function readList(path: string): ChildrenFile | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as ChildrenFile;
    return Number.isInteger(value.pid) && Array.isArray(value.groups) ? value : undefined;
  } catch {
    return undefined;
  }
}

async function stillTheRecordedGroup(group: ChildGroup, run: Runner): Promise<boolean> {
  if (!Number.isInteger(group.pgid) || group.pgid <= 1) return false;
  const leaders = await runTool(run, groupLeaders([group.pgid]), { routine: true }).catch(() => undefined);
  if (!leaders) return false;
  const leader = leaders.get(group.pgid);
  if (!leader) return groupHasMembers(group.pgid);
  const startedAt = Date.now() - leader.elapsedSeconds * 1000;
  return leader.pgid === group.pgid && Math.abs(startedAt - group.startedAt) <= START_TOLERANCE_MS;
}

function groupHasMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function safeHostName(): string {
  return hostname().replace(/[^A-Za-z0-9.-]/g, '_') || 'host';
}
