/**
 * Crashes at every point of installing a snapshot (issue rows 1 and 2): a child process installs a
 * snapshot over a bottle's last good one and dies by SIGKILL just before its n-th change to the
 * state folder, for every n until it finishes. Then recovery runs, as at the next start, and the
 * bottle must hold exactly the old snapshot or the new one, whole: sidecar, launcher and record
 * from the same freeze, the record's sha256 matching the sidecar, nothing else left in the folder.
 * With the new one, the old one must be whole in the history (one unit with the install); with
 * the old one, the history must be empty.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryLog } from '../support/memoryLog';
import { recoverInterruptedWork } from '../../src/core/recovery';
import { Services } from '../../src/core/services';
import type { FaultRun } from '../support/fs-faults-child';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CHILD = join(REPO, 'test/support/fs-faults-child.ts');
const SNAPSHOT_FILES = ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json'];

interface Version {
  name: 'old' | 'new';
  sidecar: Buffer;
  launcher: Buffer;
}

const footer = () => Buffer.concat([Buffer.from('SMOLPACK'), Buffer.alloc(56)]);
const OLD: Version = { name: 'old', sidecar: Buffer.concat([Buffer.alloc(3000, 1), footer()]), launcher: Buffer.from('#!/bin/sh\necho old\n') };
const NEW: Version = { name: 'new', sidecar: Buffer.concat([Buffer.alloc(5000, 2), footer()]), launcher: Buffer.from('#!/bin/sh\necho new\n') };
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function recordOf(version: Version, slug: string, dir: string): object {
  return {
    version: 1, slug, machine: `bot-bottle-${slug}`, createdAt: '2026-11-29T10:00:00.000Z', sidecar: join(dir, 'committed-smolmachine.smolmachine'),
    launcher: join(dir, 'committed-smolmachine'), sidecarBytes: version.sidecar.length, sha256: sha256(version.sidecar), tools: {}, steps: [],
  };
}

/** A state root with bottle `slug` holding OLD, whole, written as any version of the extension would. */
function bottleWithOld(scratch: string, slug: string): { root: string; dir: string } {
  const root = mkdtempSync(join(scratch, 'state '));
  const dir = join(root, slug);
  mkdirSync(dir);
  writeFileSync(join(dir, 'committed-smolmachine.smolmachine'), OLD.sidecar);
  writeFileSync(join(dir, 'committed-smolmachine'), OLD.launcher);
  writeFileSync(join(dir, 'snapshot.json'), JSON.stringify(recordOf(OLD, slug, dir)));
  return { root, dir };
}

/** NEW staged as a freeze stages it: a launcher and sidecar in an `.incoming-*` folder of the bottle. */
function replaceAction(dir: string, slug: string): FaultRun['action'] {
  const staging = join(dir, '.incoming-a1b2c3');
  mkdirSync(staging);
  writeFileSync(join(staging, 'committed-smolmachine.smolmachine'), NEW.sidecar);
  writeFileSync(join(staging, 'committed-smolmachine'), NEW.launcher);
  return { kind: 'replace', record: recordOf(NEW, slug, dir), staged: { sidecar: join(staging, 'committed-smolmachine.smolmachine'), launcher: join(staging, 'committed-smolmachine') } };
}

/** NEW as an exported pair outside the state folder, imported with Replace. */
function importAction(scratch: string, slug: string): FaultRun['action'] {
  const from = mkdtempSync(join(scratch, 'export '));
  writeFileSync(join(from, 'api.smolmachine'), NEW.sidecar);
  writeFileSync(join(from, 'api'), NEW.launcher);
  return { kind: 'import', source: join(from, 'api.smolmachine'), slug };
}

interface ChildOutcome {
  ops: string[];
  result?: string;
  killed: boolean;
}

function runChild(run: FaultRun): Promise<ChildOutcome> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(run)], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolvePromise, reject) => {
    child.once('error', reject);
    child.once('close', (_code, signal) => {
      const lines = out.split('\n').filter(Boolean);
      resolvePromise({ ops: lines.filter((l) => l.startsWith('OP ')), result: lines.find((l) => l.startsWith('RESULT ')), killed: signal === 'SIGKILL' });
    });
  });
}

