/**
 * The parts of an incremental freeze that decide and keep: when the last listing can be trusted
 * (else a full freeze, saying why), the thresholds that squash to one layer, the layer store and
 * its pruning, and the whiteout tar that GNU tar must read back name for name.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FreezeState } from '../../src/core/freeze/context';
import { listingCommand, NO_GNU_FIND_EXIT, parseListing, serializeListing, type Listing, type ListedEntry } from '../../src/core/freeze/delta';
import { MAX_DELTAS, planDelta } from '../../src/core/freeze/incremental';
import { LayerStore, layersReferencedBy } from '../../src/core/layerStore';
import { findOnPath } from '../../src/core/executables';
import { archiveCommand } from '../../src/core/freeze/steps';
import { digestGrowingLayer, digestLayer } from '../../src/core/oci/layer';
import { createRunner } from '../../src/core/run';
import { MemoryLog } from '../support/memoryLog';
import { emptyFilesTar } from '../../src/core/oci/emptyTar';
import { memberNames } from '../../src/core/oci/flatten';
import { LISTING_NAME, RECORD_NAME, SIDECAR_NAME, StateStore, type LayerRecord, type SnapshotRecord } from '../../src/core/state';

const MACHINE = 'bot-bottle-inc';
const CREATED = '2026-11-30T06:00:00.000Z';

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const entry = (inode: string, ctime = '100.0'): ListedEntry => ({ type: 'f', device: '1', inode, links: 1, mode: '644', uid: '0', gid: '0', size: '1', mtime: '100.0', ctime, target: '' });
const dirEntry = (inode: string): ListedEntry => ({ ...entry(inode), type: 'd', mode: '755' });

describe('incremental freeze: planning and the layer store', () => {
  let root: string;
  let store: StateStore;
  let layers: LayerStore;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'bot-bottle-incremental-'));
    store = new StateStore(join(root, 'bottles'));
    layers = new LayerStore(store.root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const state = (overrides: Partial<FreezeState> = {}) =>
    ({ slug: 'inc', machine: MACHINE, machineCreatedAt: CREATED, store, layerStore: layers, fullRequested: false, ...overrides }) as FreezeState;

  const listing = (files: Record<string, ListedEntry>): Listing => ({ listedAt: 1000, entries: new Map([['.', dirEntry('2')], ...Object.entries(files)]) });

  async function storedLayer(content: string, role: LayerRecord['role']): Promise<LayerRecord> {
    const digest = `sha256:${sha(content)}`;
    await layers.putBytes(Buffer.from(content), digest);
    return { digest, diffId: digest, size: content.length, mediaType: 'application/vnd.oci.image.layer.v1.tar', role };
  }

  /** A last snapshot as a native freeze keeps it: sidecar, record, listing. */
  async function lastSnapshot(record: Partial<SnapshotRecord>, kept: Listing = listing({ './a': entry('10') })): Promise<void> {
    const dir = await store.ensureBottleDir('inc');
    const listingBytes = gzipSync(serializeListing(kept));
    writeFileSync(join(dir, SIDECAR_NAME), 'sidecar');
    writeFileSync(join(dir, LISTING_NAME), listingBytes);
    const full: SnapshotRecord = {
      version: 1, slug: 'inc', machine: MACHINE, createdAt: CREATED, sidecar: '', launcher: '', sidecarBytes: 7, sha256: sha('sidecar'),
      imageBuilder: 'native', tools: {}, steps: [],
      layers: [await storedLayer('full layer '.repeat(100), 'full')],
      listing: { file: LISTING_NAME, sha256: sha(listingBytes), machine: MACHINE, machineCreatedAt: CREATED, entries: kept.entries.size },
      ...record,
    };
    writeFileSync(join(dir, RECORD_NAME), JSON.stringify(full));
  }

  const reasonOf = async (s: FreezeState, current = listing({ './a': entry('10') })) => {
    const plan = await planDelta(s, current);
    return 'reason' in plan ? plan.reason : 'delta';
  };

  it('makes a delta of what changed when the last listing is this machine’s and whole', async () => {
    await lastSnapshot({});
    const plan = await planDelta(state(), listing({ './a': entry('10', '200.0'), './b': entry('11') }));
    assert.ok(!('reason' in plan), JSON.stringify(plan));
    assert.deepEqual(plan.changes.changed, ['.', './a', './b']);
    assert.deepEqual(plan.below.map((l) => l.role), ['full']);
  });

  it('falls back to a full freeze, saying why, whenever the last listing cannot be trusted', async () => {
    assert.match(await reasonOf(state()), /no snapshot with a record yet/);
    await lastSnapshot({});
    assert.match(await reasonOf(state({ fullRequested: true })), /a full freeze was asked for/);
    assert.match(await reasonOf(state({ machineCreatedAt: '2026-11-30T07:00:00.000Z' })), /listed on another machine .* whose inodes say nothing/);
    assert.match(await reasonOf(state({ machineCreatedAt: undefined })), /another machine .*unknown time/);

    await lastSnapshot({ imageBuilder: 'docker' });
    assert.match(await reasonOf(state()), /has no listing of its files/);
    await lastSnapshot({ listing: undefined });
    assert.match(await reasonOf(state()), /has no listing of its files/);

    await lastSnapshot({});
    writeFileSync(join(store.bottleDir('inc'), LISTING_NAME), 'damaged');
    assert.match(await reasonOf(state()), /listing does not match its record/);
    rmSync(join(store.bottleDir('inc'), LISTING_NAME));
    assert.match(await reasonOf(state()), /listing cannot be read \(.*ENOENT/);

    await lastSnapshot({});
    rmSync(layers.dir, { recursive: true });
    assert.match(await reasonOf(state()), /layer sha256:[0-9a-f]{64} is missing from the layer store/);
  });

  it('squashes to one full layer past the thresholds: too many deltas, or deltas past half the full layer', async () => {
    const full = await storedLayer('x'.repeat(1000), 'full');
    const deltas = await Promise.all(Array.from({ length: MAX_DELTAS }, (_, i) => storedLayer(`delta ${i}`, 'delta')));
    await lastSnapshot({ layers: [full, ...deltas] });
    assert.match(await reasonOf(state()), /already has 8 deltas \(at most 8\): squashing/);
    await lastSnapshot({ layers: [full, ...deltas.slice(0, MAX_DELTAS - 1)] });
    assert.equal(await reasonOf(state()), 'delta');
    await lastSnapshot({ layers: [full, await storedLayer('y'.repeat(501), 'delta')] });
    assert.match(await reasonOf(state()), /outgrew half of the full layer/);
  });

  it('keeps each layer once by digest, and prunes only what no snapshot refers to', async () => {
    const kept = await storedLayer('kept', 'full');
    const shared = await storedLayer('shared', 'delta');
    const dropped = await storedLayer('dropped', 'delta');
    assert.equal(await layers.putBytes(Buffer.from('shared'), shared.digest), layers.pathOf(shared.digest), 'a second put of the same layer keeps the first');
    writeFileSync(join(layers.dir, `${dropped.digest.slice(7)}.abcd1234.tmp`), 'interrupted put');
    const incoming = await layers.makeIncoming();
    writeFileSync(join(incoming, 'rootfs.tar.gz'), 'a copy a crash interrupted');
    assert.ok(await layers.has(kept.digest, kept.size));
    assert.equal(await layers.has(kept.digest, kept.size + 1), false, 'a layer of another size is not the one recorded');
    const record = (ls: LayerRecord[]) => ({ layers: ls }) as SnapshotRecord;
    const referenced = layersReferencedBy([record([kept, shared]), record([shared]), undefined]);
    assert.deepEqual(await layers.prune(referenced), [dropped.digest]);
    assert.deepEqual(readdirSync(layers.dir).sort(), [kept.digest.slice(7), shared.digest.slice(7)].sort());
    assert.deepEqual(readdirSync(join(store.root, '.layers')), ['sha256'], 'an interrupted copy’s folder goes too');
    assert.throws(() => layers.pathOf('sha256:../../etc'), /is not a sha256 digest/);
  });

  it('lists nothing and exits NO_GNU_FIND_EXIT when the bottle’s find is not GNU find (BusyBox), so the freeze goes full', () => {
    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'find'), '#!/bin/sh\necho "find: unrecognized option: --version" >&2; exit 1\n', { mode: 0o755 });
    const out = join(root, 'listing');
    const [command, ...args] = listingCommand(out, root);
    const result = spawnSync(command, args, { env: { PATH: `${bin}:${process.env.PATH}` } });
    assert.equal(result.status, NO_GNU_FIND_EXIT);
    assert.equal(existsSync(out), false);
    const real = spawnSync(command, args);
    assert.equal(real.status, 0, String(real.stderr));
    assert.ok(parseListing(readFileSync(out)).entries.has('./bin/find'), 'with GNU find the same command lists the tree');
  });

  it('writes whiteouts GNU tar reads back name for name: spaces, newlines, non-UTF-8 bytes, names past 100 bytes', async () => {
    const long = `./${'deep/'.repeat(30)}.wh.${'n'.repeat(120)}`;
    const names = ['./.wh.plain', './dir/.wh.with space', './dir/.wh.line\nbreak', `./dir/.wh.${Buffer.from([0xff, 0xfe]).toString('latin1')}`, './dir/sub/.wh..wh..opq', long];
    const file = join(root, 'whiteouts.tar');
    writeFileSync(file, emptyFilesTar(names));
    const out = join(root, 'out');
    mkdirSync(out);
    execFileSync('tar', ['--extract', `--file=${file}`, `--directory=${out}`]);
    for (const name of names) assert.ok(existsSync(Buffer.from(join(out, name), 'latin1')), `GNU tar extracted ${JSON.stringify(name)}`);
    assert.deepEqual([...(await memberNames({ file, compression: 'none' }))].sort(), [...names].sort());
  });
});

