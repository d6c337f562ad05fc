/**
 * `machine exec -t`: the guest command gets a pseudo-terminal of its own, as smolvm's agent gives
 * it one (openpty at 80x24, the child made session leader with the slave as its controlling
 * terminal: crates/smolvm-agent/src/main.rs:6392-6416, crates/smolvm-agent/src/pty.rs:205-275).
 * The host side puts a terminal stdin in raw mode and passes its size on (src/agent/client.rs:
 * 1406-1424). util-linux `script` does exactly that pair of jobs, so the stand-in runs the guest
 * command under it; `script` takes one shell command line, so each word is quoted here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { requireRoot, type GuestSpawnOptions } from './guest';

/** The size smolvm's agent opens the PTY with before the host sends its own. */
const AGENT_PTY_SIZE = 'cols 80 rows 24';

/** One word for `sh -c`: inside single quotes, where only `'` itself needs care. */
function shellWord(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `argv` chrooted in `root` on a fresh pseudo-terminal. `env -i` hands the guest exactly its
 * environment (the host sh that `script` starts adds PWD); the host's stdio stay the session's.
 */
export function spawnInGuestTerminal(root: string, argv: readonly string[], options: Omit<GuestSpawnOptions, 'stdio' | 'detached'>): ChildProcess {
  requireRoot();
  const user = options.user ? [`--setuid=${options.user.uid}`, `--setgid=${options.user.gid}`] : [];
  const environment = Object.entries(options.env).map(([key, value]) => `${key}=${value}`);
  const guest = ['env', '-i', ...environment, 'unshare', `--root=${root}`, `--wd=${options.cwd}`, ...user, '--', ...argv];
  // With a terminal on stdin, `script` has already given the PTY that terminal's size.
  const size = process.stdin.isTTY ? '' : `stty ${AGENT_PTY_SIZE} 2>/dev/null; `;
  const commandLine = `${size}exec ${guest.map(shellWord).join(' ')}`;
  return spawn('script', ['--quiet', '--return', '--command', commandLine, '/dev/null'], {
    env: { PATH: options.env.PATH ?? '/usr/bin:/bin', SHELL: '/bin/sh' },
    stdio: 'inherit',
  });
}
