/** `smolvm machine exec`: runs a command for real inside the machine's root folder. */
import type { ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { durationValue, envSpecs, flag, parseArgs, value, values, type CommandSpec } from './args';
import { agentError, ExitRequest, SimError, vmNotFound } from './errors';
import { delayAimedAt, faultPoint, tarExitFault } from './faults';
import { findGuestCommand, GUEST_PATH, isGuestDirectory, killTree, resolveGuestUser, resolveInRoot, spawnInGuest } from './guest';
import { validateName } from './names';
import { out } from './output';
import { openSession } from './sessions';
import { leaveInterruptsToGuest } from './signals';
import { spawnInGuestTerminal } from './terminal';
import { appendConsole, effectiveState, readRecord, rootfsDir, type MachineRecord } from './state';

/** smolvm cuts exec output at 11 MiB; files must move with `machine cp`. */
export const EXEC_OUTPUT_CAP = 11 * 1024 * 1024;
const EXEC_RESPONSE_BUDGET = 20 * 1024 * 1024;
const TIMEOUT_EXIT = 124;

const EXEC_SPEC: CommandSpec = {
  usage: 'smolvm machine exec [OPTIONS] <COMMAND>...',
  about: 'Run a command directly in the VM (not in a container)',
  options: [
    { long: 'name', value: 'NAME' },
    { long: 'workdir', short: 'w', value: 'DIR' },
    { long: 'env', short: 'e', value: 'KEY=VALUE', multiple: true },
    { long: 'timeout', value: 'DURATION' },
    { long: 'interactive', short: 'i' },
    { long: 'tty', short: 't' },
    { long: 'stream' },
    { long: 'detach', short: 'd' },
  ],
  trailing: 'var',
  trailingRequired: true,
  conflicts: [
    ['detach', 'interactive'],
    ['detach', 'tty'],
    ['detach', 'stream'],
  ],
};

type OutputMode = 'buffered' | 'stream' | 'interactive' | 'detached';

interface GuestCommand {
  argv: string[];
  /** The image's `User` (vm_common.rs:315-356); undefined runs as root. */
  user?: { uid: number; gid: number };
  cwd: string;
  env: Record<string, string>;
  timeoutMs?: number;
  mode: OutputMode;
  tty: boolean;
}

interface GuestResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  overflowed: boolean;
  lostConnection: boolean;
}

export async function execCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(EXEC_SPEC, argv);
  const name = validateName(value(parsed, 'name') ?? 'default');
  const command = parsed.trailing;
  await faultPoint('exec', name);
  await faultPoint(`exec:${basename(command[0])}`, name);
  const record = connect(name);
  const mode: OutputMode = flag(parsed, 'detach') ? 'detached' : flag(parsed, 'interactive') || flag(parsed, 'tty') ? 'interactive' : flag(parsed, 'stream') ? 'stream' : 'buffered';
  const guest = prepareCommand(record, command, {
    user: record.user ?? undefined,
    workdir: value(parsed, 'workdir'),
    env: envSpecs(values(parsed, 'env')),
    timeoutMs: durationValue(parsed, 'timeout'),
    mode,
    tty: flag(parsed, 'tty'),
  });
  if (mode === 'detached') {
    out(String(spawnDetached(record, guest)));
    return;
  }
  const closeSession = await openSession(name, 'exec');
  try {
    const result = await runGuestCommand(record, guest);
    throw finish(name, guest, result);
  } finally {
    closeSession();
  }
}

/** The checks smolvm does before talking to the agent: the machine exists and runs. */
export function connect(name: string): MachineRecord {
  const record = readRecord(name);
  if (!record) throw vmNotFound(name);
  // A frozen fork base gets no message of its own (src/cli/vm_common.rs:66-124).
  if (effectiveState(record) !== 'running') {
    throw agentError('connect', `machine '${name}' is not running. Use 'smolvm machine start --name ${name}' first.`);
  }
  return record;
}

interface CommandRequest {
  user?: string;
  workdir?: string;
  env: string[];
  timeoutMs?: number;
  mode: OutputMode;
  tty: boolean;
}

function prepareCommand(record: MachineRecord, argv: string[], request: CommandRequest): GuestCommand {
  const root = rootfsDir(record.name);
  const cwd = request.workdir ?? record.workdir ?? '/';
  if (!isGuestDirectory(root, cwd)) {
    throw agentError('exec', `failed to set working directory '${cwd}': No such file or directory (os error 2)`);
  }
  const env = guestEnvironment(record, request);
  if (!findGuestCommand(root, argv[0], env.PATH, cwd)) {
    throw agentError('exec', `failed to spawn '${argv[0]}': No such file or directory (os error 2)`);
  }
  const user = request.user ? resolveGuestUser(root, request.user) : undefined;
  return { argv, user, cwd, env, timeoutMs: request.timeoutMs, mode: request.mode, tty: request.tty };
}

