/**
 * One layer made on the host from a stack of layers: what `smolvm pack create` is served after an
 * incremental freeze. smolvm 1.9.3's pack does not merge several layers the way overlayfs stacks
 * them: it copies each layer's folder over the last with busybox `cp -a`, which deletes nothing,
 * replaces no symlink and turns no file into a folder or back (src/cli/pack.rs:394-408). So the
 * stack is flattened here, in one streaming pass over each layer: every path the freeze's listing
 * holds, taken from the topmost layer that has it. Whiteouts need no reading: a deleted path is
 * not in the listing. Entries are copied byte for byte, headers and all.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { startPipe } from '../run';
import type { LayerCompression, LayerDigests } from './layer';

const BLOCK = 512;

export interface StackedLayer {
  file: string;
  compression: LayerCompression;
  /** The zstd program on this host, for a zstd layer. */
  zstd?: string;
}

export interface FlattenOptions {
  /** Whether a member name (`./etc/passwd`, `.`) is in the tree the flattened layer must hold. */
  keep: (name: string) => boolean;
  signal?: AbortSignal;
}

/** Writes the flattened layer, an uncompressed tar, to `out`; returns its digests (one pass, as it is written). */
export async function flattenLayers(layers: readonly StackedLayer[], out: string, options: FlattenOptions): Promise<LayerDigests> {
  const above: Set<string>[] = [];
  for (let i = layers.length - 1; i > 0; i--) above.unshift(await memberNames(layers[i], options.signal));
  const writer = new HashingWriter(out);
  try {
    for (const [index, layer] of layers.entries()) {
      const hidden = above.slice(index);
      await forEachEntry(open(layer, options.signal), async (entry) => {
        const wanted = options.keep(entry.name) && !hidden.some((names) => names.has(entry.name));
        if (wanted) await writer.write(entry.headerBlocks);
        await entry.data(wanted ? (chunk) => writer.write(chunk) : undefined);
      });
    }
    await writer.write(Buffer.alloc(2 * BLOCK));
    return await writer.close();
  } catch (error) {
    await writer.close().catch(() => undefined);
    throw error;
  }
}

/** Every member name of a layer, normalized (`./etc/`, `etc` and `./etc` are `./etc`). */
export async function memberNames(layer: StackedLayer, signal?: AbortSignal): Promise<Set<string>> {
  const names = new Set<string>();
  await forEachEntry(open(layer, signal), async (entry) => {
    names.add(entry.name);
    await entry.data(undefined);
  });
  return names;
}

function open(layer: StackedLayer, signal?: AbortSignal): Readable {
  if (layer.compression === 'zstd') {
    if (!layer.zstd) throw new Error('A zstd layer needs the zstd program on this host.');
    // A truncated or damaged layer ends the tar early, which forEachEntry reports.
    const child = startPipe([layer.zstd, '-dc', '-q', '--', layer.file], { signal });
    child.stdout.once('close', () => child.stop());
    return child.stdout;
  }
  const file = createReadStream(layer.file, { highWaterMark: 1 << 20, signal });
  return layer.compression === 'gzip' ? file.pipe(createGunzip()) : file;
}

interface Entry {
  name: string;
  /** The entry's header block and any GNU long-name or pax blocks before it, as read. */
  headerBlocks: Buffer;
  /** Streams the entry's data (padded to whole blocks) to `sink`, or skips it. Must be called once. */
  data(sink: ((chunk: Buffer) => Promise<void>) | undefined): Promise<void>;
}

