/**
 * The one way this extension starts a process. Argv arrays only (never a shell), every output line
 * streamed to the tools log as it arrives, cancellation through an AbortSignal that takes down the
 * child's whole process group, and failures as ToolError.
 */
import { basename } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { execa, type Options } from 'execa';
import { CancelledError, ToolError } from './errors';
import type { Log } from './log';

export type Stream = 'stdout' | 'stderr';

export interface RunOptions {
  signal?: AbortSignal;
  /** Exit codes that count as success; default [0]. */
  okExitCodes?: readonly number[];
  cwd?: string;
  /** Added to the inherited environment. Values are never logged. */
  env?: Readonly<Record<string, string>>;
  /** Written to the child's stdin; stdin is closed (no prompts) otherwise. */
  input?: string;
  /** Called for every output line, after it is logged (progress parsing). */
  onLine?: (stream: Stream, line: string) => void;
  /** Kill the process group and fail after this long. */
  timeoutMs?: number;
  /** Log stdout at trace level only (bulky machine-readable output such as JSON). */
  quietStdout?: boolean;
  /** A periodic read-only query (the tree's refresh): logged at trace level unless it fails. */
  routine?: boolean;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type Runner = (argv: readonly string[], options?: RunOptions) => Promise<RunResult>;

/**
 * A tool call described as data: the argv to run and how to read its result. The clients in
 * `tools/` build these and run nothing themselves; `runTool` executes one through a Runner.
 */
export interface ToolCommand<T> {
  argv: string[];
  /** Exit codes that count as success; default [0]. */
  okExitCodes?: number[];
  /** Bulky machine-readable stdout (JSON) goes to the log at trace level only. */
  quietStdout?: boolean;
  /** Added to the environment of this one command (merged under the caller's `env`). */
  env?: Readonly<Record<string, string>>;
  /** The tool's own error line in its stderr, when it has one: a failure's reason. */
  failureReason?(stderr: string): string | undefined;
  parse(result: RunResult): T;
}

/** Options given here win over the command's own, except those left undefined. */
export async function runTool<T>(run: Runner, command: ToolCommand<T>, options: RunOptions = {}): Promise<T> {
  const env = command.env || options.env ? { ...command.env, ...options.env } : undefined;
  const result = await run(command.argv, {
    okExitCodes: command.okExitCodes,
    quietStdout: command.quietStdout,
    ...withoutUndefined({ ...options, env }),
  }).catch((error: unknown) => {
    throw withToolReason(error, command);
  });
  return command.parse(result);
}

/** A failed exit status told in the tool's own words when its client knows where they are. */
function withToolReason(error: unknown, command: ToolCommand<unknown>): unknown {
  if (!(error instanceof ToolError) || error.exitCode === undefined || !command.failureReason) return error;
  const reason = command.failureReason(error.stderrTail);
  return reason ? new ToolError(error.command, error.exitCode, error.stderrTail, undefined, reason) : error;
}

function withoutUndefined(options: RunOptions): RunOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

/** How long a group gets to exit after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 1500;
const STDERR_TAIL_LINES = 20;

export function createRunner(log: Log): Runner {
  return (argv, options = {}) => runProcess(log, argv, options);
}

async function runProcess(log: Log, argv: readonly string[], options: RunOptions): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runProcess needs a command');
  if (options.signal?.aborted) throw new CancelledError();

  const note = options.routine ? log.trace.bind(log) : log.info.bind(log);
  note(`$ ${formatCommand(argv)}`);
  const started = Date.now();
  const child = execa(file, args, childOptions(log, note, options));
  const untrack = trackGroup(child.pid, argv);
  const stopKilling = killGroupWhen(child.pid, options);

  const result = await child;
  untrack();
  const reason = stopKilling();
  const elapsed = `${((Date.now() - started) / 1000).toFixed(1)}s`;

  if (reason === 'aborted') {
    log.info(`  cancelled after ${elapsed}: ${formatCommand(argv)}`);
    throw new CancelledError();
  }
  const stderrTail = tail(String(result.stderr ?? ''), STDERR_TAIL_LINES);
  if (reason === 'timeout') {
    log.warn(`  timed out after ${elapsed}`);
    throw new ToolError(argv, undefined, stderrTail, `${toolName(argv)} did not finish within ${Math.round((options.timeoutMs ?? 0) / 1000)}s`);
  }
  if (result.exitCode === undefined) {
    const detail = spawnFailure(argv, result.code, result.signal);
    log.error(`  ${detail}`);
    throw new ToolError(argv, undefined, stderrTail, detail);
  }
  const ok = (options.okExitCodes ?? [0]).includes(result.exitCode);
  if (!ok) {
    log.warn(`  exit ${result.exitCode} in ${elapsed}: ${formatCommand(argv)}`);
    throw new ToolError(argv, result.exitCode, stderrTail);
  }
  note(`  exit ${result.exitCode} in ${elapsed}`);
  return { exitCode: result.exitCode, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}

function childOptions(log: Log, note: (message: string) => void, options: RunOptions): Options {
  const logLine = (stream: Stream) =>
    splitLines((text, redraw) => {
      // A redraw is overwritten at once on a terminal: it goes to onLine (progress), not to the log.
      if (!redraw) {
        if (stream === 'stdout' && options.quietStdout) log.trace(`  ${text}`);
        else note(`  ${text}`);
      }
      options.onLine?.(stream, text);
    });
  return {
    reject: false,
    // Its own process group, so that cancelling reaches grandchildren too.
    detached: true,
    cwd: options.cwd,
    env: options.env ? { ...options.env } : undefined,
    extendEnv: true,
    input: options.input,
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    stdout: [logLine('stdout')],
    stderr: [logLine('stderr')],
    stripFinalNewline: true,
  } as Options;
}

/**
 * An execa transform that passes output through unchanged and cuts it into lines as it arrives: at
 * "\n", and at the "\r" a progress bar redraws its line with (smolvm machine cp prints
 * `\rDownloading ...` with no newline until the end). A redraw is handed on as soon as its chunk
 * ends, not when the next "\r" comes, so progress is never one redraw behind; a redraw cut by a
 * chunk boundary is handed on again whole. A "\r" that ends a chunk may be half of "\r\n".
 */
export function splitLines(onLine: (text: string, redraw: boolean) => void) {
  const decoder = new TextDecoder();
  let pending = '';
  let inRedraw = false;
  let previewed: string | undefined;
  const emit = (text: string, redraw: boolean) => {
    if (!(redraw && (text === '' || text === previewed))) onLine(text, redraw);
    previewed = undefined;
  };
  return {
    binary: true,
    *transform(chunk: Uint8Array) {
      pending += decoder.decode(chunk, { stream: true });
      const ends = /\r\n|\n|\r(?=[^])/g;
      let start = 0;
      for (let end = ends.exec(pending); end; end = ends.exec(pending)) {
        inRedraw = end[0] === '\r';
        emit(pending.slice(start, end.index), inRedraw);
        start = ends.lastIndex;
      }
      pending = pending.slice(start);
      const partial = pending.replace(/\r$/, '');
      if (inRedraw && partial !== '' && partial !== previewed) {
        onLine(partial, true);
        previewed = partial;
      }
      yield chunk;
    },
    // eslint-disable-next-line require-yield -- execa wants a generator here; the output already went through.
    *final() {
      const rest = (pending + decoder.decode()).replace(/\r$/, '');
      if (rest !== '') onLine(rest, false);
    },
  };
}

type KillReason = 'aborted' | 'timeout' | undefined;

/** Arms the abort signal and the timeout; returns a disarm function that says which fired. */
function killGroupWhen(pid: number | undefined, options: RunOptions): () => KillReason {
  let reason: KillReason;
  const kill = (why: KillReason) => {
    if (reason) return;
    reason = why;
    killProcessGroup(pid);
  };
  const onAbort = () => kill('aborted');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = options.timeoutMs ? setTimeout(() => kill('timeout'), options.timeoutMs) : undefined;
  return () => {
    options.signal?.removeEventListener('abort', onAbort);
    if (timer) clearTimeout(timer);
    return reason;
  };
}

export interface PipeProcess {
  /** Only when `stdin` was asked for. */
  stdin?: Writable;
  stdout: Readable;
  /** Settles when the process ends: rejects unless it exited 0 (or was stopped by stop()). */
  exited: Promise<void>;
  /** Ends the process group, e.g. when its reader has read enough. */
  stop(): void;
}

/**
 * A filter whose binary output is read as a stream (`zstd -dc` of a layer): the same process
 * group handling as every other child, but stdout is not logged; stderr's tail goes in the error.
 */
export function startPipe(argv: readonly string[], options: { signal?: AbortSignal; stdin?: boolean } = {}): PipeProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('startPipe needs a command');
  if (options.signal?.aborted) throw new CancelledError();
  const child = execa(file, args, { reject: false, detached: true, buffer: false, stdin: options.stdin ? 'pipe' : 'ignore', stdout: 'pipe', stderr: 'pipe', encoding: 'buffer' });
  const untrack = trackGroup(child.pid, argv);
  const stopKilling = killGroupWhen(child.pid, { signal: options.signal });
  let stopped = false;
  const stderr: Buffer[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = child.then((result) => {
    untrack();
    const reason = stopKilling();
    if (reason === 'aborted') throw new CancelledError();
    if (stopped || result.exitCode === 0) return;
    const said = tail(Buffer.concat(stderr).toString().trim(), STDERR_TAIL_LINES);
    throw new ToolError(argv, result.exitCode, said, result.exitCode === undefined ? spawnFailure(argv, result.code, result.signal) : undefined);
  });
  exited.catch(() => undefined);
  return {
    stdin: child.stdin ?? undefined,
    stdout: child.stdout,
    exited,
    stop: () => {
      stopped = true;
      killProcessGroup(child.pid);
    },
  };
}

/** SIGTERM to the whole group, then SIGKILL to whatever is left after a grace period. */
export function killProcessGroup(pid: number | undefined): void {
  if (pid && signalGroup(pid, 'SIGTERM')) setTimeout(() => signalGroup(pid, 'SIGKILL'), KILL_GRACE_MS).unref();
}

function spawnFailure(argv: readonly string[], code: string | undefined, signal: string | undefined): string {
  if (code === 'ENOENT') return `${argv[0]} was not found. Install it or set its path in the Bot Bottle settings.`;
  if (code === 'EACCES') return `${argv[0]} is not executable. Check its path in the Bot Bottle settings.`;
  if (signal) return `${toolName(argv)} was killed by ${signal}`;
  return `${toolName(argv)} could not be started${code ? ` (${code})` : ''}`;
}

function toolName(argv: readonly string[]): string {
  return argv[0]?.split('/').pop() ?? 'command';
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * A command line as a person would type it; for the log only, never executed. The value of an
 * environment variable handed to a tool as a flag (`-e NAME=value`, `--env NAME=value`, before
 * any `--`) is shown as `NAME=…`: the log never holds environment values.
 */
export function formatCommand(argv: readonly string[]): string {
  const end = argv.indexOf('--');
  const flagsEnd = end === -1 ? argv.length : end;
  return argv
    .map((arg, i) => {
      const hidden = i < flagsEnd ? hiddenEnvValue(argv[i - 1], arg) : undefined;
      return hidden ?? (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);
    })
    .join(' ');
}

/** `NAME=…` for an environment assignment after `-e`/`--env` (or `--env=NAME=value`), else undefined. */
function hiddenEnvValue(previous: string | undefined, arg: string): string | undefined {
  const [flag, assignment] = arg.startsWith('--env=') ? ['--env', arg.slice('--env='.length)] : [previous, arg];
  if (flag !== '-e' && flag !== '--env') return undefined;
  const name = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(assignment)?.[1];
  if (!name) return undefined;
  return arg.startsWith('--env=') ? `--env=${name}=…` : `${name}=…`;
}

// A long-lived background process (a server), next to the runner which knows only commands that
// run to completion. The same rules: argv only, every line to the log, the whole group killed.

export interface BackgroundProcessOptions {
  cwd?: string;
  env?: Readonly<Record<string, string>>;
  /** Inherit this process's environment as well as `env`; default true. */
  extendEnv?: boolean;
}

export interface BackgroundProcess {
  readonly argv: readonly string[];
  readonly pid: number;
  /** Resolves (never rejects) once the process has exited. */
  readonly exited: Promise<void>;
  /** Undefined while it runs, or when it ended by a signal or never started. */
  exitCode(): number | undefined;
  /** "exited with status 1", "was killed by SIGKILL", "could not be started (ENOENT)", or undefined while running. */
  exitDescription(): string | undefined;
  /** Its last lines of output, stdout and stderr interleaved. */
  recentOutput(): string;
  /** Calls `listener` with every line from now on; returns the unsubscribe function. */
  onLine(listener: (stream: Stream, line: string) => void): () => void;
  /** SIGTERM to its process group, SIGKILL after `graceMs`; resolves once the whole group is gone. */
  stop(graceMs?: number): Promise<void>;
}

const RECENT_LINES = 20;
const DEFAULT_GRACE_MS = 3000;
const KILL_WAIT_MS = 5000;
const GROUP_POLL_MS = 25;

/**
 * Starts `argv` in its own process group (so that stopping it reaches its children too) and
 * streams every output line to `log`, as the Runner does. Nothing is buffered beyond the last
 * few lines: the process may run for a long time.
 */
export function startBackgroundProcess(log: Log, argv: readonly string[], options: BackgroundProcessOptions = {}): BackgroundProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('startBackgroundProcess needs a command');
  log.info(`$ ${formatCommand(argv)} &`);
  const name = basename(file);
  const child = execa(file, args, {
    detached: true,
    reject: false,
    buffer: false,
    stdin: 'ignore',
    cwd: options.cwd,
    env: options.env ? { ...options.env } : undefined,
    extendEnv: options.extendEnv ?? true,
  });
  const pid = child.pid ?? 0;
  const recent: string[] = [];
  const listeners = new Set<(stream: Stream, line: string) => void>();
  const onOutputLine = (stream: Stream, line: string) => {
    log.info(`  ${line}`);
    recent.push(line);
    if (recent.length > RECENT_LINES) recent.shift();
    for (const listener of [...listeners]) listener(stream, line);
  };
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => onOutputLine('stdout', line));
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => onOutputLine('stderr', line));

  const untrack = trackGroup(pid, argv);

  let ended: { exitCode?: number; description: string } | undefined;
  const exited = child.then((result) => {
    untrack();
    ended = describeEnd(result.exitCode, result.signal, result.failed ? result.code : undefined);
    log.info(`  ${name} ${ended.description}`);
  });

  const groupGone = () => ended !== undefined && !groupAlive(pid);
  const stop = async (graceMs = DEFAULT_GRACE_MS) => {
    if (!pid || groupGone()) return;
    const outcome = await endGroup(pid, graceMs, groupGone);
    if (outcome === 'killed') log.warn(`  ${name} ignored SIGTERM for ${graceMs} ms; its process group was killed`);
    if (outcome === 'stuck') log.warn(`  process group ${pid} is still there after SIGKILL`);
  };

  return {
    argv,
    pid,
    exited,
    exitCode: () => ended?.exitCode,
    exitDescription: () => ended?.description,
    recentOutput: () => recent.join('\n'),
    onLine: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop,
  };
}

