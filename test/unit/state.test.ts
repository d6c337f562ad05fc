import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BottleCatalog, mergeBottles } from '../../src/core/bottles';
import { UserError } from '../../src/core/errors';
import { realInstallFs, type InstallFs } from '../../src/core/install';
import { defaultStateRoot, sha256File, StateStore, type SnapshotRecord } from '../../src/core/state';
import type { Machine } from '../../src/core/tools/smolvm';

describe('state store', () => {
  let root: string;
  let store: StateStore;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'state test:'));
    store = new StateStore(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('uses the platform state folder by default', () => {
    assert.equal(defaultStateRoot('linux', {}, '/home/u'), '/home/u/.local/state/bot-bottle/bottles');
    assert.equal(defaultStateRoot('linux', { XDG_STATE_HOME: '/x' }, '/home/u'), '/x/bot-bottle/bottles');
    assert.equal(defaultStateRoot('darwin', {}, '/Users/u'), '/Users/u/Library/Application Support/bot-bottle/bottles');
  });

  it('finds a snapshot at the seed paths, with or without a record', async () => {
    await store.ensureBottleDir('api');
    assert.equal(await store.readSnapshot('api'), undefined);
    writeFileSync(store.sidecarPath('api'), 'SMOLPACK data');
    const bare = await store.readSnapshot('api');
    assert.equal(bare?.sizeBytes, 13);
    assert.equal(bare?.record, undefined);
    assert.equal(bare?.sidecar, join(root, 'api', 'committed-smolmachine.smolmachine'));

    const record: SnapshotRecord = {
      version: 1, slug: 'api', machine: 'bot-bottle-api', createdAt: '2026-11-29T10:00:00.000Z', sidecar: bare!.sidecar,
      launcher: bare!.launcher, sidecarBytes: 13, sha256: await sha256File(bare!.sidecar), tools: {}, steps: [],
    };
    await store.writeRecord(record);
    const full = await store.readSnapshot('api');
    assert.equal(full?.createdAt.toISOString(), '2026-11-29T10:00:00.000Z');
    assert.match(full!.record!.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(readdirSync(join(root, 'api')).sort(), ['committed-smolmachine.smolmachine', 'snapshot.json']);
  });

  describe('replacing the last good snapshot', () => {
    const recordFor = (sha256: string): SnapshotRecord => ({
      version: 1, slug: 'api', machine: 'bot-bottle-api', createdAt: '2026-11-29T10:00:00.000Z', sidecar: store.sidecarPath('api'),
      launcher: store.launcherPath('api'), sidecarBytes: 3, sha256, tools: {}, steps: [],
    });
    const stage = (content: string) => {
      const dir = join(root, 'api', '.incoming-test');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'committed-smolmachine.smolmachine'), content);
      writeFileSync(join(dir, 'committed-smolmachine'), `launcher ${content}`);
      return { sidecar: join(dir, 'committed-smolmachine.smolmachine'), launcher: join(dir, 'committed-smolmachine') };
    };
    const contents = () => ['committed-smolmachine.smolmachine', 'committed-smolmachine', 'snapshot.json'].map((n) => readFileSync(join(root, 'api', n), 'utf8'));

    it('moves the new pair and its record in', async () => {
      await store.ensureBottleDir('api');
      await store.replaceSnapshot(recordFor('a'.repeat(64)), stage('old'));
      await store.replaceSnapshot(recordFor('b'.repeat(64)), stage('new'));
      const [sidecar, launcher, record] = contents();
      assert.equal(sidecar, 'new');
      assert.equal(launcher, 'launcher new');
      assert.equal(JSON.parse(record).sha256, 'b'.repeat(64));
      assert.ok(!readdirSync(join(root, 'api')).some((n) => n.startsWith('.previous-')), 'nothing parked is left');
    });

    it('puts the last good snapshot back when a move fails halfway', async () => {
      await store.ensureBottleDir('api');
      await store.replaceSnapshot(recordFor('a'.repeat(64)), stage('old'));
      const before = contents();
      const failOnLauncher: InstallFs = {
        ...realInstallFs,
        async rename(from, to) {
          if (from.includes('.incoming-') && to.endsWith('committed-smolmachine')) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
          await realInstallFs.rename(from, to);
        },
      };
      await assert.rejects(store.replaceSnapshot(recordFor('b'.repeat(64)), stage('new'), failOnLauncher), /EIO: simulated/);
      assert.deepEqual(contents(), before);
      assert.ok(!readdirSync(join(root, 'api')).some((n) => n.startsWith('.previous-')));
    });
  });

  it('lists only folders that can be bottles', async () => {
    for (const name of ['api', 'docs', '-bad', 'has space']) mkdirSync(join(root, name));
    writeFileSync(join(root, 'stray-file'), '');
    assert.deepEqual(await store.listSlugs(), ['api', 'docs']);
    assert.deepEqual(await new StateStore(join(root, 'missing')).listSlugs(), []);
  });

  it('refuses a second lock on the same bottle and frees it on release', async () => {
    const lock = await store.lock('api', 'freeze');
    await assert.rejects(store.lock('api', 'freeze'), (e: Error) => e instanceof UserError && /A freeze of bottle "api" is already running \(in this window, since /.test(e.message));
    const other = await store.lock('docs', 'freeze');
    assert.equal((await store.lockOwner('api'))?.operation, 'freeze');
    await lock.release();
    await other.release();
    assert.equal(await store.lockOwner('api'), undefined);
    (await store.lock('api', 'resume')).release();
  });

  it('takes over a lock whose process is gone', async () => {
    await store.ensureBottleDir('api');
    const { hostname } = await import('node:os');
    writeFileSync(join(root, 'api', '.bot-bottle.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), operation: 'freeze', since: 'then' }));
    const lock = await store.lock('api', 'freeze');
    assert.equal(lock.owner.pid, process.pid);
    await lock.release();
  });
});

describe('bottle discovery', () => {
  const machine = (name: string, state = 'running'): Machine => ({ name, state });
  const snapshot = (slug: string) => ({ slug, sidecar: `/s/${slug}.smolmachine`, launcher: `/s/${slug}`, sizeBytes: 1, createdAt: new Date(0) });

  it('merges machines and snapshots by slug and ignores machines that are not bottles', () => {
    const bottles = mergeBottles([machine('bot-bottle-b'), machine('other'), machine('bot-bottle-a', 'unreachable')], [snapshot('a'), snapshot('c')], 'bot-bottle-');
    assert.deepEqual(bottles.map((b) => [b.slug, b.machine?.state, Boolean(b.snapshot)]), [
      ['a', 'unreachable', true],
      ['b', 'running', false],
      ['c', undefined, true],
    ]);
    assert.equal(bottles[2].machineName, 'bot-bottle-c');
  });

  it('never runs two discoveries at once; callers during one share the next', async () => {
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    const catalog = new BottleCatalog(async () => {
      calls++;
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 30));
      active--;
      return [];
    });
    await Promise.all([catalog.refresh(), catalog.refresh(), catalog.refresh(), catalog.refresh()]);
    assert.equal(maxActive, 1);
    assert.equal(calls, 2, 'the first call, and one queued call for all who came during it');
  });
});
