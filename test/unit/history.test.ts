/**
 * A bottle's history: the record format of its entries, the pruning rules (keep, pinned, the newest
 * never), deleting the newest or an entry, labels, and a crash at any step of making the newest
 * entry of the history the newest snapshot again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeBottles } from '../../src/core/bottles';
import { newHistoryId, pruneHistory, snapshotsToPrune } from '../../src/core/history';
import { dropLayersOf, LayerStore } from '../../src/core/layerStore';
import { HISTORY_ID, InstallUnfinishedError, JOURNAL_NAME, realInstallFs, settleInstall, type InstallFs } from '../../src/core/install';
import { deleteSnapshot, labelSnapshot } from '../../src/core/snapshots';
import { StateStore, type Snapshot, type SnapshotRecord } from '../../src/core/state';

const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');

describe('snapshot history', () => {
  let root: string;
  let store: StateStore;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'history test '));
    store = new StateStore(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Freezes `content` into bottle api as the keep step does: staged, recorded, installed. */
  async function freeze(content: string, minute: number, layers: string[] = []): Promise<void> {
    const staging = await store.makeStaging('api');
    writeFileSync(join(staging, 'committed-smolmachine.smolmachine'), content);
    writeFileSync(join(staging, 'committed-smolmachine'), `launcher ${content}`);
    const record: SnapshotRecord = {
      version: 1, slug: 'api', machine: 'bot-bottle-api', createdAt: new Date(Date.UTC(2026, 10, 29, 10, minute)).toISOString(),
      sidecar: store.sidecarPath('api'), launcher: store.launcherPath('api'), sidecarBytes: content.length, sha256: sha256(content),
      tools: { smolvm: '1.9.3' }, steps: [], machineSettings: { network: false, cpus: 2, labels: {}, notCarried: [] },
      ...(layers.length ? { layers: layers.map((digest) => ({ digest, diffId: digest, size: 1, mediaType: 'application/vnd.oci.image.layer.v1.tar', role: 'full' as const })) } : {}),
    };
    await store.replaceSnapshot(record, { sidecar: join(staging, 'committed-smolmachine.smolmachine'), launcher: join(staging, 'committed-smolmachine') });
    rmSync(staging, { recursive: true, force: true });
  }
  const contentOf = (snapshot: Snapshot | undefined) => snapshot && readFileSync(snapshot.sidecar, 'utf8');
  const historyContents = async () => (await store.readHistory('api')).map(contentOf);


  describe("the layers of snapshots that are gone", () => {
    const digest = (name: string) => `sha256:${sha256(name)}`;
    const layerFile = (name: string) => new LayerStore(root).pathOf(digest(name));
    async function putLayer(name: string): Promise<void> {
      await new LayerStore(root).putBytes(Buffer.from(name), digest(name));
    }

    it('are removed once no snapshot of any bottle refers to them, and only those', async () => {
      for (const name of ['base', 'delta-1', 'delta-2', 'unrecorded']) await putLayer(name);
      await freeze('one', 1, [digest('base'), digest('delta-1')]);
      await freeze('two', 2, [digest('base'), digest('delta-2')]);
      await freeze('three', 3, [digest('base')]);
      const pruned = await pruneHistory(store, 'api', 2);
      assert.deepEqual(pruned.map((entry) => entry.record?.sha256), [sha256('one')], 'the oldest entry went');
      assert.deepEqual(await dropLayersOf(store, pruned.map((entry) => entry.record)), [digest('delta-1')]);
      assert.ok(!existsSync(layerFile('delta-1')));
      for (const name of ['base', 'delta-2', 'unrecorded']) assert.ok(existsSync(layerFile(name)), `${name} is kept`);

      const [entry] = await store.readHistory('api');
      await deleteSnapshot(store, entry);
      assert.ok(!existsSync(layerFile('delta-2')), 'deleting a snapshot drops its own layers');
      assert.ok(existsSync(layerFile('base')), 'the newest still uses base');
      assert.ok(existsSync(layerFile('unrecorded')), 'a layer no gone snapshot named is never touched (a freeze may be putting it)');
    });
  });

  describe('the record format', () => {
    it('keeps the snapshot a freeze replaces as history/<time>-<random>/ with its own three files, record and modes unchanged', async () => {
      await freeze('one', 1);
      await freeze('two', 2);
      assert.deepEqual(readdirSync(store.bottleDir('api')).filter((n) => !n.startsWith('.')).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'history', 'snapshot.json']);
      const [id] = readdirSync(store.historyDir('api'));
      assert.match(id, /^20261129T100100Z-[0-9a-f]{6}$/, 'named by the time of the snapshot it holds');
      assert.ok(HISTORY_ID.test(id));
      const entry = join(store.historyDir('api'), id);
      assert.deepEqual(readdirSync(entry).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json']);
      const record = JSON.parse(readFileSync(join(entry, 'snapshot.json'), 'utf8')) as SnapshotRecord;
      assert.equal(record.sha256, sha256('one'));
      assert.deepEqual(record.tools, { smolvm: '1.9.3' });
      assert.deepEqual(record.machineSettings, { network: false, cpus: 2, labels: {}, notCarried: [] });
      assert.equal(statSync(entry).mode & 0o777, 0o700);
      assert.equal(statSync(join(entry, 'committed-smolmachine')).mode & 0o777, 0o700);
      assert.equal(statSync(join(entry, 'snapshot.json')).mode & 0o777, 0o600);
      const [kept] = await store.readHistory('api');
      assert.equal(kept.historyId, id);
      assert.equal(kept.createdAt.toISOString(), '2026-11-29T10:01:00.000Z');
      assert.equal(contentOf(await store.readSnapshot('api')), 'two');
      assert.equal((await store.readSnapshot('api'))?.historyId, undefined, 'the newest is at the seed paths, not in the history');
    });

    it('lists the history newest first, and the disk used counts every snapshot file', async () => {
      for (const [i, content] of ['one', 'two', 'three', 'four'].entries()) await freeze(content, i);
      assert.deepEqual(await historyContents(), ['three', 'two', 'one']);
      const files = [store.bottleDir('api'), ...readdirSync(store.historyDir('api')).map((id) => join(store.historyDir('api'), id))]
        .flatMap((dir) => readdirSync(dir).filter((n) => n.startsWith('committed') || n === 'snapshot.json').map((n) => statSync(join(dir, n)).size));
      assert.equal(files.length, 12);
      assert.equal(await store.diskUsage('api'), files.reduce((a, b) => a + b, 0));
    });

    it('a history id sorts by time and differs within one second', () => {
      const at = new Date('2026-11-29T18:27:05.123Z');
      assert.match(newHistoryId(at), /^20261129T182705Z-[0-9a-f]{6}$/);
      assert.notEqual(newHistoryId(at), newHistoryId(at));
      assert.ok(newHistoryId(new Date('2026-01-01T00:00:00Z')) < newHistoryId(new Date('2026-12-01T00:00:00Z')));
    });

    it('discovery gives each bottle its history and the bytes it takes', () => {
      const older = { slug: 'api', sidecar: '/h/s', launcher: '/h/l', sizeBytes: 5, createdAt: new Date(0), historyId: '20261129T100000Z-aaaaaa' };
      const [bottle] = mergeBottles([], [], 'bot-bottle-', [], [], [{ slug: 'api', history: [older], bytes: 42 }]);
      assert.equal(bottle.slug, 'api');
      assert.deepEqual(bottle.history, [older]);
      assert.equal(bottle.snapshotBytes, 42);
      assert.deepEqual(mergeBottles([], [], 'bot-bottle-', [], [], [{ slug: 'gone', history: [], bytes: 0 }]), [], 'an empty state folder is no bottle');
    });
  });

  describe('pruning', () => {
    const entry = (minute: number, pinned = false): Snapshot => ({
      slug: 'api', sidecar: `/h/${minute}`, launcher: `/h/${minute}l`, sizeBytes: 1, createdAt: new Date(Date.UTC(2026, 0, 1, 0, minute)),
      historyId: `m${minute}`, record: pinned ? ({ pinned: true } as SnapshotRecord) : undefined,
    });
    const ids = (list: Snapshot[]) => list.map((s) => s.historyId);

    it('keep counts the newest: with keep 3 and four older snapshots, the two oldest go', () => {
      assert.deepEqual(ids(snapshotsToPrune([entry(4), entry(1), entry(3), entry(2)], 3)), ['m1', 'm2']);
    });

    it('a pinned snapshot is never pruned; the next oldest goes in its place', () => {
      assert.deepEqual(ids(snapshotsToPrune([entry(1, true), entry(2), entry(3)], 2)), ['m2', 'm3']);
      assert.deepEqual(ids(snapshotsToPrune([entry(1, true), entry(2, true)], 1)), [], 'pinned ones may leave more than keep');
    });

    it('keep 0 keeps all; keep 1 keeps only the newest and the pinned', () => {
      assert.deepEqual(ids(snapshotsToPrune([entry(1), entry(2)], 0)), []);
      assert.deepEqual(ids(snapshotsToPrune([entry(1), entry(2, true), entry(3)], 1)), ['m1', 'm3']);
      assert.deepEqual(ids(snapshotsToPrune([], 1)), [], 'the newest itself is never a candidate');
    });

    it('on disk: three freezes with keep 2 and the first pinned keep the first and the newest', async () => {
      await freeze('one', 1);
      await labelSnapshot(store, (await store.readSnapshot('api'))!, { pinned: true });
      await freeze('two', 2);
      assert.deepEqual(await pruneHistory(store, 'api', 2), []);
      await freeze('three', 3);
      const pruned = await pruneHistory(store, 'api', 2);
      assert.deepEqual(pruned.map((s) => existsSync(s.sidecar)), [false], 'the pruned entry is gone from disk');
      assert.deepEqual(await historyContents(), ['one']);
      assert.equal(contentOf(await store.readSnapshot('api')), 'three');
      assert.deepEqual(readdirSync(store.historyDir('api')).length, 1, 'nothing left of the removed entry');
    });
  });

  describe('delete, rename, note, pin', () => {
    it('deleting the newest makes the newest of the history the newest, whole, and its history folder goes', async () => {
      await freeze('one', 1);
      await freeze('two', 2);
      await freeze('three', 3);
      const { newest, promoted } = await deleteSnapshot(store, 'api');
      assert.ok(promoted);
      assert.equal(contentOf(newest), 'two');
      assert.equal(readFileSync(store.launcherPath('api'), 'utf8'), 'launcher two');
      assert.equal(JSON.parse(readFileSync(store.recordPath('api'), 'utf8')).sha256, sha256('two'));
      assert.deepEqual(await historyContents(), ['one']);
      await deleteSnapshot(store, 'api');
      await deleteSnapshot(store, 'api');
      assert.equal(await store.readSnapshot('api'), undefined);
      assert.deepEqual(readdirSync(store.bottleDir('api')).filter((n) => !n.startsWith('.')), ['history']);
      assert.deepEqual(readdirSync(store.historyDir('api')), []);
    });

    it('deleting an entry of the history leaves the newest and the other entries', async () => {
      await freeze('one', 1);
      await freeze('two', 2);
      await freeze('three', 3);
      const [two] = await store.readHistory('api');
      await deleteSnapshot(store, two);
      assert.deepEqual(await historyContents(), ['one']);
      assert.equal(contentOf(await store.readSnapshot('api')), 'three');
    });

    it('names, notes and pins live in the record; an empty name or note removes it; the sha256 stays', async () => {
      await freeze('one', 1);
      await freeze('two', 2);
      const [older] = await store.readHistory('api');
      const named = await labelSnapshot(store, older, { name: 'before the refactor', note: 'tests pass', pinned: true });
      assert.equal(named.record?.name, 'before the refactor');
      const onDisk = JSON.parse(readFileSync(join(store.historyDir('api'), older.historyId!, 'snapshot.json'), 'utf8')) as SnapshotRecord;
      assert.deepEqual([onDisk.name, onDisk.note, onDisk.pinned, onDisk.sha256], ['before the refactor', 'tests pass', true, sha256('one')]);
      await labelSnapshot(store, older, { name: '  ', note: '', pinned: false });
      const cleared = JSON.parse(readFileSync(join(store.historyDir('api'), older.historyId!, 'snapshot.json'), 'utf8')) as SnapshotRecord;
      assert.deepEqual(['name', 'note', 'pinned'].filter((key) => key in cleared), []);
      const newest = await labelSnapshot(store, (await store.readSnapshot('api'))!, { note: 'the newest' });
      assert.equal((await store.readSnapshot('api'))?.record?.note, 'the newest');
      assert.equal(newest.historyId, undefined);
    });

    it('a label travels with the snapshot into the history', async () => {
      await freeze('one', 1);
      await labelSnapshot(store, (await store.readSnapshot('api'))!, { name: 'first' });
      await freeze('two', 2);
      assert.equal((await store.readHistory('api'))[0].record?.name, 'first');
      assert.equal((await store.readSnapshot('api'))?.record?.name, undefined);
    });

    it('a snapshot without a record cannot be labelled, and says why', async () => {
      await store.ensureBottleDir('api');
      writeFileSync(store.sidecarPath('api'), 'bare');
      await assert.rejects(labelSnapshot(store, (await store.readSnapshot('api'))!, { name: 'x' }), /has no record, so it cannot keep a name, a note or a pin/);
    });
  });

  describe('crashes', () => {
    /**
     * A crash before the n-th change of deleting the newest: that change and every later one fail
     * (nothing more reaches the disk, as in a crash), then recovery settles the journal.
     */
    function crashingAt(n: number): InstallFs & { count: number; crashed: boolean } {
      const fs = {
        count: 0,
        crashed: false,
        rename: (from: string, to: string) => step(() => realInstallFs.rename(from, to)),
        rm: (path: string, options: { recursive?: boolean; force?: boolean }) => step(() => realInstallFs.rm(path, options)),
        mkdir: (path: string, options: { mode: number }) => step(() => realInstallFs.mkdir(path, options)),
        writeFile: (path: string, data: string, options: { mode: number; flag?: string }) => step(() => realInstallFs.writeFile(path, data, options)),
      };
      async function step<T>(change: () => Promise<T>): Promise<T> {
        fs.count++;
        fs.crashed ||= fs.count >= n;
        if (fs.crashed) throw Object.assign(new Error('crashed (simulated)'), { code: 'EIO' });
        return change();
      }
      return fs;
    }

    /** 'newest' when three is the newest with two and one in the history; 'promoted' when two is the newest with one; else what is wrong. */
    async function state(): Promise<string> {
      const loose = readdirSync(store.bottleDir('api')).filter((n) => n.startsWith('.') && n !== '.bot-bottle.lock');
      if (loose.length) return `left ${loose.join(', ')}`;
      const newest = await store.readSnapshot('api');
      if (!newest?.record || newest.record.sha256 !== sha256(contentOf(newest)!) || readFileSync(newest.launcher, 'utf8') !== `launcher ${contentOf(newest)}`) return 'the newest is not whole';
      const layout = [contentOf(newest), ...(await historyContents())].join(',');
      if (layout === 'three,two,one') return 'newest';
      if (layout === 'two,one') return 'promoted';
      return `holds ${layout}`;
    }

    it('deleting the newest: a crash before any change, then recovery, leaves it or the promoted one, the history whole', async () => {
      await freeze('one', 1);
      await freeze('two', 2);
      await freeze('three', 3);
      const outcomes: string[] = [];
      for (let n = 1; ; n++) {
        const fs = crashingAt(n);
        await store.deleteSnapshot('api', fs).catch((error: unknown) => {
          assert.ok(error instanceof InstallUnfinishedError || /crashed \(simulated\)/.test(String(error)), String(error));
        });
        if (!fs.crashed) break;
        await store.recoverSnapshotFiles('api');
        outcomes.push(`${n}: ${await state()}`);
        if ((await state()) === 'promoted') {
          // Put three back on top for the next crash point.
          rmSync(store.bottleDir('api'), { recursive: true });
          await freeze('one', 1);
          await freeze('two', 2);
          await freeze('three', 3);
        }
      }
      assert.ok(outcomes.length >= 5, `only ${outcomes.length} crash points`);
      assert.deepEqual(outcomes.filter((o) => !/: (newest|promoted)$/.test(o)), []);
      assert.ok(outcomes.some((o) => o.endsWith('promoted')), `a crash after the commit point keeps the promotion: ${outcomes.join('; ')}`);
      assert.equal(await state(), 'promoted');
    });

    it('a journal that moves history is version 2, and one naming a history id it never makes is refused', async () => {
      await freeze('one', 1);
      const dir = store.bottleDir('api');
      writeFileSync(join(dir, JOURNAL_NAME), JSON.stringify({ version: 2, incoming: '.incoming-ab', previous: '.previous-ab', old: [], new: [], committed: true, keepPrevious: '../../etc' }));
      await assert.rejects(settleInstall(dir), /is not an install journal this version can finish/);
      writeFileSync(join(dir, JOURNAL_NAME), JSON.stringify({ version: 1, incoming: '.incoming-ab', previous: '.previous-ab', old: [], new: [], committed: true, takeFrom: '20261129T100000Z-abcdef' }));
      await assert.rejects(settleInstall(dir), /is not an install journal this version can finish/, 'version 1 never moves history');
      rmSync(join(dir, JOURNAL_NAME));
    });

    it('a history entry whose removal stopped is finished by recovery', async () => {
      await freeze('one', 1);
      await freeze('two', 2);
      const [one] = await store.readHistory('api');
      mkdirSync(join(store.historyDir('api'), `.removing-${one.historyId}`));
      writeFileSync(join(store.historyDir('api'), `.removing-${one.historyId}`, 'snapshot.json'), '{}');
      const done = await store.recoverSnapshotFiles('api');
      assert.deepEqual(done, [`finished removing the history entry ${one.historyId}`]);
      assert.deepEqual(await historyContents(), ['one']);
      assert.ok(!existsSync(join(store.historyDir('api'), `.removing-${one.historyId}`)));
    });
  });
});
