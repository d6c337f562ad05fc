/**
 * The stand-in's `.smolmachine` sidecar, laid out as smolvm's (crates/smolvm-pack/src/packer.rs:81-161):
 * a zstd tar of the pack's assets (`agent-rootfs.tar`, `layers/<hex>.tar`), the manifest JSON
 * (pretty) and a 64-byte little-endian footer:
 *
 *   0 magic "SMOLPACK" | 8 version u32 | 12 stub size u64 (0) | 20 assets offset u64 (0) |
 *   28 assets size u64 | 36 manifest offset u64 | 44 manifest size u64 |
 *   52 CRC-32 of assets + manifest u32 | 56 reserved, zero
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, createReadStream, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { agentError, SimError } from './errors';
import { hostArch } from './faults';
import { unpackPackedLayer } from './layers';

export const FOOTER_SIZE = 64;
const MAGIC = 'SMOLPACK';
/** What smolvm writes (FORMAT_VERSION, crates/smolvm-pack/src/format.rs:60); it reads 1, 2 and 3. */
const FORMAT_VERSION = 1;
/** ZSTD_LEVEL (crates/smolvm-pack/src/assets.rs:46), one thread as the zstd crate's Encoder::new. */
const ZSTD = 'zstd -3 --single-thread';
/** A layer's file name is its digest's hex and nothing else (crates/smolvm-pack/src/assets.rs:20-41). */
const LAYER_PATH = /^layers\/[0-9a-fA-F]{12,}\.tar$/;

export interface AssetEntry {
  path: string;
  size: number;
}

export interface LayerEntry extends AssetEntry {
  digest: string;
}

/** `PackManifest` (crates/smolvm-pack/src/format.rs:334-419): empty lists and a null workdir are left out. */
export interface PackManifest {
  mode: 'container' | 'vm';
  image: string;
  digest: string;
  platform: string;
  host_platform: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workdir?: string;
  cpus: number;
  mem: number;
  image_size: number;
  network: boolean;
  gpu: boolean;
  cuda: boolean;
  created: string;
  smolvm_version: string;
  assets: { libraries: AssetEntry[]; agent_rootfs: AssetEntry; layers: LayerEntry[] };
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

/**
 * Writes the sidecar straight to `path` (not atomically, like smolvm): the files of `assetsDir`
 * in name order, tarred and compressed with zstd, then the manifest and the footer. Returns its size.
 */
export async function writeSidecar(path: string, assetsDir: string, manifest: PackManifest, hooks: WriteHooks = {}): Promise<number> {
  const file = await open(path, 'w');
  // Top-level names in order, as `compress` appends them (crates/smolvm-pack/src/assets.rs:683-704).
  const names = readdirSync(assetsDir).sort();
  const tar = spawn('tar', ['--create', `--use-compress-program=${ZSTD}`, '--numeric-owner', '--sort=name', `--directory=${assetsDir}`, '--', ...names], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const { size, crc } = await streamAssets(file, tar.stdout, exitOf(tar, 'tar'), hooks);
    const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2));
    await file.write(manifestBytes);
    await file.write(footer(size, manifestBytes.length, crc32(manifestBytes, crc)));
    return size + manifestBytes.length + FOOTER_SIZE;
  } finally {
    tar.kill('SIGKILL');
    await file.close();
  }
}

async function streamAssets(file: FileHandle, compressed: Readable, exit: Promise<string>, hooks: WriteHooks): Promise<{ size: number; crc: number }> {
  let crc = 0;
  let size = 0;
  for await (const chunk of compressed as AsyncIterable<Buffer>) {
    await file.write(chunk);
    crc = crc32(chunk, crc);
    size += chunk.length;
    if (size === chunk.length) await hooks.afterFirstChunk?.();
  }
  const failure = await exit;
  if (failure) throw agentError('pack binary', failure);
  return { size, crc };
}

/** '' when the program succeeded, else what it said. */
function exitOf(child: ReturnType<typeof spawn>, name: string): Promise<string> {
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  return new Promise((resolve) => child.on('close', (code) => resolve(code === 0 ? '' : `${name} failed: ${Buffer.concat(stderr).toString().trim()}`)));
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
 * Neither the footer's CRC nor any digest is checked: only `pack run` calls
 * `verify_sidecar_checksum` (crates/smolvm-pack/src/packer.rs:600-619, src/cli/pack_run.rs:330-350).
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

/**
 * Unpacks the assets, then the pack's layers in order into `dest` (the guest agent's `tar -x`,
 * crates/smolvm-agent/src/storage.rs:679-746; owners kept, crates/smolvm-pack/src/extract.rs:145-167).
 */
export async function extractSidecar(path: string, info: SidecarInfo, dest: string): Promise<void> {
  const assets = mkdtempSync(join(dirname(dest), '.assets-'));
  try {
    await unpackAssets(path, info, assets);
    mkdirSync(dest, { recursive: true });
    for (const layer of info.manifest.assets?.layers ?? []) {
      if (!LAYER_PATH.test(layer.path)) throw agentError('extract sidecar', `digest is not valid hex: '${layer.digest}'`);
      unpackPackedLayer(join(assets, layer.path), dest);
    }
  } finally {
    rmSync(assets, { recursive: true, force: true });
  }
}

async function unpackAssets(path: string, info: SidecarInfo, dir: string): Promise<void> {
  const tar = spawn('tar', ['--extract', '--use-compress-program=zstd', '--numeric-owner', '--file=-', `--directory=${dir}`], { stdio: ['pipe', 'ignore', 'pipe'] });
  // tar stops reading when the data is damaged (EPIPE here): its own status and stderr say why.
  tar.stdin.on('error', () => undefined);
  const exit = exitOf(tar, 'tar');
  createReadStream(path, { start: info.assetsOffset, end: info.assetsOffset + info.assetsSize - 1 }).pipe(tar.stdin);
  const failure = await exit;
  // smolvm reports a failure as one `Error:` line (src/main.rs:211-216).
  if (failure) throw agentError('extract sidecar', failure.split('\n').join('; '));
}

/**
 * What smolvm before 1.8.1 did on restore: every file owned by one host uid and gid. Since 1.8.1
 * owners are kept (crates/smolvm-pack/src/extract.rs:107-167); `SMOLVM_SIM_REMAP_UID` opts in.
 */
export function remapOwnership(root: string, uid: number): void {
  const result = spawnSync('chown', ['-R', '--no-dereference', `${uid}:${uid}`, root], { encoding: 'utf8' });
  if (result.status !== 0) throw agentError('extract sidecar', `ownership remap failed: ${result.stderr.trim()}`);
}
