/** Is a process, or a whole process group, still there? For tests that check nothing outlives them. */

export function isAlive(pid: number): boolean {
  return signalZero(pid);
}

export function groupAlive(pgid: number): boolean {
  return signalZero(-pgid);
}

function signalZero(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch {
    return false;
  }
}
