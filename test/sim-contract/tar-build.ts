/**
 * Hand-made ustar archives for layer tests: entries GNU tar will not write from a real tree
 * (`..` and absolute names, whiteout markers beside the names they delete, links to nowhere).
 */
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { sha256Digest, type Layer } from '../support/registry';

const BLOCK = 512;
const TYPES = { file: '0', hardlink: '1', symlink: '2', dir: '5' } as const;

export interface Member {
  name: string;
  type?: keyof typeof TYPES;
  content?: string;
  /** Target of a link. */
  link?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export function buildTar(members: Member[]): Buffer {
  const blocks: Buffer[] = [];
  for (const member of members) {
    const content = Buffer.from(member.content ?? '');
    blocks.push(header(member, content.length));
    if (content.length > 0) blocks.push(content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK));
  }
  blocks.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(blocks);
}

function header(member: Member, size: number): Buffer {
  const type = member.type ?? 'file';
  const block = Buffer.alloc(BLOCK);
  block.write(member.name, 0, 100, 'utf8');
  octal(block, 100, 8, member.mode ?? (type === 'dir' ? 0o755 : 0o644));
  octal(block, 108, 8, member.uid ?? 0);
  octal(block, 116, 8, member.gid ?? 0);
  octal(block, 124, 12, type === 'file' ? size : 0);
  octal(block, 136, 12, 1_700_000_000);
  block.write(TYPES[type], 156, 1, 'latin1');
  block.write(member.link ?? '', 157, 100, 'utf8');
  block.write('ustar\0' + '00', 257, 8, 'latin1');
  block.fill(' ', 148, 156);
  const sum = block.reduce((total, byte) => total + byte, 0);
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}

/** A layer as a registry holds it, compressed as asked and labelled with any media type. */
export function layerOf(tar: Buffer, compression: 'zstd' | 'gzip' | 'gzip-members' | 'none', mediaType: string): Layer {
  return { data: compress(tar, compression), mediaType, diffId: sha256Digest(tar) };
}

function compress(tar: Buffer, compression: 'zstd' | 'gzip' | 'gzip-members' | 'none'): Buffer {
  if (compression === 'none') return tar;
  if (compression === 'gzip') return gzipSync(tar);
  if (compression === 'gzip-members') return Buffer.concat([gzipSync(tar.subarray(0, BLOCK)), gzipSync(tar.subarray(BLOCK))]);
  const result = spawnSync('zstd', ['--quiet', '--stdout'], { input: tar, maxBuffer: 1024 ** 3 });
  if (result.status !== 0) throw new Error(`zstd failed: ${result.stderr.toString()}`);
  return result.stdout;
}