function services(root: string): Services {
  const log = new MemoryLog();
  return new Services({ paths: { smolvm: '', docker: '', crane: '', skopeo: '', registry: '' }, stateDir: root, machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1' }, { main: log, tools: log });
}

/** 'old' or 'new' when the folder holds exactly that snapshot, whole, and the history what it must; else what is wrong. */
function whichSnapshot(dir: string): string {
  const live = wholeSnapshotIn(dir, ['history']);
  const history = existsSync(join(dir, 'history')) ? readdirSync(join(dir, 'history')) : [];
  if (live === 'old' && history.length === 0) return 'old';
  if (live !== 'new') return live === 'old' ? `the old snapshot is live with ${JSON.stringify(history)} in the history` : live;
  if (history.length !== 1) return `the new snapshot is live with ${JSON.stringify(history)} in the history`;
  const kept = wholeSnapshotIn(join(dir, 'history', history[0]));
  return kept === 'old' ? 'new' : `the new snapshot is live, and the history entry: ${kept}`;
}

/** 'old' or 'new' when `dir` holds exactly the files of that snapshot (and `besides`), whole. */
function wholeSnapshotIn(dir: string, besides: string[] = []): string {
  const names = readdirSync(dir).filter((name) => !besides.includes(name)).sort();
  if (names.join(',') !== SNAPSHOT_FILES.join(',')) return `${dir} holds ${JSON.stringify(names)}`;
  const sidecar = readFileSync(join(dir, 'committed-smolmachine.smolmachine'));
  const launcher = readFileSync(join(dir, 'committed-smolmachine'));
  const record = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as { sha256: string; sidecarBytes: number };
  if (record.sha256 !== sha256(sidecar) || record.sidecarBytes !== sidecar.length) return 'the record does not match the sidecar';
  for (const version of [OLD, NEW]) if (sidecar.equals(version.sidecar) && launcher.equals(version.launcher)) return version.name;
  return 'the sidecar and launcher come from different snapshots';
}

describe('installing a snapshot survives a crash at any point', function () {
  this.timeout(240_000);
  let scratch: string;
  let emptyTemp: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'install crash '));
    emptyTemp = join(scratch, 'temp');
    mkdirSync(emptyTemp);
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  /** Crashes before change 1, 2, … n of an install that makes n changes; returns what recovery left each time. */
  async function sweep(action: (dir: string, slug: string) => FaultRun['action']): Promise<Array<{ at: number; op: string; left: string; recovery: string[] }>> {
    const whole = bottleWithOld(scratch, 'api');
    const counted = await runChild({ mode: 'count', at: 0, root: whole.root, action: action(whole.dir, 'api') });
    assert.equal(counted.result, 'RESULT ok', 'the install without a crash succeeds');
    assert.equal(whichSnapshot(whole.dir), 'new', 'an install that finishes leaves the new snapshot, whole');
    const crashAt = async (at: number) => {
      const { root, dir } = bottleWithOld(scratch, 'api');
      const outcome = await runChild({ mode: 'crash', at, root, action: action(dir, 'api') });
      assert.ok(outcome.killed, `the child crashed before change ${at}`);
      const recovery = await recoverInterruptedWork(services(root), emptyTemp);
      return { at, op: outcome.ops.at(-1)!, left: whichSnapshot(dir), recovery };
    };
    const points = counted.ops.map((_op, i) => i + 1);
    const outcomes = [];
    // Two children at a time: each has its own state folder.
    for (let i = 0; i < points.length; i += 2) outcomes.push(...(await Promise.all(points.slice(i, i + 2).map(crashAt))));
    return outcomes;
  }

  function assertOldOrNewEverywhere(outcomes: Awaited<ReturnType<typeof sweep>>): void {
    const broken = outcomes.filter((o) => o.left !== 'old' && o.left !== 'new');
    assert.deepEqual(broken.map((o) => `crash before ${o.op}: ${o.left} (recovery: ${o.recovery.join('; ')})`), []);
    assert.ok(outcomes.length >= 6, `only ${outcomes.length} crash points: the child did not run the install`);
    assert.ok(outcomes.some((o) => o.left === 'old'), 'an early crash keeps the old snapshot');
  }

  it('swap: a crash between any two steps of replacing the snapshot, then recovery, leaves the old or the new one whole', async () => {
    const outcomes = await sweep((dir, slug) => replaceAction(dir, slug));
    assertOldOrNewEverywhere(outcomes);
    assert.ok(outcomes.some((o) => o.left === 'new'), 'a crash after the commit point keeps the new snapshot');
  });

  it('import: a crash between any two steps of an import with Replace, then recovery, leaves the old or the new snapshot whole', async () => {
    assertOldOrNewEverywhere(await sweep((_dir, slug) => importAction(scratch, slug)));
  });

  it('swap: a move that fails and whose undo fails too keeps the parked snapshot, and recovery puts it back', async () => {
    const probe = bottleWithOld(scratch, 'api');
    const counted = await runChild({ mode: 'count', at: 0, root: probe.root, action: replaceAction(probe.dir, 'api') });
    const moveIn = counted.ops.find((l) => / rename \/api\/\.incoming-a1b2c3\/committed-smolmachine\.smolmachine -> \/api\/committed-smolmachine\.smolmachine$/.test(l));
    assert.ok(moveIn, `the install moves the new sidecar in:\n${counted.ops.join('\n')}`);

    const { root, dir } = bottleWithOld(scratch, 'api');
    const failed = await runChild({ mode: 'fail-renames', at: Number(moveIn.split(' ')[1]), root, action: replaceAction(dir, 'api') });
    assert.match(failed.result ?? '', /^RESULT error .*EIO: i\/o error \(injected\)/);
    const recovery = await recoverInterruptedWork(services(root), emptyTemp);
    assert.equal(whichSnapshot(dir), 'old', `recovery: ${recovery.join('; ')}`);
  });

  describe('a parked folder left by 4a1be2a (no journal)', () => {
    /** The layout 4a1be2a left when it died after moving the new sidecar in: old parked, new sidecar live. */
    function crashedMidSwap(recordWritten: boolean): { root: string; dir: string } {
      const { root, dir } = bottleWithOld(scratch, 'api');
      mkdirSync(join(dir, '.previous-Ab12Cd'));
      for (const name of SNAPSHOT_FILES) writeFileSync(join(dir, '.previous-Ab12Cd', name), readFileSync(join(dir, name)));
      for (const name of SNAPSHOT_FILES) rmSync(join(dir, name));
      writeFileSync(join(dir, 'committed-smolmachine.smolmachine'), NEW.sidecar);
      if (recordWritten) {
        writeFileSync(join(dir, 'committed-smolmachine'), NEW.launcher);
        writeFileSync(join(dir, 'snapshot.json'), JSON.stringify(recordOf(NEW, 'api', dir)));
      }
      return { root, dir };
    }

    it('swap: recovery puts the parked snapshot back when the new one beside it is not whole, though a sidecar exists', async () => {
      const { root, dir } = crashedMidSwap(false);
      const recovery = await recoverInterruptedWork(services(root), emptyTemp);
      assert.equal(whichSnapshot(dir), 'old', `recovery: ${recovery.join('; ')}`);
    });

    it('swap: recovery leaves both when neither the parked snapshot nor the one beside it is whole', async () => {
      const { root, dir } = crashedMidSwap(false);
      rmSync(join(dir, '.previous-Ab12Cd', 'snapshot.json'));
      const recovery = await recoverInterruptedWork(services(root), emptyTemp);
      assert.deepEqual(recovery, [`api: kept ${join(dir, '.previous-Ab12Cd')}: neither it nor the snapshot beside it is whole, so both were left as they are`]);
      assert.deepEqual(readdirSync(join(dir, '.previous-Ab12Cd')).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine']);
    });

    it('swap: recovery removes a parked folder that holds nothing', async () => {
      const { root, dir } = bottleWithOld(scratch, 'api');
      mkdirSync(join(dir, '.previous-Ab12Cd'));
      await recoverInterruptedWork(services(root), emptyTemp);
      assert.equal(whichSnapshot(dir), 'old');
    });

    it('swap: recovery removes the parked snapshot when the new one beside it is whole', async () => {
      const { root, dir } = crashedMidSwap(true);
      const recovery = await recoverInterruptedWork(services(root), emptyTemp);
      assert.equal(wholeSnapshotIn(dir), 'new', `recovery: ${recovery.join('; ')}`);
    });
  });
});
