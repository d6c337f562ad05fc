/**
 * The smolvm command line as smolvm 1.9.3's source defines it (test/sim/SMOLVM-SOURCE.md cites the
 * file and line of each call): argv builders and output parsers. It runs nothing itself. Always
 * `--name`; never the text table; smolvm's own failures are told apart from a guest command's by
 * smolvm's last `Error:` line on stderr, never by the wording.
 */
import { ToolError, UserError } from '../errors';
import { hostPathForCopy, PROGRESS_TAIL, smolvmErrorLine, validateMachineName } from './smolvmRules';
import type { RunResult, ToolCommand } from '../run';

export interface Machine {
  name: string;
  /** As smolvm reports it; an unknown state is kept as it is, never mapped to "stopped". */
  state: string;
  image?: string;
  pid?: number;
  cpus?: number;
  memoryMib?: number;
  createdAt?: Date;
  /** Whether the machine has network access (smolvm's `network` key). */
  network?: boolean;
  /** Disk sizes in GiB; undefined means smolvm's defaults (20 and 10 GiB). */
  storageGb?: number;
  overlayGb?: number;
  labels?: Record<string, string>;
  /** smolvm reports only how many mounts and port mappings a machine has, never which. */
  mountCount?: number;
  portCount?: number;
  /** `never`, `always`, `on-failure` or `unless-stopped`. */
  restartPolicy?: string;
  /** How long the VM process has run; filled in by discovery from `ps`, not by smolvm. */
  uptimeSeconds?: number;
}

export interface CreateOptions {
  name: string;
  image?: string;
  from?: string;
  cpus?: number;
  memoryMib?: number;
  network?: boolean;
  storageGb?: number;
  overlayGb?: number;
  labels?: Readonly<Record<string, string>>;
  env?: Readonly<Record<string, string>>;
  /** Only with `image`: smolvm ignores `-w` with `--from` and uses the pack's workdir (src/cli/machine.rs:3418). */
  workdir?: string;
}

export interface ExecOptions {
  interactive?: boolean;
  tty?: boolean;
  env?: Readonly<Record<string, string>>;
  workdir?: string;
  /** smolvm duration, e.g. "30s"; a timed-out command exits 124. */
  timeout?: string;
  /** Guest exit codes that count as success; default [0]. */
  okExitCodes?: number[];
}

export interface PackOptions {
  image: string;
  output: string;
  cpus?: number;
  memoryMib?: number;
  entrypoint?: string;
}

export interface PackResult {
  launcher: string;
  artifact: string;
}

/** Either side of `machine cp`: a host path, or a path inside a machine. */
export type CopyEnd = { host: string } | { machine: string; path: string };

export const SMOLMACHINE_SUFFIX = '.smolmachine';

export class SmolvmCli {
  constructor(readonly bin: string) {}

  version(): ToolCommand<string> {
    return smolvmCommand({ argv: [this.bin, '--version'], parse: (r) => r.stdout.trim() });
  }

  list(): ToolCommand<Machine[]> {
    return smolvmCommand({ argv: [this.bin, 'machine', 'ls', '--json'], quietStdout: true, parse: (r) => parseMachineList(r.stdout) });
  }

  status(name: string): ToolCommand<Machine> {
    return smolvmCommand({
      argv: [this.bin, 'machine', 'status', '--name', validateMachineName(name), '--json'],
      quietStdout: true,
      parse: (r) => parseMachine(parseJson(r.stdout, 'machine status'), 'machine status'),
    });
  }

  create(options: CreateOptions): ToolCommand<void> {
    if (options.image && options.from) throw new UserError('A machine is created either from an image or from a .smolmachine file, not both.');
    if (options.from && options.workdir) throw new UserError('smolvm takes the working folder of a machine made from a .smolmachine from the file itself; -w would be ignored.');
    return smolvmCommand({ argv: [this.bin, 'machine', 'create', ...createFlags(options)], parse: () => undefined });
  }

  start(name: string): ToolCommand<void> {
    return smolvmCommand({ argv: this.machineCommand('start', name), parse: () => undefined });
  }

  stop(name: string): ToolCommand<void> {
    return smolvmCommand({ argv: this.machineCommand('stop', name), parse: () => undefined });
  }

  /** Always `-f`: without it smolvm asks on stdin. */
  delete(name: string): ToolCommand<void> {
    return smolvmCommand({ argv: [...this.machineCommand('delete', name), '-f'], parse: () => undefined });
  }

