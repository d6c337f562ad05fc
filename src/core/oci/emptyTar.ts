/**
 * A tar of empty regular files, written here rather than in the VM: the whiteout layer of an
 * incremental freeze (`.wh.<name>` and `.wh..wh..opq` markers carry no data). GNU format, with a
 * `././@LongLink` entry for a name that does not fit the header's 100 bytes, so that any name's
 * bytes (latin1 strings in, bytes out) come through as they are.
 */
const BLOCK = 512;
const NAME_BYTES = 100;

export function emptyFilesTar(names: readonly string[]): Buffer {
  const blocks: Buffer[] = [];
  for (const name of names) {
    const bytes = Buffer.from(name, 'latin1');
    if (bytes.length >= NAME_BYTES) blocks.push(header('././@LongLink', 'L', bytes.length + 1), padded(Buffer.concat([bytes, Buffer.alloc(1)])));
    blocks.push(header(bytes.subarray(0, NAME_BYTES - 1).toString('latin1'), '0', 0));
  }
  blocks.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(blocks);
}

function header(name: string, type: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, NAME_BYTES, 'latin1');
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(type, 156, 'latin1');
  block.write('ustar  \0', 257, 'latin1');
  block.write('root', 265, 'latin1');
  block.write('root', 297, 'latin1');
  block.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}
