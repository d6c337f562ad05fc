/**
 * What changed in a bottle's root filesystem since its last snapshot, found from two listings made
 * in the VM by one GNU `find -printf` pass each. A listing holds, per path, everything that changes
 * when the path's content or metadata does (ctime too: it catches a change whose mtime was put
 * back). Paths are kept as latin1 strings, so any byte a name holds (newlines, invalid UTF-8)
 * round-trips into the list tar reads. The delta is applied above the last snapshot's layers the
 * way overlayfs stacks them (smolvm's storage.rs merges with a read-only overlay mount,
 * crates/smolvm-agent/src/storage.rs:3950-3990).
 */
import { posix } from 'node:path';
import { ARCHIVE_EXCLUDES } from './context';

/** One NUL-terminated field each: type, device, inode, links, mode, uid, gid, size, mtime, ctime, path, link target. */
export const LISTING_PRINTF = '%y\\0%D\\0%i\\0%n\\0%m\\0%U\\0%G\\0%s\\0%T@\\0%C@\\0%P\\0%l\\0';
const FIELDS = 12;
/**
 * File times come from a coarse clock: a path changed just before the listing and again just after
 * it, within one tick, would look unchanged. So a path whose ctime is this close to the listing's
 * start counts as changed next time (git's "racily clean" entries).
 */
const RACY_SECONDS = 2;
const OPAQUE_MARKER = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';

export interface ListedEntry {
  type: string;
  device: string;
  inode: string;
  links: number;
  mode: string;
  uid: string;
  gid: string;
  size: string;
  mtime: string;
  ctime: string;
  target: string;
}

export interface Listing {
  /** The VM's clock (seconds) just before find started. */
  listedAt: number;
  /** Tar member names (`.`, `./etc`, `./etc/passwd`) to their entries. */
  entries: Map<string, ListedEntry>;
}

/** The listing command's exit status when the bottle's find is not GNU find (no -printf). */
export const NO_GNU_FIND_EXIT = 3;

/**
 * The guest command that writes a listing of `root` to `file`: the VM's clock, then one record per
 * path, leaving out what the archive leaves out (`excludes`, tar's patterns, which find's -path reads
 * the same way); it exits NO_GNU_FIND_EXIT, listing nothing, when
 * find is not GNU find. find exits 1 when a path vanishes under it (normal on a live system). The
 * script is constant; the file and find's arguments are passed as arguments.
 */
export function listingCommand(file: string, root = '/', excludes: readonly string[] = ARCHIVE_EXCLUDES): string[] {
  const prunes = excludes.flatMap((dir, i) => [...(i ? ['-o'] : []), '-path', posix.join(root, dir)]);
  const script = `find --version 2>/dev/null | grep -q "GNU findutils" || exit ${NO_GNU_FIND_EXIT}; out=$1; shift; { printf "%s\\0" "$(date +%s.%N)"; find "$@"; } > "$out"`;
  return ['sh', '-c', script, 'sh', file, root, '(', ...prunes, ')', '-prune', '-o', '-printf', LISTING_PRINTF];
}

export function parseListing(bytes: Buffer): Listing {
  const fields = bytes.toString('latin1').split('\0');
  if (fields.at(-1) !== '') throw new Error('the listing does not end with a NUL: it was cut short');
  fields.pop();
  const listedAt = Number(fields.shift());
  if (!Number.isFinite(listedAt)) throw new Error('the listing does not start with the VM clock (date +%s.%N)');
  if (fields.length % FIELDS !== 0) throw new Error(`the listing has ${fields.length} fields, not a multiple of ${FIELDS}`);
  const entries = new Map<string, ListedEntry>();
  for (let i = 0; i < fields.length; i += FIELDS) {
    const [type, device, inode, links, mode, uid, gid, size, mtime, ctime, path, target] = fields.slice(i, i + FIELDS);
    entries.set(memberName(path), { type, device, inode, links: Number(links), mode, uid, gid, size, mtime, ctime, target });
  }
  if (!entries.has('.')) throw new Error('the listing has no entry for /');
  return { listedAt, entries };
}

/** The listing again, in the form parseListing reads (kept with the snapshot). */
export function serializeListing(listing: Listing): Buffer {
  const parts = [String(listing.listedAt)];
  for (const [name, e] of listing.entries)
    parts.push(e.type, e.device, e.inode, String(e.links), e.mode, e.uid, e.gid, e.size, e.mtime, e.ctime, relativePath(name), e.target);
  return Buffer.from(`${parts.join('\0')}\0`, 'latin1');
}

