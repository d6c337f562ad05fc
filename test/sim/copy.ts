/** `smolvm machine cp`: single files between the host and a running machine's root. */
import { chmodSync, chownSync, rmSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { parseArgs, unsignedValue, value, type CommandSpec } from './args';
import { agentError, configError, osErrorText } from './errors';
import { connect } from './exec';
import { cpRateFault, faultPoint, sleep } from './faults';
import { requireRoot, resolveInRoot } from './guest';
import { validateName } from './names';
import { formatBytes } from './output';
import { openSession } from './sessions';
import { rootfsDir } from './state';

/** FILE_TRANSFER_MAX_TOTAL (crates/smolvm-protocol/src/lib.rs:125). */
export const FILE_TRANSFER_MAX_TOTAL = 4 * 1024 ** 3;
/** LAYER_CHUNK_SIZE (crates/smolvm-protocol/src/lib.rs:69): what the agent sends per download chunk (crates/smolvm-agent/src/main.rs:3243-3249). */
const DOWNLOAD_CHUNK_BYTES = 16 * 1024 * 1024;
/** FILE_WRITE_CHUNK_SIZE: an upload's chunk (src/agent/client.rs:2119). */
const UPLOAD_CHUNK_BYTES = 1024 * 1024;
/** FILE_WRITE_SINGLE_SHOT_MAX (crates/smolvm-protocol/src/lib.rs:79). */
const SINGLE_SHOT_MAX_BYTES = 1024 * 1024;
const CAP_VARIABLE = 'SMOLVM_FILE_TRANSFER_MAX_BYTES';

const CP_SPEC: CommandSpec = {
  usage: 'smolvm machine cp [OPTIONS] <SRC> <DST>',
  about: 'Copy files between host and machine',
  options: [
    { long: 'mode', value: 'OCTAL' },
    { long: 'uid', value: 'UID' },
    { long: 'gid', value: 'GID' },
  ],
  positionals: ['<SRC>', '<DST>'],
};

interface Transfer {
  machine: string;
  guestPath: string;
  localPath: string;
  upload: boolean;
}

export async function cpCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(CP_SPEC, argv);
  const transfer = parseTransfer(parsed.positionals[0], parsed.positionals[1]);
  const meta: UploadMeta = { mode: value(parsed, 'mode'), uid: unsignedValue(parsed, 'uid', 0xffffffff, 0), gid: unsignedValue(parsed, 'gid', 0xffffffff, 0) };
  if (!transfer.upload && (meta.mode ?? value(parsed, 'uid') ?? value(parsed, 'gid')) !== undefined) {
    throw configError('cp', '--mode/--uid/--gid apply to uploads only (host -> machine)');
  }
  validateName(transfer.machine);
  requireRoot();
  if (faultsAimedAt(transfer.guestPath)) await faultPoint('cp', transfer.machine);
  connect(transfer.machine);
  const closeSession = await openSession(transfer.machine, 'cp');
  try {
    if (transfer.upload) await upload(transfer, meta);
    else await download(transfer);
  } finally {
    closeSession();
  }
}

/** The side with a `:` is the machine's (the source is looked at first, as smolvm does). */
function parseTransfer(src: string, dst: string): Transfer {
  const srcColon = src.indexOf(':');
  if (srcColon >= 0) return { machine: src.slice(0, srcColon), guestPath: src.slice(srcColon + 1), localPath: dst, upload: false };
  const dstColon = dst.indexOf(':');
  if (dstColon >= 0) return { machine: dst.slice(0, dstColon), guestPath: dst.slice(dstColon + 1), localPath: src, upload: true };
  throw configError('cp', 'one of SRC or DST must use machine:path syntax (e.g., myvm:/workspace/file)');
}

function guestHostPath(transfer: Transfer): string {
  const guestPath = transfer.guestPath.startsWith('/') ? transfer.guestPath : `/${transfer.guestPath}`;
  return resolveInRoot(rootfsDir(transfer.machine), guestPath);
}

/**
 * The local file is created before the first byte and written in place; crossing the cap, checked
 * on each chunk before it is written, removes it (src/agent/client.rs:2239-2260).
 */