type GroupEnd = 'ended' | 'killed' | 'stuck';

/** SIGTERM, then SIGKILL once `graceMs` has passed; resolves once `gone()` or the SIGKILL wait runs out. */
async function endGroup(pgid: number, graceMs: number, gone: () => boolean): Promise<GroupEnd> {
  signalGroup(pgid, 'SIGTERM');
  if (await waitUntil(gone, graceMs)) return 'ended';
  signalGroup(pgid, 'SIGKILL');
  return (await waitUntil(gone, KILL_WAIT_MS)) ? 'killed' : 'stuck';
}

/**
 * Ends a process group this process did not start (a child of an extension host that is gone):
 * SIGTERM, SIGKILL after `graceMs`. True once no process of the group is left.
 */
export async function endProcessGroup(pgid: number, graceMs = KILL_GRACE_MS): Promise<boolean> {
  return (await endGroup(pgid, graceMs, () => !groupAlive(pgid))) !== 'stuck';
}

function describeEnd(exitCode: number | undefined, signal: string | undefined, code: string | undefined): { exitCode?: number; description: string } {
  if (exitCode !== undefined) return { exitCode, description: `exited with status ${exitCode}` };
  if (signal) return { description: `was killed by ${signal}` };
  return { description: `could not be started${code ? ` (${code})` : ''}` };
}

