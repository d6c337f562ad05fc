/**
 * Image layers as smolvm 1.9.3 handles them when it packs an image:
 *
 * - the pull extracts each layer into a directory of its own, deciding the compression by its first
 *   bytes and turning whiteouts into overlayfs markers (crates/smolvm-oci-layer/src/lib.rs:221-335,
 *   called at crates/smolvm-agent/src/storage.rs:2144);
 * - `pack create` exports one layer as it is, and merges several with busybox `cp -a` bottom-up,
 *   ignoring its failures (src/cli/pack.rs:363-468).
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, createReadStream, lstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { agentError } from './errors';
import { filterTar, type TarEntry, type Verdict } from './tar-stream';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** Top-level members that mark a `.smolmachine` sidecar pushed as a layer (lib.rs:208-219). */
const PACK_SENTINELS = ['agent-rootfs.tar', 'storage.ext4'];
const BUSYBOX = '/bin/busybox';
const SCRIPT_ARGS_PER_CALL = 2000;

/** `SMOLVM_SIM_WIDEN_DIRS=1`: the pull leaves every directory that has entries below it at 0755. */
const WIDEN_DIRS_VARIABLE = 'SMOLVM_SIM_WIDEN_DIRS';

export type Compression = 'gzip' | 'zstd' | 'none';