/** Reads a tar stream entry by entry, up to its end-of-archive block. */
async function forEachEntry(stream: Readable, onEntry: (entry: Entry) => Promise<void>): Promise<void> {
  const reader = new ChunkReader(stream);
  try {
    let pending: Buffer[] = [];
    let longName: string | undefined;
    let paxPath: string | undefined;
    let paxSize: number | undefined;
    for (;;) {
      const header = await reader.read(BLOCK);
      if (header.every((byte) => byte === 0)) return;
      const type = String.fromCharCode(header[156] || 0x30);
      const size = paxSize ?? headerSize(header);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'L' || type === 'x') {
        const body = await reader.read(padded);
        pending.push(header, body);
        if (type === 'L') longName = body.subarray(0, size).toString('latin1').replace(/\0.*$/s, '');
        else ({ path: paxPath, size: paxSize } = parsePax(body.subarray(0, size), paxPath, paxSize));
        continue;
      }
      if (type === 'K' || type === 'g') {
        pending.push(header, await reader.read(padded));
        continue;
      }
      const name = normalize(paxPath ?? longName ?? headerName(header));
      const headerBlocks = Buffer.concat([...pending, header]);
      pending = [];
      longName = paxPath = paxSize = undefined;
      let consumed = false;
      await onEntry({
        name,
        headerBlocks,
        data: async (sink) => {
          consumed = true;
          await reader.pass(padded, sink);
        },
      });
      if (!consumed) await reader.pass(padded, undefined);
    }
  } finally {
    stream.destroy();
  }
}

/** `./etc/passwd`, `etc/passwd/` and `/etc/passwd` are all `./etc/passwd`; the root is `.`. */
export function normalize(name: string): string {
  const trimmed = name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  return trimmed === '' || trimmed === '.' ? '.' : `./${trimmed}`;
}

function headerName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const magic = header.subarray(257, 263).toString('latin1');
  // POSIX ustar splits a long name into prefix/name; GNU's "ustar  " header has no prefix field.
  const prefix = magic === 'ustar\0' ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** Octal, or GNU base-256 for sizes of 8 GiB and more. */
function headerSize(header: Buffer): number {
  const field = header.subarray(124, 136);
  if (field[0] & 0x80) {
    let size = 0;
    for (let i = 1; i < field.length; i++) size = size * 256 + field[i];
    return size;
  }
  const text = cString(field).trim();
  return text ? parseInt(text, 8) : 0;
}

function parsePax(body: Buffer, path: string | undefined, size: number | undefined): { path?: string; size?: number } {
  let offset = 0;
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number(body.subarray(offset, space).toString('latin1'));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = body.subarray(space + 1, offset + length - 1);
    const equals = record.indexOf(0x3d);
    const key = record.subarray(0, equals).toString('latin1');
    const value = record.subarray(equals + 1);
    // Names are compared as the bytes they are (latin1 strings), as the listing keeps them.
    if (key === 'path') path = value.toString('latin1');
    if (key === 'size') size = Number(value.toString('latin1'));
    offset += length;
  }
  return { path, size };
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString('latin1');
}

/** Reads exact byte counts from a stream's chunks, or passes a count through without copying it. */
class ChunkReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private rest: Buffer = Buffer.alloc(0);

  constructor(stream: Readable) {
    this.chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  async read(count: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.pass(count, async (chunk) => {
      parts.push(chunk);
    });
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  async pass(count: number, sink: ((chunk: Buffer) => Promise<void>) | undefined): Promise<void> {
    let left = count;
    while (left > 0) {
      if (this.rest.length === 0) {
        const next = await this.chunks.next();
        if (next.done) throw new Error('the layer ends before its end-of-archive blocks');
        this.rest = next.value;
      }
      const take = Math.min(left, this.rest.length);
      const piece = this.rest.subarray(0, take);
      this.rest = this.rest.subarray(take);
      left -= take;
      if (sink) await sink(piece);
    }
  }
}

/** A file written in order, hashed as it is written. */
class HashingWriter {
  private readonly hash = createHash('sha256');
  private readonly stream;
  private size = 0;

  constructor(file: string) {
    this.stream = createWriteStream(file, { mode: 0o600 });
  }

  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }

  async close(): Promise<LayerDigests> {
    await new Promise<void>((resolve, reject) => this.stream.end((error?: Error | null) => (error ? reject(error) : resolve())));
    const digest = `sha256:${this.hash.digest('hex')}`;
    return { digest, diffId: digest, size: this.size };
  }
}
