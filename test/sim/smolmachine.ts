/**
 * The stand-in's `.smolmachine` container, in the spirit of smolvm's own: a gzip tar of the
 * root filesystem (smolvm uses zstd, which this host lacks), the manifest JSON, and a 64-byte
 * little-endian footer:
 *
 *   0 magic "SMOLPACK" | 8 version u32 | 12 stub size u64 (0) | 20 assets offset u64 |
 *   28 assets size u64 | 36 manifest offset u64 | 44 manifest size u64 |
 *   52 CRC-32 of assets + manifest u32 | 56 reserved, zero
 *
 * The manifest also records the sha256 of the assets, so any flipped byte or truncation fails.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { agentError, SimError } from './errors';
import { hostArch } from './faults';

export const FOOTER_SIZE = 64;
const MAGIC = 'SMOLPACK';
/** What smolvm writes (FORMAT_VERSION, crates/smolvm-pack/src/format.rs:60); it reads 1, 2 and 3. */
const FORMAT_VERSION = 1;
const READ_CHUNK = 1024 * 1024;

export interface LayerEntry {
  digest: string;
  media_type: string;
  size: number;
}

export interface PackManifest {
  mode: 'container' | 'vm';
  image: string;
  digest: string;
  platform: string;
  host_platform: string;
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string | null;
  user: string | null;
  cpus: number;
  mem: number;
  network: boolean;
  created: string;
  smolvm_version: string;
  image_size: number;
  assets: {
    rootfs: { path: string; format: 'tar+gzip'; size: number; compressed_size: number; sha256: string; crc32: number };
    layers: LayerEntry[];
  };
}

export interface SidecarInfo {
  manifest: PackManifest;
  assetsOffset: number;
  assetsSize: number;
  fileSize: number;
}

interface WriteHooks {
  /** Runs once part of the sidecar is on disk (where the `pack:write` fault fires). */
  afterFirstChunk?: () => Promise<void>;
}

/** Writes the sidecar straight to `path` (not atomically, like smolvm) and returns its size. */
export async function writeSidecar(path: string, rootDir: string, manifest: PackManifest, hooks: WriteHooks = {}): Promise<number> {
  const file = await open(path, 'w');
  const tar = spawn('tar', ['--create', '--gzip', '--numeric-owner', '--sort=name', `--directory=${rootDir}`, '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const size = await streamAssets(tar, file, manifest, hooks);
    const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2));
    await file.write(manifestBytes);
    await file.write(footer(size, manifestBytes.length, crc32(manifestBytes, manifest.assets.rootfs.crc32)));
    return size + manifestBytes.length + FOOTER_SIZE;
  } finally {
    tar.kill('SIGKILL');
    await file.close();
  }
}

/** Copies tar's gzip output into the file, noting its size, sha256 and running CRC in the manifest. */
async function streamAssets(tar: ChildProcessByStdio<null, Readable, Readable>, file: FileHandle, manifest: PackManifest, hooks: WriteHooks): Promise<number> {
  const stderr: Buffer[] = [];
  tar.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<number>((resolve) => tar.on('close', (code) => resolve(code ?? 1)));
  const sha = createHash('sha256');
  let crc = 0;
  let size = 0;
  for await (const chunk of tar.stdout as AsyncIterable<Buffer>) {
    await file.write(chunk);
    sha.update(chunk);
    crc = crc32(chunk, crc);
    size += chunk.length;
    if (size === chunk.length) await hooks.afterFirstChunk?.();
  }
  if ((await exited) !== 0) throw agentError('pack binary', `tar failed: ${Buffer.concat(stderr).toString().trim()}`);
  manifest.assets.rootfs.compressed_size = size;
  manifest.assets.rootfs.sha256 = `sha256:${sha.digest('hex')}`;
  manifest.assets.rootfs.crc32 = crc;
  return size;
}

function footer(assetsSize: number, manifestSize: number, checksum: number): Buffer {
  const buf = Buffer.alloc(FOOTER_SIZE);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(FORMAT_VERSION, 8);
  buf.writeBigUInt64LE(0n, 12);
  buf.writeBigUInt64LE(0n, 20);
  buf.writeBigUInt64LE(BigInt(assetsSize), 28);
  buf.writeBigUInt64LE(BigInt(assetsSize), 36);
  buf.writeBigUInt64LE(BigInt(manifestSize), 44);
  buf.writeUInt32LE(checksum >>> 0, 52);
  return buf;
}

/**
 * Reads a sidecar as `create --from` does: footer, layout, manifest and CPU architecture only.
 * Neither the footer's CRC nor any sha256 is checked: only `pack run` calls
 * `verify_sidecar_checksum` (crates/smolvm-pack/src/packer.rs:600-619, src/cli/pack_run.rs:330-350);
 * `verifySidecar` below is that check, for the stand-in's own tests.
 */
export function readSidecar(path: string): SidecarInfo {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    const layout = readFooter(fd, fileSize);
    const manifest = readManifest(fd, layout.manifestOffset, layout.manifestSize);
    checkArchitecture(manifest);
    return { manifest, assetsOffset: layout.assetsOffset, assetsSize: layout.assetsSize, fileSize };
  } finally {
    closeSync(fd);
  }
}

interface Layout {
  assetsOffset: number;
  assetsSize: number;
  manifestOffset: number;
  manifestSize: number;
  checksum: number;
}