describe('first freeze: the archive digested while it is written', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'bot-bottle-follow-'));
    mkdirSync(join(root, 'tree'));
    // Incompressible, so that the archive grows over many writes.
    writeFileSync(join(root, 'tree', 'noise'), randomBytes(6 << 20));
    writeFileSync(join(root, 'tree', 'text'), 'hello\n'.repeat(100_000));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const format of ['zstd', 'gzip', 'none'] as const) {
    it(`${format}: the digests of the growing file are those of one pass over the finished one`, async () => {
      const archive = join(root, `archive-${format}`);
      const run = createRunner(new MemoryLog());
      const writing = run(archiveCommand({ archive, format, root: join(root, 'tree'), filesFrom: undefined }));
      const followed = await digestGrowingLayer(archive, { compression: format, zstd: findOnPath('zstd'), until: writing });
      const whole = await digestLayer(archive, { gzip: format === 'gzip', compression: format, zstd: findOnPath('zstd') });
      assert.deepEqual(followed, whole);
      assert.equal(whole.digest, `sha256:${sha(readFileSync(archive))}`);
      const tar = format === 'none' ? readFileSync(archive) : execFileSync(format, ['-dc', archive], { maxBuffer: 1 << 26 });
      assert.equal(whole.diffId, `sha256:${sha(tar)}`);
      if (format === 'zstd') assert.deepEqual([...readFileSync(archive).subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'zstd magic: smolvm picks the decompressor by it');
    });
  }
});