function guestEnvironment(record: MachineRecord, request: CommandRequest): Record<string, string> {
  const env: Record<string, string> = { PATH: GUEST_PATH, HOME: '/root', HOSTNAME: 'smolvm' };
  // Not the host's TERM: one every image knows, unless the caller sets its own (src/agent/client.rs:703-721).
  if (request.tty) env.TERM = 'xterm-256color';
  for (const spec of [...record.env, ...request.env]) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw agentError('exec', `invalid environment variable '${spec}': expected KEY=VALUE`);
    env[spec.slice(0, eq)] = spec.slice(eq + 1);
  }
  return env;
}

function spawnDetached(record: MachineRecord, guest: GuestCommand): number {
  const child = spawnInGuest(rootfsDir(record.name), guest.argv, { cwd: guest.cwd, env: guest.env, stdio: 'ignore', detached: true, user: guest.user, mounts: record.mounts });
  child.unref();
  appendConsole(record.name, `exec (detached, pid ${child.pid}): ${guest.argv.join(' ')}`);
  return child.pid ?? 0;
}

export async function runGuestCommand(record: MachineRecord, guest: GuestCommand): Promise<GuestResult> {
  appendConsole(record.name, `exec: ${guest.argv.join(' ')}`);
  const archive = guest.mode === 'buffered' ? archiveThroughUs(record, guest) : undefined;
  const child = spawnFor(record, guest, archive?.argv ?? guest.argv);
  const written = archive && child.stdout ? writeArchive(child.stdout, archive.file, record.name) : Promise.resolve();
  const captured = guest.mode === 'buffered';
  const capture = { stdout: captured && !archive, stderr: captured };
  const [result] = await Promise.all([collect(child, guest.timeoutMs, capture, record.image === null), written]);
  appendConsole(record.name, `exec exited with status ${result.exitCode}: ${guest.argv[0]}`);
  return result;
}

/**
 * `SMOLVM_SIM_DELAY=tar:write@M=MS`: the guest tar writes its archive to us (`--file=-`) and we
 * write it to its file, so that the delay falls once part of the archive is on disk, with tar
 * still running, blocked on the rest. Without that fault, tar writes its file itself.
 */
function archiveThroughUs(record: MachineRecord, guest: GuestCommand): { argv: string[]; file: string } | undefined {
  if (basename(guest.argv[0]) !== 'tar' || !delayAimedAt('tar:write', record.name)) return undefined;
  const at = guest.argv.findIndex((arg) => arg.startsWith('--file='));
  if (at < 0) return undefined;
  const guestPath = guest.argv[at].slice('--file='.length);
  const file = resolveInRoot(rootfsDir(record.name), guestPath.startsWith('/') ? guestPath : `${guest.cwd}/${guestPath}`);
  return { argv: guest.argv.map((arg, index) => (index === at ? '--file=-' : arg)), file };
}

async function writeArchive(archive: Readable, file: string, machine: string): Promise<void> {
  const target = await open(file, 'w');
  try {
    let written = 0;
    for await (const chunk of archive as AsyncIterable<Buffer>) {
      await target.write(chunk);
      if (written === 0) await faultPoint('tar:write', machine, file);
      written += chunk.length;
    }
  } finally {
    await target.close();
  }
}

/**
 * `-i`/`-t` is a live session (src/cli/machine.rs:2808-2817): with `-t` the guest is on a PTY of
 * its own, else on pipes, host stdin forwarded either way (crates/smolvm-agent/src/main.rs:6392-6421).
 */
function spawnFor(record: MachineRecord, guest: GuestCommand, argv: readonly string[]): ChildProcess {
  const root = rootfsDir(record.name);
  const options = { cwd: guest.cwd, env: guest.env, user: guest.user, mounts: record.mounts };
  if (guest.mode === 'interactive' && guest.tty) {
    leaveInterruptsToGuest();
    return spawnInGuestTerminal(root, argv, options);
  }
  if (guest.mode === 'interactive') return forwardStdio(spawnInGuest(root, argv, { ...options, stdio: ['pipe', 'pipe', 'pipe'] }));
  const stdio = guest.mode === 'stream' ? (['ignore', 'inherit', 'inherit'] as const) : (['ignore', 'pipe', 'pipe'] as const);
  return spawnInGuest(root, argv, { ...options, stdio: [...stdio] });
}

