/**
 * Live connections to a machine's agent (exec and cp), one file per stand-in process under
 * `<machine>/sessions/`. They let `stop` end running guest commands, cap connections at 8
 * like smolvm, and back the "second exec refused" fault.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentError } from './errors';
import { busyExecFault, sleep } from './faults';
import { descendantsOf, killTree } from './guest';
import { isAlive, machineDir, withMachineLock } from './state';

const MAX_CONNECTIONS = 8;

type SessionKind = 'exec' | 'cp';

interface Session {
  pid: number;
  kind: SessionKind;
}

function sessionsDir(name: string): string {
  return join(machineDir(name), 'sessions');
}

function liveSessions(name: string): Session[] {
  let entries: string[];
  try {
    entries = readdirSync(sessionsDir(name));
  } catch {
    return [];
  }
  const sessions: Session[] = [];
  for (const entry of entries) {
    const [kind, pid] = entry.split('-');
    if (isAlive(Number(pid))) sessions.push({ pid: Number(pid), kind: kind as SessionKind });
    else rmSync(join(sessionsDir(name), entry), { force: true });
  }
  return sessions;
}

/** Opens a connection, waiting while 8 are open; returns the function that closes it. */
export async function openSession(name: string, kind: SessionKind): Promise<() => void> {
  for (;;) {
    const opened = withMachineLock(name, () => tryOpen(name, kind));
    if (opened) return opened;
    await sleep(50);
  }
}

function tryOpen(name: string, kind: SessionKind): (() => void) | undefined {
  const sessions = liveSessions(name).filter((s) => s.pid !== process.pid);
  if (kind === 'exec' && busyExecFault(name) && sessions.some((s) => s.kind === 'exec')) {
    throw agentError('exec', `machine '${name}' is busy: another exec session is attached (simulated by SMOLVM_SIM_BUSY_EXEC)`);
  }
  if (sessions.length >= MAX_CONNECTIONS) return undefined;
  mkdirSync(sessionsDir(name), { recursive: true });
  const file = join(sessionsDir(name), `${kind}-${process.pid}`);
  writeFileSync(file, '');
  return () => rmSync(file, { force: true });
}

/** What a VM shutdown does to running commands: every guest process dies. */
export function stopGuestSessions(name: string): void {
  for (const session of liveSessions(name)) {
    if (session.pid === process.pid) continue;
    for (const child of descendantsOf(session.pid)) killTree(child);
  }
}
