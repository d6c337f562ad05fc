/**
 * Fills a folder with a synthetic root's worth of files: many small text files (compressible,
 * like source trees and node_modules) and fewer large files of random bytes (incompressible,
 * like binaries and caches), about 40% and 60% of the bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MB = 1024 * 1024;
const TEXT_SHARE = 0.4;
const TEXT_FILE_BYTES = 8 * 1024;
const DATA_FILE_BYTES = 512 * 1024;
const FILES_PER_FOLDER = 200;

export interface SyntheticRoot {
  files: number;
  bytes: number;
}

export function fillSyntheticRoot(dir: string, sizeMb: number): SyntheticRoot {
  const total = sizeMb * MB;
  const corpus = textCorpus(4 * MB);
  const text = writeFiles(join(dir, 'text'), Math.round((total * TEXT_SHARE) / TEXT_FILE_BYTES), TEXT_FILE_BYTES, (size) => {
    const start = Math.floor(Math.random() * (corpus.length - size));
    return corpus.subarray(start, start + size);
  });
  const data = writeFiles(join(dir, 'data'), Math.round((total * (1 - TEXT_SHARE)) / DATA_FILE_BYTES), DATA_FILE_BYTES, (size) => randomBytes(size));
  return { files: text.files + data.files, bytes: text.bytes + data.bytes };
}

/** `count` files of about `meanBytes` (half to one and a half times it), in folders of 200. */
function writeFiles(dir: string, count: number, meanBytes: number, content: (size: number) => Buffer): SyntheticRoot {
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const folder = join(dir, `d${Math.floor(i / FILES_PER_FOLDER)}`);
    if (i % FILES_PER_FOLDER === 0) mkdirSync(folder, { recursive: true });
    const size = Math.round(meanBytes * (0.5 + Math.random()));
    writeFileSync(join(folder, `f${i}`), content(size));
    bytes += size;
  }
  return { files: count, bytes };
}

/** Lines of words drawn from a small vocabulary: compresses about as well as source code. */
function textCorpus(bytes: number): Buffer {
  const vocabulary = Array.from({ length: 2000 }, () => randomBytes(4).toString('base64url').slice(0, 3 + Math.floor(Math.random() * 6)));
  const lines: string[] = [];
  let length = 0;
  while (length < bytes) {
    const words = Array.from({ length: 4 + Math.floor(Math.random() * 10) }, () => vocabulary[Math.floor(Math.random() * vocabulary.length)]);
    const line = `${' '.repeat(2 * Math.floor(Math.random() * 4))}${words.join(' ')};\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join(''));
}
