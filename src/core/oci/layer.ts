/**
 * One pass over a root filesystem archive gives both digests an OCI layer needs: the blob's (the
 * sha256 of the file as it is stored) and the diff_id (the sha256 of the tar inside it). A plain
 * tar is its own diff_id.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

const READ_CHUNK_BYTES = 1024 * 1024;

export interface LayerDigests {
  /** `sha256:<hex>` of the file: the blob's digest. */
  digest: string;
  /** `sha256:<hex>` of the uncompressed tar. */
  diffId: string;
  size: number;
}

export interface DigestOptions {
  gzip: boolean;
  signal?: AbortSignal;
  /** Called as the file is read, with the bytes read so far and the file's size. */
  onBytes?: (read: number, total: number) => void;
}

export async function digestLayer(file: string, options: DigestOptions): Promise<LayerDigests> {
  const size = (await stat(file)).size;
  const blobHash = createHash('sha256');
  let read = 0;
  const count = (chunk: Buffer) => {
    blobHash.update(chunk);
    read += chunk.length;
    options.onBytes?.(read, size);
  };
  const source = createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
  if (!options.gzip) {
    await pipeline(source, sink(count), { signal: options.signal });
    const digest = hex(blobHash);
    return { digest, diffId: digest, size: read };
  }
  const tarHash = createHash('sha256');
  await pipeline(source, tap(count), createGunzip(), sink((chunk) => tarHash.update(chunk)), { signal: options.signal });
  return { digest: hex(blobHash), diffId: hex(tarHash), size: read };
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