/** Signals every process of the group; false when the group is gone already. */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  if (!pid) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(-pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function waitUntil(condition: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= end) return false;
    await new Promise((resolve) => setTimeout(resolve, GROUP_POLL_MS));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Every child's process group, from its start until it ends, so that none outlives this process:
// all are killed when the extension deactivates and when this process exits.

export interface ChildGroup {
  /** The child's pid, which is also its process group's id. */
  readonly pgid: number;
  /** When it was started (ms since the epoch): tells it from a later group that got the same id. */
  readonly startedAt: number;
  /** The program's file name, for messages; never its arguments, which may hold names meant to be secret. */
  readonly tool: string;
}

const liveGroups = new Map<number, ChildGroup>();
const groupWatchers = new Set<(groups: readonly ChildGroup[]) => void>();
let exitHookInstalled = false;

function trackGroup(pid: number | undefined, argv: readonly string[]): () => void {
  if (!pid) return () => undefined;
  installExitHook();
  liveGroups.set(pid, { pgid: pid, startedAt: Date.now(), tool: toolName(argv) });
  announceGroups();
  return () => {
    if (liveGroups.delete(pid)) announceGroups();
  };
}

/** The process groups of every child that is still running. */
export function liveChildGroups(): ChildGroup[] {
  return [...liveGroups.values()];
}

/** Calls `watcher` with the live groups now and whenever a child starts or ends; returns the unsubscribe. */
export function watchChildGroups(watcher: (groups: readonly ChildGroup[]) => void): () => void {
  groupWatchers.add(watcher);
  watcher(liveChildGroups());
  return () => groupWatchers.delete(watcher);
}

function announceGroups(): void {
  const groups = liveChildGroups();
  for (const watcher of [...groupWatchers]) watcher(groups);
}

/**
 * SIGTERM to every child's process group (smolvm removes its scratch files on it), SIGKILL to any
 * group still there after `graceMs`; resolves once all are gone. For the extension's deactivate().
 */
export async function killAllChildren(graceMs = KILL_GRACE_MS): Promise<void> {
  const pgids = [...liveGroups.keys()];
  await Promise.all(pgids.map((pgid) => endGroup(pgid, graceMs, () => !groupAlive(pgid))));
}

/** A process that exits (normally, or by process.exit) takes its children with it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pgid of liveGroups.keys()) signalGroup(pgid, 'SIGKILL');
  });
}