export interface Delta {
  /** Tar member names to archive without recursion, parents first. */
  changed: string[];
  /** Names deleted (or replaced by another type) since the last listing: `.wh.<name>` entries. */
  whiteouts: string[];
  /** Directories that were replaced by new ones: `.wh..wh..opq` inside, their whole tree in `changed`. */
  opaque: string[];
}

export function diffListings(previous: Listing, current: Listing, options: { racySeconds?: number } = {}): Delta {
  const racySince = previous.listedAt - (options.racySeconds ?? RACY_SECONDS);
  const changed = new Set<string>();
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  for (const [name, entry] of current.entries) {
    const before = previous.entries.get(name);
    if (!before) changed.add(name);
    else if (before.type !== entry.type) {
      whiteouts.push(name);
      changed.add(name);
    } else if (entry.type === 'd' && (before.device !== entry.device || before.inode !== entry.inode)) {
      opaque.push(name);
      changed.add(name);
    } else if (differs(before, entry) || Number(before.ctime) >= racySince) changed.add(name);
  }
  const replaced = new Set([...whiteouts, ...opaque]);
  for (const name of previous.entries.keys()) {
    const parent = parentOf(name);
    if (!current.entries.has(name) && current.entries.get(parent)?.type === 'd' && !replaced.has(parent)) whiteouts.push(name);
  }
  addTrees(changed, opaque, current);
  addHardLinkGroups(changed, current);
  for (const name of [...changed, ...whiteouts]) addAncestors(changed, name);
  return { changed: [...changed].sort(byBytes), whiteouts: whiteouts.sort(byBytes), opaque: opaque.sort(byBytes) };
}

export function isEmptyDelta(delta: Delta): boolean {
  return delta.whiteouts.length === 0 && delta.opaque.length === 0 && delta.changed.every((name) => name === '.');
}

/** The list `tar --null --files-from` reads: the names' bytes as they are, each ended by NUL. */
export function filesFromList(names: readonly string[]): Buffer {
  return Buffer.from(names.map((name) => `${name}\0`).join(''), 'latin1');
}

/** The tar member names of the whiteout layer: deletions and opaque markers. */
export function whiteoutMembers(delta: Delta): string[] {
  const deletions = delta.whiteouts.map((name) => `${parentOf(name)}/${WHITEOUT_PREFIX}${baseName(name)}`);
  return [...deletions, ...delta.opaque.map((dir) => `${dir}/${OPAQUE_MARKER}`)];
}

function differs(a: ListedEntry, b: ListedEntry): boolean {
  return a.device !== b.device || a.inode !== b.inode || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid
    || a.size !== b.size || a.mtime !== b.mtime || a.ctime !== b.ctime || a.target !== b.target || a.links !== b.links;
}

/** Everything under a replaced directory goes in: the opaque marker hides all that was below it. */
function addTrees(changed: Set<string>, dirs: readonly string[], current: Listing): void {
  if (dirs.length === 0) return;
  const prefixes = dirs.map((dir) => `${dir}/`);
  for (const name of current.entries.keys()) if (prefixes.some((prefix) => name.startsWith(prefix))) changed.add(name);
}

/**
 * smolvm skips a hard link whose target is not in the same layer
 * (crates/smolvm-oci-layer/src/lib.rs:291-299), so every name of a changed inode goes in together.
 */
function addHardLinkGroups(changed: Set<string>, current: Listing): void {
  const groups = new Map<string, string[]>();
  for (const [name, entry] of current.entries) {
    if (entry.type === 'd' || entry.links < 2) continue;
    const key = `${entry.device}:${entry.inode}`;
    groups.set(key, [...(groups.get(key) ?? []), name]);
  }
  for (const names of groups.values()) if (names.some((name) => changed.has(name))) for (const name of names) changed.add(name);
}

/**
 * overlayfs shows a directory with the attributes of the topmost layer that has it, and a layer
 * unpacker makes missing parents with its own defaults: so every parent goes in, as it is now.
 */
function addAncestors(changed: Set<string>, name: string): void {
  for (let parent = parentOf(name); parent !== name; name = parent, parent = parentOf(name)) changed.add(parent);
}

function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? name : name.slice(0, slash);
}

function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/** The root is `.`, `etc` is `./etc`: the names a full archive of `--directory=/ .` has. */
function memberName(relative: string): string {
  return relative === '' ? '.' : `./${relative}`;
}

function relativePath(name: string): string {
  return name === '.' ? '' : name.slice(2);
}

function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
