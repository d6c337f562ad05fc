/**
 * Property: over several freezes of a tree changed at random, the layers an incremental freeze
 * stacks (the full layer, then per freeze the whiteouts and the delta), flattened into the one
 * layer the pack is served, unpack to exactly the tree a full freeze of the same state unpacks to:
 * content, type, mode, owner, file mtime, link targets, hard links.
 *
 * Real parts: the freeze's own listing command (sh, date, GNU find), its tar commands and its
 * flattening, run on a host folder instead of in a VM; GNU tar unpacks. Seeded and reproducible:
 * the seed is printed; BOT_BOTTLE_PROPERTY_SEED replays one, BOT_BOTTLE_PROPERTY_RUNS runs more.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lchownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffListings, filesFromList, listingCommand, parseListing, whiteoutMembers, type Listing } from '../../src/core/freeze/delta';
import { archiveCommand } from '../../src/core/freeze/steps';
import { emptyFilesTar } from '../../src/core/oci/emptyTar';
import { flattenLayers } from '../../src/core/oci/flatten';

const RUNS = Number(process.env.BOT_BOTTLE_PROPERTY_RUNS ?? 3);
const FREEZES = 5;
const CHANGES_PER_FREEZE = 12;
const NAMES = ['a', 'b', 'c d', 'line\nbreak', 'ünï', 'd', '-dash'];

/** mulberry32: small, seeded, reproducible. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class World {
  private serial = 0;
  constructor(readonly rnd: () => number, readonly root: string) {}
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)];
  }
  /** Every path under the root (relative), folders too. */
  paths(): { files: string[]; dirs: string[]; all: string[] } {
    const files: string[] = [];
    const dirs: string[] = [];
    const walk = (rel: string) => {
      for (const name of readdirSync(join(this.root, rel))) {
        const path = rel ? `${rel}/${name}` : name;
        const info = lstatSync(join(this.root, path));
        if (info.isDirectory()) {
          dirs.push(path);
          walk(path);
        } else files.push(path);
      }
    };
    walk('');
    return { files, dirs, all: [...files, ...dirs] };
  }
  /** A folder to put something in: the root or an existing folder. */
  dir(): string {
    return this.pick(['', ...this.paths().dirs]);
  }
  newPath(): string {
    const dir = this.dir();
    return `${dir ? `${dir}/` : ''}${this.pick(NAMES)}${this.serial++}`;
  }
  content(): string {
    return `content ${this.serial++} `.repeat(1 + Math.floor(this.rnd() * 40));
  }
  full(path: string): string {
    return join(this.root, path);
  }
}

type Change = (w: World) => string | undefined;

const CHANGES: Record<string, Change> = {
  newFile: (w) => {
    const p = w.newPath();
    writeFileSync(w.full(p), w.content());
    return p;
  },
  newDir: (w) => {
    const p = w.newPath();
    mkdirSync(w.full(p));
    return p;
  },
  rewrite: (w) => onRegularFile(w, (p) => writeFileSync(w.full(p), w.content())),
  sameSizeRewrite: (w) => onRegularFile(w, (p) => {
    const old = readFileSync(w.full(p));
    writeFileSync(w.full(p), Buffer.from(old.map((byte) => byte ^ 1)));
  }),
  remove: (w) => onAny(w, (p) => rmSync(w.full(p), { recursive: true, force: true })),
  rename: (w) => onAny(w, (p) => {
    const target = w.newPath();
    if (target.startsWith(`${p}/`)) return;
    renameSync(w.full(p), w.full(target));
  }),
  chmod: (w) => onAny(w, (p) => {
    if (!lstatSync(w.full(p)).isSymbolicLink()) chmodSync(w.full(p), w.pick([0o700, 0o755, 0o640, 0o600, 0o4755]));
  }),
  chown: (w) => onAny(w, (p) => lchownSync(w.full(p), w.pick([0, 1000, 501]), w.pick([0, 1000, 20]))),
  symlink: (w) => {
    const p = w.newPath();
    symlinkSync(w.pick(['a0', 'c d/..', '/nonexistent/bot-bottle-property', 'dangling\ntarget']), w.full(p));
    return p;
  },
  hardLink: (w) => onRegularFile(w, (p) => linkSync(w.full(p), w.full(w.newPath()))),
  dirToFile: (w) => onDir(w, (p) => {
    rmSync(w.full(p), { recursive: true });
    writeFileSync(w.full(p), w.content());
  }),
  fileToDir: (w) => onRegularFile(w, (p) => {
    rmSync(w.full(p));
    mkdirSync(w.full(p));
    writeFileSync(w.full(`${p}/inside`), w.content());
  }),
  replaceDir: (w) => onDir(w, (p) => {
    rmSync(w.full(p), { recursive: true });
    mkdirSync(w.full(p));
    writeFileSync(w.full(`${p}/${w.pick(NAMES)}`), w.content());
  }),
};

/**
 * Only regular files are written to: a write through a symlink would land wherever it points.
 * (Every change here acts on the link itself or on a regular file, never through a link.)
 */
function onRegularFile(w: World, act: (path: string) => void): string | undefined {
  const files = w.paths().files.filter((p) => lstatSync(w.full(p)).isFile());
  if (files.length === 0) return undefined;
  const p = w.pick(files);
  act(p);
  return p;
}