async function download(transfer: Transfer): Promise<void> {
  const source = await openForRead(guestHostPath(transfer), 'read file', transfer.guestPath);
  const target = await openForWrite(transfer.localPath, 'write local file', transfer.localPath);
  const label = `Downloading ${transfer.guestPath} -> ${transfer.localPath}`;
  const cap = downloadCap();
  const overCap = (total: number) => {
    if (total <= cap) return undefined;
    rmSync(transfer.localPath, { force: true });
    return agentError('read file', `guest streamed ${total} bytes, exceeding the ${cap} byte cap`);
  };
  await pump(source, target, new Progress(label, undefined), transfer.machine, { targetPath: transfer.localPath, chunkBytes: DOWNLOAD_CHUNK_BYTES, overCap, faults: faultsAimedAt(transfer.guestPath) });
}

/**
 * `SMOLVM_FILE_TRANSFER_MAX_BYTES` from the CLI's own environment, else 4 GiB; a value
 * parse_size_bytes refuses is ignored (src/agent/client.rs:2630-2635).
 */
export function downloadCap(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[CAP_VARIABLE];
  return (raw === undefined ? undefined : parseSizeBytes(raw.trim())) ?? FILE_TRANSFER_MAX_TOTAL;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  ...Object.fromEntries(['k', 'm', 'g', 't'].flatMap((letter, i) => ['', 'i', 'ib', 'b'].map((suffix) => [letter + suffix, 2 ** (10 * (i + 1))]))),
};

/**
 * smolvm's `parse_size_bytes` (src/util.rs:131-160): a number, then K/M/G/T (binary) with an
 * optional `i` and/or `B`, any case; zero is refused. Undefined where smolvm returns an error.
 */
export function parseSizeBytes(text: string): number | undefined {
  const trimmed = text.trim();
  const split = trimmed.search(/[^\d.]/);
  const [number, unit] = split < 0 ? [trimmed, ''] : [trimmed.slice(0, split), trimmed.slice(split).trim().toLowerCase()];
  const multiplier = SIZE_UNITS[unit];
  if (!/^(\d+\.?\d*|\.\d+)$/.test(number) || multiplier === undefined) return undefined;
  const bytes = Math.floor(Number(number) * multiplier);
  return bytes > 0 ? bytes : undefined;
}

interface UploadMeta {
  mode?: string;
  uid: number;
  gid: number;
}

/**
 * The agent refuses a declared size over the compiled-in 4 GiB, which the CLI's environment cannot
 * raise, before anything is written (crates/smolvm-agent/src/main.rs:3029-3041, src/agent/client.rs:2110-2117).
 */
async function upload(transfer: Transfer, meta: UploadMeta): Promise<void> {
  const mode = meta.mode === undefined ? 0o644 : parseOctalMode(meta.mode);
  const source = await openForRead(transfer.localPath, 'read local file', transfer.localPath);
  if (source.size > FILE_TRANSFER_MAX_TOTAL) {
    await source.handle.close();
    throw agentError('begin streaming write', `total_size ${source.size} exceeds maximum ${FILE_TRANSFER_MAX_TOTAL}`);
  }
  const targetPath = guestHostPath(transfer);
  const target = await openForWrite(targetPath, 'write file', transfer.guestPath);
  const progress = new Progress(`Uploading ${transfer.localPath} -> ${transfer.guestPath}`, source.size);
  await pump(source, target, progress, transfer.machine, { targetPath, chunkBytes: UPLOAD_CHUNK_BYTES, oneShot: source.size <= SINGLE_SHOT_MAX_BYTES, faults: faultsAimedAt(transfer.guestPath) });
  chmodSync(targetPath, mode);
  chownSync(targetPath, meta.uid, meta.gid);
}

function parseOctalMode(text: string): number {
  const mode = /^(0o)?[0-7]{1,4}$/.test(text) ? parseInt(text.replace(/^0o/, ''), 8) : NaN;
  if (Number.isNaN(mode)) throw configError('cp', `invalid octal mode '${text}' (expected e.g. 644)`);
  return mode;
}