  /**
   * A guest exit status the caller accepts (tar's 1) is still a failure when smolvm itself failed:
   * smolvm also exits 1, and says so with an `Error:` line.
   */
  exec(name: string, command: readonly string[], options: ExecOptions = {}): ToolCommand<RunResult> {
    const argv = this.execArgv(name, command, options);
    return smolvmCommand({
      argv,
      okExitCodes: options.okExitCodes,
      parse: (r) => {
        if (isSmolvmError(r)) throw new ToolError(argv, r.exitCode, r.stderr, undefined, smolvmErrorLine(r.stderr));
        return r;
      },
    });
  }

  /** The argv of an exec, for callers that run it elsewhere (a terminal). */
  execArgv(name: string, command: readonly string[], options: ExecOptions = {}): string[] {
    if (command.length === 0) throw new UserError('smolvm machine exec needs a command to run.');
    return [this.bin, 'machine', 'exec', '--name', validateMachineName(name), ...execFlags(options), '--', ...command];
  }

  /** `expectedBytes`, a download's size when known, raises smolvm's transfer cap for this copy when it must. */
  cp(from: CopyEnd, to: CopyEnd, options: { expectedBytes?: number } = {}): ToolCommand<void> {
    const env = options.expectedBytes === undefined ? undefined : transferCapEnvironment(options.expectedBytes, process.env);
    return smolvmCommand({ argv: [this.bin, 'machine', 'cp', copyEnd(from), copyEnd(to)], env, parse: () => undefined });
  }

  dataDir(name: string): ToolCommand<string> {
    return smolvmCommand({ argv: this.machineCommand('data-dir', name), parse: (r) => r.stdout.trim() });
  }

  packCreate(options: PackOptions): ToolCommand<PackResult> {
    if (options.output.endsWith(SMOLMACHINE_SUFFIX))
      throw new UserError(`The pack output "${options.output}" must not end in ${SMOLMACHINE_SUFFIX}: smolvm adds it to the artifact.`);
    const argv = [this.bin, 'pack', 'create', '--image', options.image, '-o', options.output];
    if (options.cpus !== undefined) argv.push('--cpus', String(options.cpus));
    if (options.memoryMib !== undefined) argv.push('--mem', String(options.memoryMib));
    if (options.entrypoint !== undefined) argv.push('--entrypoint', options.entrypoint);
    return smolvmCommand({ argv, parse: (r) => parsePackOutput(r.stdout, options.output) });
  }

  private machineCommand(verb: string, name: string): string[] {
    return [this.bin, 'machine', verb, '--name', validateMachineName(name)];
  }
}

/** smolvm's default `machine cp` cap, FILE_TRANSFER_MAX_TOTAL (crates/smolvm-protocol/src/lib.rs:125). */
export const TRANSFER_CAP_BYTES = 4 * 1024 ** 3;
/** Read by the smolvm CLI process itself, for downloads only (src/agent/client.rs:2205-2217, 2630-2635). */
export const TRANSFER_CAP_VARIABLE = 'SMOLVM_FILE_TRANSFER_MAX_BYTES';

/**
 * What a download of `bytes` adds to smolvm's environment: smolvm stops a download once it has
 * streamed more than its cap (src/agent/client.rs:2246-2260), 4 GiB unless the variable says
 * otherwise. Nothing when the default lets it through; else the variable, never below the default,
 * which also overrides a smaller value in the inherited environment.
 */
export function transferCapEnvironment(bytes: number, inherited: Readonly<Record<string, string | undefined>>): Record<string, string> | undefined {
  if (bytes <= TRANSFER_CAP_BYTES && inherited[TRANSFER_CAP_VARIABLE] === undefined) return undefined;
  return { [TRANSFER_CAP_VARIABLE]: String(Math.max(bytes, TRANSFER_CAP_BYTES)) };
}

/** Every smolvm command's failure is told by smolvm's own error line. */
function smolvmCommand<T>(command: ToolCommand<T>): ToolCommand<T> {
  return { ...command, failureReason: smolvmErrorLine };
}

function createFlags(o: CreateOptions): string[] {
  const flags = ['--name', validateMachineName(o.name)];
  if (o.image) flags.push('--image', o.image);
  if (o.from) flags.push('--from', o.from);
  if (o.cpus !== undefined) flags.push('--cpus', String(o.cpus));
  if (o.memoryMib !== undefined) flags.push('--mem', String(o.memoryMib));
  if (o.network) flags.push('--net');
  if (o.storageGb !== undefined) flags.push('--storage', String(o.storageGb));
  if (o.overlayGb !== undefined) flags.push('--overlay', String(o.overlayGb));
  for (const [key, value] of Object.entries(o.labels ?? {})) flags.push('--label', `${key}=${value}`);
  for (const [key, value] of Object.entries(o.env ?? {})) flags.push('-e', `${key}=${value}`);
  if (o.workdir) flags.push('-w', o.workdir);
  return flags;
}