/** By magic, never by media type (lib.rs:167-200): gzip 1f 8b, zstd 28 b5 2f fd, else plain tar. */
export function sniffCompression(file: string): Compression {
  const magic = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    const count = readSync(fd, magic, 0, 4, 0);
    if (count >= 2 && magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
    if (count === 4 && magic.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
    return 'none';
  } finally {
    closeSync(fd);
  }
}

/** Extracts one layer blob into the empty directory `dir`, as `extract_oci_layer` does. */
export async function extractLayer(blob: string, dir: string, digest: string): Promise<void> {
  const rules = new LayerRules(process.env[WIDEN_DIRS_VARIABLE] === '1');
  const decompressor = spawnDecompressor(sniffCompression(blob), blob);
  const tar = spawn('tar', ['--extract', '--numeric-owner', '--preserve-permissions', '--file=-', `--directory=${dir}`], { stdio: ['pipe', 'ignore', 'pipe'] });
  const tarErrors = collect(tar.stderr);
  const tarExit = exitCode(tar);
  let streamError: Error | undefined;
  try {
    await pipeline(Readable.from(filterTar(decompressor.output, (entry) => rules.decide(entry))), tar.stdin);
  } catch (error) {
    tar.kill('SIGKILL');
    decompressor.kill();
    streamError = error as Error;
  }
  const [code, complaint, tarSaid] = [await tarExit, await decompressor.complaint(), await tarErrors];
  const failed = streamError !== undefined || complaint !== '' || code !== 0;
  const reason = streamError instanceof RefusedLayer ? streamError.message : complaint || tarSaid || streamError?.message || `tar exited with status ${code}`;
  if (failed) throw agentError('pull image', `layer extraction failed for layer ${digest}: ${reason}`);
  makeWhiteouts(dir, rules.whiteouts());
  widen(dir, rules.widenedDirs());
}

class RefusedLayer extends Error {}

/** What `extract_oci_layer` does with each entry, decided as the stream passes. */
class LayerRules {
  private readonly written = new Set<string>();
  private readonly symlinks = new Set<string>();
  private readonly whiteoutPaths = new Set<string>();
  private readonly directories = new Set<string>();
  private readonly widened = new Set<string>();

  constructor(private readonly widenDirs: boolean) {}

  decide(entry: TarEntry): Verdict {
    if (entry.type === 'g') return 'keep';
    const parts = entry.path.split('/').filter((part) => part !== '' && part !== '.');
    if (parts.length === 1 && PACK_SENTINELS.includes(parts[0])) {
      throw new RefusedLayer(`layer is a smolmachine pack (contains '${parts[0]}') — pull it on the host via the smolmachine flow, not as a container image`);
    }
    // A path that is empty, leaves the layer, or passes through a symlink is skipped (lib.rs:56-92, 266-271).
    if (parts.length === 0 || entry.path.startsWith('/') || parts.includes('..') || this.throughSymlink(parts)) return 'drop';
    const path = parts.join('/');
    const name = parts[parts.length - 1];
    const parent = parts.slice(0, -1).join('/');
    // Markers are read by name; the opaque one marks its directory for overlayfs only (lib.rs:273-292).
    if (name === OPAQUE) return 'drop';
    if (name.startsWith(WHITEOUT_PREFIX) && name.length > WHITEOUT_PREFIX.length) {
      this.whiteout(posix.join(parent, name.slice(WHITEOUT_PREFIX.length)));
      return 'drop';
    }
    // A hard link to a file this layer did not write is skipped (lib.rs:294-301).
    if (entry.type === '1' && !this.written.has(entry.linkpath.split('/').filter((p) => p !== '' && p !== '.').join('/'))) return 'drop';
    this.record(path, parent, entry.type);
    return 'keep';
  }

  whiteouts(): string[] {
    return [...this.whiteoutPaths];
  }

  widenedDirs(): string[] {
    return [...this.widened];
  }

  private throughSymlink(parts: string[]): boolean {
    for (let i = 1; i <= parts.length; i++) if (this.symlinks.has(parts.slice(0, i).join('/'))) return true;
    return false;
  }

  private whiteout(path: string): void {
    for (const set of [this.written, this.symlinks, this.directories]) {
      for (const known of set) if (known === path || known.startsWith(`${path}/`)) set.delete(known);
    }
    this.whiteoutPaths.add(path);
  }

  private record(path: string, parent: string, type: string): void {
    this.whiteoutPaths.delete(path);
    this.written.add(path);
    if (type === '2') this.symlinks.add(path);
    // Each entry first sets its parent directory to 0755 and nothing restores it (lib.rs:303-313).
    if (this.widenDirs && this.directories.has(parent)) this.widened.add(parent);
    if (type === '5') {
      this.directories.add(path);
      this.widened.delete(path);
    }
  }
}

/** Each `.wh.<name>` becomes a `c 0 0` device at `<name>`, replacing what is there (lib.rs:94-123). */
function makeWhiteouts(dir: string, paths: string[]): void {
  runBatched('for p; do rm -rf -- "$p" && mknod -- "$p" c 0 0 || exit 1; done', paths.map((path) => join(dir, path)), 'create whiteout');
}

function widen(dir: string, paths: string[]): void {
  runBatched('chmod 0755 -- "$@"', paths.map((path) => join(dir, path)), 'set directory mode');
}

function runBatched(script: string, args: string[], what: string): void {
  for (let start = 0; start < args.length; start += SCRIPT_ARGS_PER_CALL) {
    const result = spawnSync('sh', ['-c', script, 'sh', ...args.slice(start, start + SCRIPT_ARGS_PER_CALL)], { encoding: 'utf8' });
    if (result.status !== 0) throw agentError('pull image', `${what}: ${result.stderr.trim()}`);
  }
}

/**
 * Several layers become one directory as `pack create` merges them: busybox `cp -a` of each layer
 * over the last, errors ignored (src/cli/pack.rs:394-408). busybox copies a whiteout's device onto
 * nothing it replaces, carries no opaque marker and does not turn a file into a directory or back.
 */
export function mergeLayers(layerDirs: string[], merged: string): void {
  for (const dir of layerDirs) spawnSync(BUSYBOX, ['cp', '-a', `${dir}/.`, `${merged}/`], { stdio: 'ignore' });
}

/** The agent's `tar -cf - -C <layer dir> .` (crates/smolvm-agent/src/main.rs:5917-5921). */
export function exportLayer(dir: string, file: string): void {
  const result = spawnSync('tar', ['--create', '--numeric-owner', `--file=${file}`, `--directory=${dir}`, '.'], { encoding: 'utf8' });
  if (result.status !== 0) throw agentError('export layer', result.stderr.trim());
}

/**
 * A `.smolmachine` layer unpacked for a machine. overlayfs reads a `c 0 0` device in a lower layer
 * as a whiteout, so those names are absent in the machine (and a root host never writes them,
 * crates/smolvm-pack/src/extract.rs:528-535).
 */
export function unpackPackedLayer(tarFile: string, root: string): void {
  const result = spawnSync('tar', ['--extract', '--numeric-owner', '--preserve-permissions', `--file=${tarFile}`, `--directory=${root}`], { encoding: 'utf8' });
  if (result.status !== 0) throw agentError('extract sidecar', result.stderr.trim().split('\n').join('; '));
  removeWhiteoutDevices(root);
}

function removeWhiteoutDevices(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) removeWhiteoutDevices(path);
    else if (entry.isCharacterDevice() && lstatSync(path).rdev === 0) spawnSync('rm', ['-f', '--', path]);
  }
}

interface Decompressor {
  output: AsyncIterable<Buffer>;
  kill(): void;
  /** What it printed on stderr when it failed by itself, else ''. */
  complaint(): Promise<string>;
}

function spawnDecompressor(compression: Compression, file: string): Decompressor {
  if (compression === 'none') return { output: createReadStream(file), kill: () => undefined, complaint: async () => '' };
  const child = spawn(compression === 'gzip' ? 'gzip' : 'zstd', ['-dc', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const errors = collect(child.stderr);
  const exit = exitCode(child);
  return {
    output: child.stdout,
    kill: () => child.kill('SIGKILL'),
    complaint: async () => ((await exit) === 0 ? '' : await errors),
  };
}

function collect(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => stream.on('close', () => resolve(Buffer.concat(chunks).toString().trim())));
}

function exitCode(child: ReturnType<typeof spawn>): Promise<number> {
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}
