/**
 * Reads a tar stream entry by entry (ustar, GNU long names, pax paths) and passes on only the
 * entries a caller keeps, so GNU tar can extract the rest the way smolvm's own reader would.
 */

const BLOCK = 512;

export interface TarEntry {
  /** The member name as stored, `./` prefixes and all. */
  path: string;
  /** The typeflag: '0' file, '1' hard link, '2' symlink, '3'/'4' devices, '5' directory, ... */
  type: string;
  linkpath: string;
}

export type Verdict = 'keep' | 'drop';

/** Types whose size field says nothing about data that follows. */
const NO_DATA_TYPES = new Set(['1', '2', '3', '4', '5', '6']);
/** Headers that describe the next entry rather than being one. */
const EXTENSION_TYPES = new Set(['L', 'K', 'x']);

/** Yields `input` minus the entries `decide` drops (with the extension headers that named them). */
export async function* filterTar(input: AsyncIterable<Buffer>, decide: (entry: TarEntry) => Verdict): AsyncGenerator<Buffer> {
  const reader = new BlockReader(input);
  let pending: Buffer[] = [];
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  for (;;) {
    const header = await reader.read(BLOCK);
    if (header === undefined) return;
    if (header.every((byte) => byte === 0)) {
      yield header;
      yield* reader.rest();
      return;
    }
    const type = String.fromCharCode(header[156] || 0x30);
    const size = NO_DATA_TYPES.has(type) ? 0 : octalOrBinary(header.subarray(124, 136));
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (EXTENSION_TYPES.has(type)) {
      const data = (await reader.read(padded)) ?? truncated();
      pending.push(header, data);
      const text = data.subarray(0, size);
      if (type === 'L') longName = cString(text);
      else if (type === 'K') longLink = cString(text);
      else pax = { ...pax, ...paxRecords(text) };
      continue;
    }
    const entry = { path: pax.path ?? longName ?? ustarName(header), type, linkpath: pax.linkpath ?? longLink ?? cString(header.subarray(157, 257)) };
    const keep = decide(entry) === 'keep';
    if (keep) yield* pending;
    if (keep) yield header;
    yield* reader.pass(padded, keep);
    pending = [];
    longName = longLink = undefined;
    pax = {};
  }
}

function ustarName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  // POSIX ustar ("ustar\0") keeps a prefix; GNU's old format ("ustar  ") uses those bytes otherwise.
  const posix = header.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = posix ? cString(header.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.toString('utf8', 0, end < 0 ? bytes.length : end);
}

/** A numeric field: NUL/space-terminated octal, or GNU base-256 when the high bit is set. */
function octalOrBinary(field: Buffer): number {
  if (field[0] & 0x80) {
    let value = field[0] & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const text = field.toString('latin1').replace(/[\0 ].*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** `LEN key=value\n` records of a pax extended header. */
function paxRecords(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    const length = parseInt(data.toString('latin1', offset, space), 10);
    if (space < 0 || !(length > 0)) break;
    const record = data.toString('utf8', space + 1, offset + length - 1);
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    offset += length;
  }
  return records;
}

function truncated(): never {
  throw new Error('unexpected end of archive');
}

/** Exact-length reads over a chunked stream, and pass-through of long runs without copying. */
class BlockReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private buffered: Buffer = Buffer.alloc(0);

  constructor(input: AsyncIterable<Buffer>) {
    this.iterator = input[Symbol.asyncIterator]();
  }

  /** `length` bytes, or undefined at a clean end of the stream. */
  async read(length: number): Promise<Buffer | undefined> {
    while (this.buffered.length < length) {
      const next = await this.iterator.next();
      if (next.done) {
        if (this.buffered.length === 0) return undefined;
        truncated();
      }
      this.buffered = this.buffered.length === 0 ? next.value : Buffer.concat([this.buffered, next.value]);
    }
    const head = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return head;
  }

  /** The next `length` bytes, yielded when `emit`, skipped otherwise. */
  async *pass(length: number, emit: boolean): AsyncGenerator<Buffer> {
    let left = length;
    while (left > 0) {
      if (this.buffered.length === 0) {
        const next = await this.iterator.next();
        if (next.done) truncated();
        this.buffered = next.value;
      }
      const take = this.buffered.subarray(0, Math.min(left, this.buffered.length));
      this.buffered = this.buffered.subarray(take.length);
      left -= take.length;
      if (emit) yield take;
    }
  }

  async *rest(): AsyncGenerator<Buffer> {
    if (this.buffered.length > 0) yield this.buffered;
    for (let next = await this.iterator.next(); !next.done; next = await this.iterator.next()) yield next.value;
  }
}
