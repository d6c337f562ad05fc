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