function readFooter(fd: number, fileSize: number): Layout {
  const invalid = (why: string): SimError => agentError('read sidecar footer', why);
  if (fileSize < FOOTER_SIZE) throw invalid('invalid magic: not a .smolmachine file');
  const buf = readAt(fd, fileSize - FOOTER_SIZE, FOOTER_SIZE);
  if (buf.toString('latin1', 0, 8) !== MAGIC) throw invalid('invalid magic: not a .smolmachine file');
  const version = buf.readUInt32LE(8);
  // SUPPORTED_READ_VERSIONS (crates/smolvm-pack/src/format.rs:62-74).
  if (![1, 2, 3].includes(version)) throw invalid(`unsupported version: ${version}`);
  if (buf.readBigUInt64LE(12) !== 0n || buf.subarray(56).some((byte) => byte !== 0)) throw invalid('corrupt footer');
  const layout: Layout = {
    assetsOffset: Number(buf.readBigUInt64LE(20)),
    assetsSize: Number(buf.readBigUInt64LE(28)),
    manifestOffset: Number(buf.readBigUInt64LE(36)),
    manifestSize: Number(buf.readBigUInt64LE(44)),
    checksum: buf.readUInt32LE(52),
  };
  const consistent = layout.assetsOffset + layout.assetsSize === layout.manifestOffset && layout.manifestOffset + layout.manifestSize === fileSize - FOOTER_SIZE;
  if (!consistent) throw invalid('corrupt or truncated .smolmachine: section offsets do not match the file size');
  return layout;
}

function readManifest(fd: number, offset: number, size: number): PackManifest {
  try {
    return JSON.parse(readAt(fd, offset, size).toString('utf8')) as PackManifest;
  } catch {
    throw agentError('read .smolmachine', 'corrupt manifest: not valid JSON');
  }
}

/** The CRC and sha256 that `pack run` would check and `create --from` does not. */
export function verifySidecar(path: string): void {
  const fd = openSync(path, 'r');
  try {
    const layout = readFooter(fd, fstatSync(fd).size);
    verifyChecksums(fd, layout, readManifest(fd, layout.manifestOffset, layout.manifestSize));
  } finally {
    closeSync(fd);
  }
}

function verifyChecksums(fd: number, layout: Layout, manifest: PackManifest): void {
  const sha = createHash('sha256');
  let crc = 0;
  for (let offset = 0; offset < layout.assetsSize; offset += READ_CHUNK) {
    const chunk = readAt(fd, layout.assetsOffset + offset, Math.min(READ_CHUNK, layout.assetsSize - offset));
    sha.update(chunk);
    crc = crc32(chunk, crc);
  }
  crc = crc32(readAt(fd, layout.manifestOffset, layout.manifestSize), crc);
  if (crc >>> 0 !== layout.checksum) throw agentError('read .smolmachine', 'checksum mismatch: the file is corrupt');
  if (`sha256:${sha.digest('hex')}` !== manifest.assets?.rootfs?.sha256) throw agentError('read .smolmachine', 'asset digest mismatch: the file is corrupt');
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const count = readSync(fd, buf, filled, length - filled, position + filled);
    if (count === 0) throw agentError('read .smolmachine', 'unexpected end of file');
    filled += count;
  }
  return buf;
}

/** Only amd64 and arm64 are compared; any other architecture passes (src/platform/mod.rs:249-264). */
function checkArchitecture(manifest: PackManifest): void {
  const arch = manifest.platform.split('/').at(-1)?.trim() ?? '';
  const host = hostArch();
  if ((arch === 'amd64' || arch === 'arm64') && arch !== host) {
    throw agentError(
      'platform mismatch',
      `this artifact is built for architecture '${arch}' (platform '${manifest.platform}'), but this host is '${host}'. A packed VM or image carries native binaries and cannot run on a different CPU architecture — re-pack on an '${arch}' host, or use an '${host}' artifact.`,
    );
  }
}

/** Unpacks the root filesystem held in a verified sidecar into `dest`. */
export async function extractSidecar(path: string, info: SidecarInfo, dest: string): Promise<void> {
  mkdirSync(dest, { recursive: true });
  const tar = spawn('tar', ['--extract', '--gzip', '--preserve-permissions', '--numeric-owner', '--file=-', `--directory=${dest}`], { stdio: ['pipe', 'ignore', 'pipe'] });
  const stderr: Buffer[] = [];
  tar.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  // tar stops reading when the data is damaged (EPIPE here): its own status and stderr say why.
  tar.stdin.on('error', () => undefined);
  createReadStream(path, { start: info.assetsOffset, end: info.assetsOffset + info.assetsSize - 1 }).pipe(tar.stdin);
  const code = await new Promise<number>((resolve) => tar.on('close', (status) => resolve(status ?? 1)));
  // smolvm reports a failure as one `Error:` line (src/main.rs:211-216).
  if (code !== 0) throw agentError('extract sidecar', Buffer.concat(stderr).toString().trim().split('\n').join('; '));
}

/**
 * What smolvm before 1.8.1 did on restore: every file owned by one host uid and gid. Since 1.8.1
 * owners are kept (crates/smolvm-pack/src/extract.rs:107-167); `SMOLVM_SIM_REMAP_UID` opts in.
 */
export function remapOwnership(root: string, uid: number): void {
  const result = spawnSync('chown', ['-R', '--no-dereference', `${uid}:${uid}`, root], { encoding: 'utf8' });
  if (result.status !== 0) throw agentError('extract sidecar', `ownership remap failed: ${result.stderr.trim()}`);
}
