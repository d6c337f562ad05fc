/**
 * One pass over a root filesystem archive gives both digests an OCI layer needs: the blob's (the
 * sha256 of the file as it is stored) and the diff_id (the sha256 of the tar inside it). A plain
 * tar is its own diff_id. The pass can follow the file while it is being written.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Duplex, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { startPipe } from '../run';

const READ_CHUNK_BYTES = 1024 * 1024;
/** How long to wait for the writer when the reader has caught up with it. */
const FOLLOW_POLL_MS = 25;

export interface LayerDigests {
  /** `sha256:<hex>` of the file: the blob's digest. */
  digest: string;
  /** `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
  size: number;
}

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export interface DigestOptions {
  gzip: boolean;
  /** Wins over `gzip` when given; zstd needs `zstd`, the program on this host. */
  compression?: LayerCompression;
  zstd?: string;
  signal?: AbortSignal;
  /** Called as the file is read, with the bytes read so far and the file's size. */
  onBytes?: (read: number, total: number) => void;
}

export async function digestLayer(file: string, options: DigestOptions): Promise<LayerDigests> {
  const size = (await stat(file)).size;
  let read = 0;
  const source = createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
  const compression = options.compression ?? (options.gzip ? 'gzip' : 'none');
  return digestStream(source, { compression, zstd: options.zstd, signal: options.signal }, (chunk) => {
    read += chunk.length;
    options.onBytes?.(read, size);
  });
}

export interface GrowingOptions {
  compression: LayerCompression;
  /** The zstd program on this host, for a zstd layer's diff_id. */
  zstd?: string;
  /** Settles when the writer is done: then the rest of the file is read and the digests are final. */
  until: Promise<unknown>;
  signal?: AbortSignal;
}

/**
 * The digests of a file another process is still writing from start to end (`machine cp`): it is
 * read as it grows, so when the writer is done only the last chunk is left to read. A file that
 * ends up shorter than what was read (rewritten, not appended to) is an error, never a wrong digest.
 */
export async function digestGrowingLayer(file: string, options: GrowingOptions): Promise<LayerDigests> {
  let finished = false;
  const done = options.until.then(() => (finished = true), () => (finished = true));
  const digests = await digestStream(Readable.from(followFile(file, () => finished, options.signal)), options, () => undefined);
  await done;
  return digests;
}

async function* followFile(file: string, isFinished: () => boolean, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const handle = await openWhenCreated(file, isFinished, signal);
  const buffer = Buffer.alloc(READ_CHUNK_BYTES);
  let position = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      // Asked before the read: once the writer is done, a read that finds nothing new is the end.
      const writerDone = isFinished();
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead > 0) {
        position += bytesRead;
        yield Buffer.from(buffer.subarray(0, bytesRead));
      } else if (writerDone) break;
      else await delay(FOLLOW_POLL_MS);
    }
    const size = (await handle.stat()).size;
    if (size !== position) throw new Error(`${file} is ${size} bytes after the copy, but ${position} were read as it grew`);
  } finally {
    await handle.close();
  }
}

async function openWhenCreated(file: string, isFinished: () => boolean, signal?: AbortSignal): Promise<FileHandle> {
  for (;;) {
    signal?.throwIfAborted();
    const writerDone = isFinished();
    try {
      return await open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || writerDone) throw error;
    }
    await delay(FOLLOW_POLL_MS);
  }
}

/** One pass over a layer's bytes: the blob's digest, and the diff_id of the tar inside. */
async function digestStream(source: Readable, options: { compression: LayerCompression; zstd?: string; signal?: AbortSignal }, onChunk: (chunk: Buffer) => void): Promise<LayerDigests> {
  const blobHash = createHash('sha256');
  let size = 0;
  const count = tap((chunk) => {
    blobHash.update(chunk);
    size += chunk.length;
    onChunk(chunk);
  });
  if (options.compression === 'none') {
    await pipeline(source, count, sink(() => undefined), { signal: options.signal });
    const digest = hex(blobHash);
    return { digest, diffId: digest, size };
  }
  const tarHash = createHash('sha256');
  const inflate = decompressor(options.compression, options.zstd);
  await Promise.all([pipeline(source, count, inflate.stream, sink((chunk) => tarHash.update(chunk)), { signal: options.signal }), inflate.exited]);
  return { digest: hex(blobHash), diffId: hex(tarHash), size };
}

/** gzip in process; zstd through the zstd program (Node has no zstd before 22.15). */
export function decompressor(compression: 'gzip' | 'zstd', zstd: string | undefined): { stream: Duplex; exited: Promise<void> } {
  if (compression === 'gzip') return { stream: createGunzip(), exited: Promise.resolve() };
  if (!zstd) throw new Error('A zstd layer needs the zstd program on this host.');
  const child = startPipe([zstd, '-dc', '-q'], { stdin: true });
  return { stream: Duplex.from({ writable: child.stdin!, readable: child.stdout }), exited: child.exited };
}

function tap(onChunk: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onChunk(chunk);
      done(null, chunk);
    },
  });
}

function sink(onChunk: (chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      onChunk(chunk);
      done();
    },
  });
}

function hex(hash: Hash): string {
  return `sha256:${hash.digest('hex')}`;
}
