/** How long processes have run, from `ps` (same flags on Linux and macOS): a VM's uptime. */
import type { ToolCommand } from '../run';

export function elapsedSeconds(pids: readonly number[]): ToolCommand<Map<number, number>> {
  return {
    argv: ['ps', '-o', 'pid=,etime=', '-p', pids.join(',')],
    // ps exits 1 when none of the pids exists.
    okExitCodes: [0, 1],
    quietStdout: true,
    parse: (r) => parseElapsed(r.stdout),
  };
}

export function parseElapsed(stdout: string): Map<number, number> {
  const result = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)\s*$/.exec(line);
    if (!match) continue;
    const [, pid, days, hours, minutes, seconds] = match.map((v) => Number(v ?? 0));
    result.set(pid, ((days * 24 + hours) * 60 + minutes) * 60 + seconds);
  }
  return result;
}

export interface ProcessAge {
  pgid: number;
  elapsedSeconds: number;
}

/** Each pid's process group and how long it has run; a pid that is gone is left out. */
export function groupLeaders(pids: readonly number[]): ToolCommand<Map<number, ProcessAge>> {
  return {
    argv: ['ps', '-o', 'pid=,pgid=,etime=', '-p', pids.join(',')],
    okExitCodes: [0, 1],
    quietStdout: true,
    parse: (r) => parseGroupLeaders(r.stdout),
  };
}

export function parseGroupLeaders(stdout: string): Map<number, ProcessAge> {
  const result = new Map<number, ProcessAge>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s+(\d+)\s+(\S+)\s*$/.exec(line);
    if (!match) continue;
    const [, pid, pgid, etime] = match;
    const elapsed = parseElapsed(`${pid} ${etime}`).get(Number(pid));
    if (elapsed !== undefined) result.set(Number(pid), { pgid: Number(pgid), elapsedSeconds: elapsed });
  }
  return result;
}