function onDir(w: World, act: (path: string) => void): string | undefined {
  const dirs = w.paths().dirs;
  if (dirs.length === 0) return undefined;
  const p = w.pick(dirs);
  act(p);
  return p;
}

function onAny(w: World, act: (path: string) => void): string | undefined {
  const all = w.paths().all;
  if (all.length === 0) return undefined;
  const p = w.pick(all);
  act(p);
  return p;
}

/** Every path with what a resume must give back; hard links as the group of names of each inode. */
function treeOf(root: string): string[] {
  const rows: string[] = [];
  const inodes = new Map<number, string[]>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const info = lstatSync(full);
      const owner = `${(info.mode & 0o7777).toString(8)} ${info.uid}:${info.gid}`;
      if (info.isDirectory()) {
        rows.push(`dir ${JSON.stringify(path)} ${owner}`);
        walk(path);
      } else if (info.isSymbolicLink()) rows.push(`link ${JSON.stringify(path)} -> ${JSON.stringify(readlinkSync(full))} ${info.uid}:${info.gid}`);
      else {
        rows.push(`file ${JSON.stringify(path)} ${owner} ${createHash('sha256').update(readFileSync(full)).digest('hex').slice(0, 16)} ${Math.floor(info.mtimeMs / 1000)}`);
        if (info.nlink > 1) inodes.set(info.ino, [...(inodes.get(info.ino) ?? []), path]);
      }
    }
  };
  walk('');
  for (const names of inodes.values()) rows.push(`hard links ${JSON.stringify(names.sort())}`);
  return rows;
}

function list(live: string, scratch: string): Listing {
  const file = join(scratch, 'listing');
  const [command, ...args] = listingCommand(file, live);
  execFileSync(command, args);
  return parseListing(readFileSync(file));
}

function tar(command: string[]): void {
  const [bin, ...args] = command;
  execFileSync(bin, args);
}

function unpack(layer: string, into: string): void {
  rmSync(into, { recursive: true, force: true });
  mkdirSync(into);
  execFileSync('tar', ['--extract', '--numeric-owner', '--preserve-permissions', `--file=${layer}`, `--directory=${into}`]);
}

async function runSeed(seed: number, scratch: string): Promise<void> {
  const live = join(scratch, 'live');
  mkdirSync(live);
  const w = new World(random(seed), live);
  for (let i = 0; i < 10; i++) CHANGES[w.pick(['newFile', 'newDir', 'symlink', 'hardLink'])](w);
  const base = join(scratch, 'base.tar');
  let previous = list(live, scratch);
  tar(archiveCommand({ archive: base, format: 'none', root: live }));
  const layers = [base];
  const history: string[] = [];
  for (let freeze = 1; freeze <= FREEZES; freeze++) {
    for (let i = 0; i < CHANGES_PER_FREEZE; i++) {
      const kind = w.pick(Object.keys(CHANGES));
      history.push(`${freeze}: ${kind} ${JSON.stringify(CHANGES[kind](w))}`);
    }
    const current = list(live, scratch);
    const delta = diffListings(previous, current, { racySeconds: 0 });
    const members = whiteoutMembers(delta);
    if (members.length > 0) {
      const whiteouts = join(scratch, `whiteouts-${freeze}.tar`);
      writeFileSync(whiteouts, emptyFilesTar(members));
      layers.push(whiteouts);
    }
    const filesList = join(scratch, `files-${freeze}`);
    writeFileSync(filesList, filesFromList(delta.changed));
    const deltaTar = join(scratch, `delta-${freeze}.tar`);
    tar(archiveCommand({ archive: deltaTar, format: 'none', root: live, filesFrom: filesList }));
    layers.push(deltaTar);
    const fullTar = join(scratch, `full-${freeze}.tar`);
    tar(archiveCommand({ archive: fullTar, format: 'none', root: live }));
    const flat = join(scratch, `flat-${freeze}.tar`);
    await flattenLayers(layers.map((file) => ({ file, compression: 'none' as const })), flat, { keep: (name) => current.entries.has(name) });
    unpack(flat, join(scratch, 'incremental'));
    unpack(fullTar, join(scratch, 'full'));
    assert.deepEqual(treeOf(join(scratch, 'incremental')), treeOf(join(scratch, 'full')), `seed ${seed}, freeze ${freeze}, after:\n${history.join('\n')}`);
    assert.deepEqual(treeOf(join(scratch, 'full')), treeOf(live), `seed ${seed}: the full freeze itself misses something`);
    previous = current;
  }
}

describe('incremental freeze, property: stacked deltas unpack to what a full freeze unpacks to', function () {
  this.timeout(60_000);
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'bot-bottle-property-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it(`holds over ${RUNS} random histories of ${FREEZES} freezes (new, changed, deleted, renamed, chmod/chown only, symlinks, hard links, dirs replaced)`, async () => {
    assert.equal(process.getuid?.(), 0, 'this test changes owners (chown) and must run as root, as the stand-in does');
    const first = Number(process.env.BOT_BOTTLE_PROPERTY_SEED ?? Date.now() % 1_000_000);
    for (let run = 0; run < RUNS; run++) {
      const seed = first + run;
      console.log(`      property seed ${seed} (replay: BOT_BOTTLE_PROPERTY_SEED=${seed} BOT_BOTTLE_PROPERTY_RUNS=1)`);
      const dir = join(scratch, String(seed));
      mkdirSync(dir);
      await runSeed(seed, dir);
    }
  });
});