/** Our stdin to the guest's, its output to ours as it comes; stdin is let go once the guest ends. */
function forwardStdio(child: ChildProcess): ChildProcess {
  child.stdin?.on('error', () => undefined);
  process.stdin.pipe(child.stdin!);
  child.stdout?.pipe(process.stdout);
  child.stderr?.pipe(process.stderr);
  child.on('close', () => {
    process.stdin.unpipe(child.stdin!);
    process.stdin.destroy();
  });
  return child;
}

/**
 * Waits for the guest; `capture` says which of its output to keep (buffered exec) for finish() to
 * print. A bare VM's agent reads one byte past the cap and fails (crates/smolvm-agent/src/main.rs:6146-6172);
 * an image's container stops reading a stream once it holds the cap, so the command meets a closed
 * pipe (crates/smolvm-agent/src/process.rs:214-264).
 */
function collect(child: ChildProcess, timeoutMs: number | undefined, capture: { stdout: boolean; stderr: boolean }, bare: boolean): Promise<GuestResult> {
  const result: GuestResult = { exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), timedOut: false, overflowed: false, lostConnection: false };
  const chunks: { stdout: Buffer[]; stderr: Buffer[] } = { stdout: [], stderr: [] };
  const held = { stdout: 0, stderr: 0 };
  let truncated = false;
  const take = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
    if (result.overflowed) return;
    chunks[stream].push(chunk);
    held[stream] += chunk.length;
    if (held[stream] > EXEC_OUTPUT_CAP && bare) {
      result.overflowed = true;
      if (child.pid) killTree(child.pid);
    } else if (held[stream] >= EXEC_OUTPUT_CAP && !bare) {
      truncated = true;
      child[stream]?.destroy();
    }
  };
  if (capture.stdout) child.stdout?.on('data', take('stdout'));
  if (capture.stderr) child.stderr?.on('data', take('stderr'));
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
    result.timedOut = true;
    if (child.pid) killTree(child.pid);
  }, timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      result.stdout = Buffer.concat(chunks.stdout);
      result.stderr = Buffer.concat(chunks.stderr);
      const closedPipe = truncated && signal === 'SIGPIPE';
      result.lostConnection = signal !== null && !result.timedOut && !result.overflowed && !closedPipe;
      result.exitCode = code ?? (closedPipe ? 128 + 13 : 128 + 9);
      resolve(result);
    });
  });
}

/** Prints what the guest printed and turns its status into ours (always thrown). */
function finish(name: string, guest: GuestCommand, result: GuestResult): Error {
  if (result.overflowed) {
    return agentError('vm exec', `command output exceeded ${EXEC_OUTPUT_CAP} bytes and was truncated. Use streaming exec (exec_stream / execStream) for large output.`);
  }
  const total = result.stdout.length + result.stderr.length;
  // oversized_output_error (crates/smolvm-agent/src/main.rs:5510-5524), op from src/agent/client.rs:1594.
  if (total > EXEC_RESPONSE_BUDGET) {
    return agentError('run command', `command output too large (${total} bytes; limit ${EXEC_RESPONSE_BUDGET}). Redirect large output to a file and download it via the files API — streaming exec is capped at the same output budget.`);
  }
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  if (result.timedOut) return new ExitRequest(TIMEOUT_EXIT);
  if (result.lostConnection) return agentError('exec', `connection to machine '${name}' lost (the machine stopped)`);
  return new ExitRequest(withTarFault(name, guest, result.exitCode));
}

/** `SMOLVM_SIM_TAR_EXIT`: a tar that worked reports "file changed" (1) or a fatal error (2). */
function withTarFault(name: string, guest: GuestCommand, exitCode: number): number {
  const fault = basename(guest.argv[0]) === 'tar' ? tarExitFault(name) : undefined;
  if (fault === undefined || exitCode !== 0) return exitCode;
  const message =
    fault === 1
      ? 'tar: ./home/node/.claude/history.jsonl: file changed as we read it\n'
      : 'tar: ./home/node/project/locked.db: Cannot open: Permission denied\ntar: Exiting with failure status due to previous errors\n';
  process.stderr.write(message);
  return fault;
}

/** A machine's `--init` commands, run on every start as `sh -c`; a failure stops it. */
export async function runInitCommands(record: MachineRecord): Promise<void> {
  if (record.init.length === 0) return;
  out(`Running ${record.init.length} init command(s)...`);
  for (const [index, line] of record.init.entries()) {
    const guest = prepareCommand(record, ['sh', '-c', line], { env: [], mode: 'buffered', tty: false });
    const result = await runGuestCommand(record, guest);
    if (result.exitCode !== 0) {
      throw new SimError(`agent operation failed: init: init[${index}] failed (exit ${result.exitCode}): ${result.stderr.toString().trim()}`);
    }
  }
}