function execFlags(o: ExecOptions): string[] {
  const flags: string[] = [];
  if (o.interactive) flags.push('-i');
  if (o.tty) flags.push('-t');
  for (const [key, value] of Object.entries(o.env ?? {})) flags.push('-e', `${key}=${value}`);
  if (o.workdir) flags.push('-w', o.workdir);
  if (o.timeout) flags.push('--timeout', o.timeout);
  return flags;
}

function copyEnd(end: CopyEnd): string {
  if ('host' in end) return hostPathForCopy(end.host);
  return `${validateMachineName(end.machine)}:${end.path}`;
}

/** smolvm's own failure (not the guest's): a non-zero status with smolvm's error line last. */
export function isSmolvmError(result: Pick<RunResult, 'exitCode' | 'stderr'>): boolean {
  return result.exitCode !== 0 && smolvmErrorLine(result.stderr) !== undefined;
}

export function parseMachineList(stdout: string): Machine[] {
  const value = parseJson(stdout, 'machine ls');
  if (!Array.isArray(value)) throw malformed('machine ls', 'expected a JSON array of machines');
  return value.map((machine) => parseMachine(machine));
}

/** `what` names the command that printed it, for the message. */
export function parseMachine(value: unknown, what = 'machine ls'): Machine {
  if (typeof value !== 'object' || value === null) throw malformed(what, 'expected a JSON object describing a machine');
  const raw = value as Record<string, unknown>;
  if (typeof raw.name !== 'string' || raw.name === '') throw malformed(what, 'a machine has no name');
  return {
    name: raw.name,
    state: typeof raw.state === 'string' && raw.state !== '' ? raw.state : 'unknown',
    image: optionalString(raw.image),
    pid: optionalNumber(raw.pid),
    cpus: optionalNumber(raw.cpus),
    memoryMib: optionalNumber(raw.memory_mib),
    createdAt: typeof raw.created_at === 'number' ? new Date(raw.created_at * 1000) : undefined,
    network: typeof raw.network === 'boolean' ? raw.network : undefined,
    storageGb: optionalNumber(raw.storage_gb),
    overlayGb: optionalNumber(raw.overlay_gb),
    labels: optionalLabels(raw.labels),
    mountCount: optionalNumber(raw.mounts),
    portCount: optionalNumber(raw.ports),
    restartPolicy: optionalString(raw.restart_policy),
  };
}

/** smolvm's labels are a string-to-string object (`{}` when none); anything else is not labels. */
function optionalLabels(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value as Record<string, unknown>);
  return entries.every(([, v]) => typeof v === 'string') ? Object.fromEntries(entries as [string, string][]) : undefined;
}

/** Finds the closing lines by their prefix, never by position: smolvm adds notes around them. */
export function parsePackOutput(stdout: string, output: string): PackResult {
  const lines = stdout.split('\n').map((l) => l.trim());
  const pathAfter = (prefix: string) => lines.find((l) => l.startsWith(prefix))?.slice(prefix.length).replace(/\s+\(.*\)$/, '').trim();
  return {
    launcher: pathAfter('Packed:') || output,
    artifact: pathAfter('Assets:') || output + SMOLMACHINE_SUFFIX,
  };
}

function parseJson(stdout: string, what: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch {
    const preview = stdout.trim().slice(0, 80) || 'nothing';
    throw malformed(what, `expected JSON but got ${JSON.stringify(preview)}`);
  }
}

function malformed(what: string, detail: string): ToolError {
  return new ToolError(['smolvm', what], 0, '', `smolvm ${what} printed output this extension cannot read: ${detail}. Is botBottle.paths.smolvm a real smolvm?`);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function optionalNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export interface CopyProgress {
  /** Bytes copied so far, as smolvm rounds them (one decimal of KB, MB or GB). */
  bytes: number;
  /** The whole size, which smolvm shows for uploads only. */
  totalBytes?: number;
  /** smolvm's own rate text, e.g. "50.0 MB/s". */
  rate: string;
}

const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
const COPY_PROGRESS = new RegExp(PROGRESS_TAIL + '$');

/**
 * One line (or `\r` redraw) of `machine cp` progress on stderr, e.g. a download's
 * `Downloading /g -> /h: 1.0 GB (50.0 MB/s)`, which has no total (src/cli/machine.rs:4989-4992).
 */
export function parseCopyProgress(line: string): CopyProgress | undefined {
  const match = COPY_PROGRESS.exec(line.trimEnd());
  if (!match) return undefined;
  return { bytes: sizeBytes(match[1]), totalBytes: match[2] ? sizeBytes(match[2]) : undefined, rate: match[3] };
}

function sizeBytes(text: string): number {
  const [number, unit] = text.split(' ');
  return Math.round(Number(number) * SIZE_UNITS[unit]);
}
