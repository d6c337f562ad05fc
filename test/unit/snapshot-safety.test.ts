/**
 * What the review of commit 4a1be2a broke, one test per case (issue rows 1, 7, 8, 9, 10; rows 2 and
 * 3 are install-crash.test.ts and lock.test.ts): the last good snapshot survives a failed import, a
 * bottle's files are private, a snapshot that cannot be checked is not resumed silently, an export
 * never replaces files unasked, and an import never blocks on a file that is not a regular one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifySnapshotIntegrity } from '../../src/core/resume';
import { exportSnapshot, importSnapshot, smolmachineProblem } from '../../src/core/snapshots';
import { StateStore, type Snapshot } from '../../src/core/state';

const footer = () => Buffer.concat([Buffer.from('SMOLPACK'), Buffer.alloc(56)]);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const OLD = { sidecar: Buffer.concat([Buffer.alloc(300, 1), footer()]), launcher: Buffer.from('#!/bin/sh\necho old\n') };
const NEW = { sidecar: Buffer.concat([Buffer.alloc(500, 2), footer()]), launcher: Buffer.from('#!/bin/sh\necho new\n') };

describe('what the review of 4a1be2a broke', () => {
  let scratch: string;
  let store: StateStore;
  const fifos: string[] = [];
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'snapshot safety '));
    store = new StateStore(join(scratch, 'state'));
  });
  afterEach(() => {
    // A reader stuck opening a FIFO (the bug) is let go by opening its other end.
    for (const fifo of fifos.splice(0)) {
      try {
        closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      } catch {
        // no reader: nothing to let go
      }
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Bottle `slug` holding OLD, whole, with its record. */
  function bottleWithOld(slug: string): string {
    const dir = join(scratch, 'state', slug);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'committed-smolmachine.smolmachine'), OLD.sidecar);
    writeFileSync(join(dir, 'committed-smolmachine'), OLD.launcher);
    writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({
      version: 1, slug, machine: `bot-bottle-${slug}`, createdAt: '2026-11-29T10:00:00.000Z', sidecar: join(dir, 'committed-smolmachine.smolmachine'),
      launcher: join(dir, 'committed-smolmachine'), sidecarBytes: OLD.sidecar.length, sha256: sha256(OLD.sidecar), tools: {}, steps: [],
    }));
    return dir;
  }

  function assertHoldsOld(dir: string): void {
    assert.deepEqual(readdirSync(dir).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json']);
    assert.deepEqual(readFileSync(join(dir, 'committed-smolmachine.smolmachine')), OLD.sidecar);
    assert.deepEqual(readFileSync(join(dir, 'committed-smolmachine')), OLD.launcher);
    assert.equal(JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')).sha256, sha256(OLD.sidecar));
  }

  /** An exported pair: `<name>.smolmachine` with NEW's sidecar; the launcher is `launcher(path)`'s to make. */
  function exported(name: string, launcher?: (path: string) => void): string {
    const dir = join(scratch, 'exports');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.smolmachine`), NEW.sidecar);
    launcher?.(join(dir, name));
    return join(dir, `${name}.smolmachine`);
  }

  function fifo(path: string): string {
    execFileSync('mkfifo', [path]);
    fifos.push(path);
    return path;
  }

  describe('1. import keeps the last good snapshot', () => {
    it('import: a launcher copy that fails (EISDIR) keeps the last good snapshot', async () => {
      const dir = bottleWithOld('api');
      const source = exported('api', (path) => mkdirSync(path));
      const error = await importSnapshot(store, source, 'api', true).then(() => undefined, (e: Error) => e);
      assertHoldsOld(dir);
      assert.equal(error?.message, `The launcher beside ${source}, ${source.slice(0, -'.smolmachine'.length)}, is a folder, not a launcher file. Nothing was imported.`);
    });

    it('import: the same input without Replace leaves no half-imported bottle, as its message says', async () => {
      const source = exported('fresh', (path) => mkdirSync(path));
      const error = await importSnapshot(store, source, 'fresh').then(() => undefined, (e: Error) => e);
      assert.equal(await store.readSnapshot('fresh'), undefined, 'no snapshot');
      const dir = join(scratch, 'state', 'fresh');
      assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], 'no file of a snapshot');
      assert.match(error?.message ?? 'accepted', /Nothing was imported\.$/);
    });

    it('import: with Replace, the new sidecar, launcher and record arrive together', async () => {
      const dir = bottleWithOld('api');
      const source = exported('api', (path) => writeFileSync(path, NEW.launcher));
      const snapshot = await importSnapshot(store, source, 'api', true);
      assert.deepEqual(readFileSync(snapshot.sidecar), NEW.sidecar);
      assert.deepEqual(readFileSync(snapshot.launcher), NEW.launcher);
      assert.equal(snapshot.record?.sha256, sha256(NEW.sidecar));
      assert.deepEqual(readdirSync(dir).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'history', 'snapshot.json']);
      const [kept] = await store.readHistory('api');
      assert.deepEqual(readFileSync(kept.sidecar), OLD.sidecar, 'the snapshot it replaced is the newest of the history');
    });

    it('import: a sidecar imported without a launcher does not keep the old launcher beside it', async () => {
      const dir = bottleWithOld('api');
      const snapshot = await importSnapshot(store, exported('alone'), 'api', true);
      assert.deepEqual(readFileSync(snapshot.sidecar), NEW.sidecar);
      assert.deepEqual(readdirSync(dir).sort(), ['committed-smolmachine.smolmachine', 'history', 'snapshot.json']);
    });
  });

  describe('7. a bottle is its owner’s only', () => {
    it('state: bottle folders are 0700, the sidecar and record 0600 and the launcher 0700, after an import', async () => {
      const snapshot = await importSnapshot(store, exported('api', (path) => writeFileSync(path, NEW.launcher, { mode: 0o755 })), 'api');
      const mode = (path: string) => statSync(path).mode & 0o777;
      assert.equal(mode(store.bottleDir('api')), 0o700);
      assert.equal(mode(snapshot.sidecar), 0o600);
      assert.equal(mode(store.recordPath('api')), 0o600);
      assert.equal(mode(snapshot.launcher), 0o700);
    });

    it('state: the files a freeze packed (0644, 0755) are made private when kept', async () => {
      await store.ensureBottleDir('api');
      const staging = join(store.bottleDir('api'), '.incoming-pack');
      mkdirSync(staging, { mode: 0o755 });
      writeFileSync(join(staging, 'committed-smolmachine.smolmachine'), NEW.sidecar, { mode: 0o644 });
      writeFileSync(join(staging, 'committed-smolmachine'), NEW.launcher, { mode: 0o755 });
      await store.replaceSnapshot({
        version: 1, slug: 'api', machine: 'bot-bottle-api', createdAt: '2026-11-29T10:00:00.000Z', sidecar: store.sidecarPath('api'), launcher: store.launcherPath('api'),
        sidecarBytes: NEW.sidecar.length, sha256: sha256(NEW.sidecar), tools: {}, steps: [],
      }, { sidecar: join(staging, 'committed-smolmachine.smolmachine'), launcher: join(staging, 'committed-smolmachine') });
      const mode = (path: string) => statSync(path).mode & 0o777;
      assert.deepEqual([mode(store.sidecarPath('api')), mode(store.launcherPath('api')), mode(store.recordPath('api'))], [0o600, 0o700, 0o600]);
    });

    it('state: a bottle folder an older version made 0755 (where the docker path keeps its image tarball) is made 0700', async () => {
      const dir = join(scratch, 'state', 'api');
      mkdirSync(dir, { recursive: true });
      chmodSync(dir, 0o755);
      assert.equal(await store.ensureBottleDir('api'), dir);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
    });
  });

  describe('8. resume checks the snapshot or asks', () => {
    it('resume: a snapshot without a record is refused unless the user confirms (allowUnverified)', async () => {
      const dir = bottleWithOld('api');
      rmSync(join(dir, 'snapshot.json'));
      const snapshot = (await store.readSnapshot('api'))!;
      await assert.rejects(verifySnapshotIntegrity(snapshot), (e: Error) => {
        assert.equal(e.name, 'UnverifiedSnapshotError');
        assert.equal(e.message, `The snapshot ${snapshot.sidecar} has no record, so it cannot be checked against what was frozen: it may be damaged or changed. Resume it only if you trust where it came from.`);
        return true;
      });
      await verifySnapshotIntegrity(snapshot, undefined, true);
    });

    it('resume: a record from a newer version is refused unless the user confirms (allowUnverified)', async () => {
      const dir = bottleWithOld('api');
      const record = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8'));
      writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ ...record, version: 2 }));
      const snapshot = (await store.readSnapshot('api'))!;
      await assert.rejects(verifySnapshotIntegrity(snapshot), (e: Error) => {
        assert.equal(e.name, 'UnverifiedSnapshotError');
        assert.match(e.message, /^The snapshot .+ has a record written by a newer version of Bot Bottle \(record version 2\), so it cannot be checked/);
        return true;
      });
      await verifySnapshotIntegrity(snapshot, undefined, true);
    });

    it('resume: a file that is no .smolmachine is refused even when the user confirms', async () => {
      const dir = bottleWithOld('api');
      rmSync(join(dir, 'snapshot.json'));
      writeFileSync(join(dir, 'committed-smolmachine.smolmachine'), 'not a machine\n'.repeat(20));
      const snapshot = (await store.readSnapshot('api'))!;
      await assert.rejects(verifySnapshotIntegrity(snapshot, undefined, true), /is not a \.smolmachine file \(its footer has no SMOLPACK magic\)\. It was not used\.$/);
    });

    it('resume: a snapshot whose record matches passes the check', async () => {
      bottleWithOld('api');
      await verifySnapshotIntegrity((await store.readSnapshot('api'))!);
    });
  });

  describe('9. export asks before replacing', () => {
    async function snapshotOfOld(): Promise<Snapshot> {
      bottleWithOld('api');
      return (await store.readSnapshot('api'))!;
    }

    it('export: a file with the launcher name beside the chosen target is not overwritten without asking', async () => {
      const snapshot = await snapshotOfOld();
      const dir = join(scratch, 'out');
      mkdirSync(dir);
      writeFileSync(join(dir, 'copy'), 'my own notes\n');
      await assert.rejects(exportSnapshot(snapshot, join(dir, 'copy.smolmachine')), (e: Error) => {
        assert.equal(e.name, 'ExportTargetExistsError');
        assert.equal(e.message, `${join(dir, 'copy')} already exists. Export under another name, or replace it. Nothing was exported.`);
        assert.deepEqual((e as Error & { files: string[] }).files, [join(dir, 'copy')]);
        return true;
      });
      assert.deepEqual(readdirSync(dir), ['copy'], 'nothing was written');
      assert.equal(readFileSync(join(dir, 'copy'), 'utf8'), 'my own notes\n');
    });

    it('export: with overwrite (the user confirmed), both files are replaced', async () => {
      const snapshot = await snapshotOfOld();
      const dir = join(scratch, 'out');
      mkdirSync(dir);
      writeFileSync(join(dir, 'copy'), 'my own notes\n');
      writeFileSync(join(dir, 'copy.smolmachine'), 'an older export\n');
      await assert.rejects(exportSnapshot(snapshot, join(dir, 'copy')), /^ExportTargetExistsError: .+\/copy\.smolmachine and .+\/copy already exist\. Export under another name, or replace them\. Nothing was exported\.$/);
      const files = await exportSnapshot(snapshot, join(dir, 'copy'), { overwrite: true });
      assert.deepEqual(readFileSync(files.sidecar), OLD.sidecar);
      assert.deepEqual(readFileSync(files.launcher!), OLD.launcher);
      assert.deepEqual(readdirSync(dir).sort(), ['copy', 'copy.smolmachine'], 'no temporary file is left');
    });

    it('export: a folder at a target name is refused even with overwrite', async () => {
      const snapshot = await snapshotOfOld();
      const dir = join(scratch, 'out');
      mkdirSync(join(dir, 'copy'), { recursive: true });
      await assert.rejects(exportSnapshot(snapshot, join(dir, 'copy'), { overwrite: true }), (e: Error) => e.message === `${join(dir, 'copy')} is a folder: choose another name to export to. Nothing was exported.`);
      assert.deepEqual(readdirSync(dir), ['copy']);
    });
  });

  describe('10. import reads regular files only', () => {
    it('import: a FIFO is refused at once, never opened for reading', async () => {
      const path = fifo(join(scratch, 'pipe.smolmachine'));
      await assert.rejects(importSnapshot(store, path, 'piped'), (e: Error) => e.message === `${path} is a named pipe (FIFO), not a .smolmachine file. Nothing was imported.`);
      assert.ok(!existsSync(join(scratch, 'state', 'piped')), 'no state folder was made');
    });

    it('import: a FIFO where the launcher would be read is refused at once', async () => {
      const dir = bottleWithOld('api');
      const source = exported('api', (path) => fifo(path));
      await assert.rejects(importSnapshot(store, source, 'api', true), (e: Error) => e.message === `The launcher beside ${source}, ${source.slice(0, -'.smolmachine'.length)}, is a named pipe (FIFO), not a launcher file. Nothing was imported.`);
      assertHoldsOld(dir);
    });

    it('import: a device is refused at once', async () => {
      await assert.rejects(importSnapshot(store, '/dev/zero', 'zero'), (e: Error) => e.message === '/dev/zero is a device, not a .smolmachine file. Nothing was imported.');
    });

    it('resume: a FIFO in place of the sidecar is reported, not read', async () => {
      assert.equal(await smolmachineProblem(fifo(join(scratch, 'sidecar.smolmachine'))), 'is a named pipe (FIFO), not a .smolmachine file');
    });
  });
});