async function openForRead(path: string, operation: string, shownPath: string): Promise<{ handle: FileHandle; size: number }> {
  let size: number;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw Object.assign(new Error('Is a directory'), { code: 'EISDIR' });
    size = stat.size;
  } catch (error) {
    throw agentError(operation, `${shownPath}: ${osErrorText(error)}`);
  }
  return { handle: await open(path, 'r'), size };
}

async function openForWrite(path: string, operation: string, shownPath: string): Promise<FileHandle> {
  try {
    return await open(path, 'w');
  } catch (error) {
    throw agentError(operation, `${shownPath}: ${osErrorText(error)}`);
  }
}

interface PumpOptions {
  /** Whether the `cp:write` fault point applies to this copy (see faultsAimedAt). */
  faults?: boolean;
  /** The file written, for the `cp:write` fault point. */
  targetPath: string;
  chunkBytes: number;
  /** An upload of at most 1 MiB goes in one shot and shows only its final line (src/agent/client.rs:2083-2089). */
  oneShot?: boolean;
  /** The error when this many bytes would cross the transfer cap, else undefined. */
  overCap?: (total: number) => Error | undefined;
}

/** Copies in chunks, throttled by SMOLVM_SIM_CP_RATE, with smolvm's progress on stderr. */
async function pump(source: { handle: FileHandle; size: number }, target: FileHandle, progress: Progress, machine: string, options: PumpOptions): Promise<void> {
  const rate = cpRateFault(machine);
  const buffer = Buffer.alloc(rate ? Math.max(1, Math.min(options.chunkBytes, Math.floor(rate / 10))) : options.chunkBytes);
  let done = 0;
  let halfwayPassed = false;
  try {
    for (;;) {
      const { bytesRead } = await source.handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) break;
      const refused = options.overCap?.(done + bytesRead);
      if (refused) throw refused;
      await target.write(buffer, 0, bytesRead);
      done += bytesRead;
      if (rate) await sleep(Math.max(0, (done / rate) * 1000 - progress.elapsedMs()));
      if (!options.oneShot) progress.update(done);
      if (!halfwayPassed && done * 2 >= source.size) {
        halfwayPassed = true;
        if (options.faults !== false) await faultPoint('cp:write', machine, options.targetPath);
      }
    }
  } finally {
    await source.handle.close();
    await target.close();
  }
  progress.finish(done);
}

/**
 * smolvm's `ProgressBar` (src/cli/mod.rs:69-174): every update is `\r` + line with no newline,
 * at most one per 250 ms and the first at once, whatever stderr is; an upload's 100 % line waits
 * for `finish`, which ends the line with the one newline of a successful transfer. Uploads know
 * their total; downloads do not (src/cli/machine.rs:4979-4992).
 */
class Progress {
  private static readonly THROTTLE_MS = 250;
  private readonly started = Date.now();
  private lastPrint = this.started - 1000;
  private printed = false;

  constructor(
    private readonly label: string,
    private readonly total: number | undefined,
  ) {}

  elapsedMs(): number {
    return Date.now() - this.started;
  }

  update(done: number): void {
    if (this.total !== undefined && this.total > 0 && done >= this.total) return;
    const now = Date.now();
    if (now - this.lastPrint < Progress.THROTTLE_MS) return;
    this.lastPrint = now;
    this.printed = true;
    process.stderr.write(`\r${this.line(done)}`);
  }

  finish(done: number): void {
    process.stderr.write(`${this.printed ? '\r' : ''}${this.line(done)}\n`);
  }

  private line(done: number): string {
    const rate = `${formatBytes(Math.floor(done / (Math.max(this.elapsedMs(), 1) / 1000)))}/s`;
    if (this.total === undefined || this.total === 0) return `${this.label}: ${formatBytes(done)} (${rate})`;
    const percent = Math.min(100, (done * 100) / this.total);
    return `${this.label}: ${formatBytes(done)} / ${formatBytes(this.total)} (${percent.toFixed(1)}%, ${rate})`;
  }
}

/**
 * `SMOLVM_SIM_CP_ONLY=TEXT`: the `cp` and `cp:write` fault points apply only to copies whose guest
 * path contains TEXT, for a command that copies several files of one machine.
 */
function faultsAimedAt(guestPath: string): boolean {
  const only = process.env.SMOLVM_SIM_CP_ONLY;
  return !only || guestPath.includes(only);
}
