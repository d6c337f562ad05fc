/**
 * The bottle's lock (issue row 3): one window at a time, across processes. Contenders are separate
 * Node processes, as VS Code windows are.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StateStore } from '../../src/core/state';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CONTENDERS = 8;
const TRIALS = 25;

/** A pid that no process has: a program that has ended (and was waited for). */
function deadPid(): number {
  return spawnSync('true').pid!;
}

/** Field 22 of /proc/<pid>/stat: the process's start time. */
function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

class Contender {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiting?: (line: string) => void;

  constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test/support/lock-child.ts')], { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      if (this.waiting) {
        this.waiting(line);
        this.waiting = undefined;
      } else this.lines.push(line);
    });
  }

  send(...words: string[]): void {
    this.child.stdin!.write(`${words.join('\t')}\n`);
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolveLine) => (this.waiting = resolveLine));
  }
}

describe('the bottle lock', function () {
  let scratch: string;
  const sleepers: ChildProcess[] = [];
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'lock test '));
  });
  afterEach(() => {
    for (const sleeper of sleepers.splice(0)) sleeper.kill('SIGKILL');
    rmSync(scratch, { recursive: true, force: true });
  });

  /** A live process that is not a VS Code window: its pid is what a reused pid looks like. */
  function otherProcess(): number {
    const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    sleepers.push(sleeper);
    return sleeper.pid!;
  }

  function writeLock(root: string, owner: object): string {
    mkdirSync(join(root, 'api'), { recursive: true });
    const path = join(root, 'api', '.bot-bottle.lock');
    writeFileSync(path, JSON.stringify({ host: hostname(), operation: 'freeze', since: '2026-11-29T10:00:00.000Z', ...owner }));
    return path;
  }

  describe('many windows at once', function () {
    this.timeout(120_000);
    const contenders: Contender[] = [];
    before(async () => {
      for (let i = 0; i < CONTENDERS; i++) contenders.push(new Contender());
      for (const contender of contenders) assert.equal(await contender.next(), 'READY');
    });
    after(() => {
      for (const contender of contenders.splice(0)) contender.child.stdin!.end();
    });

    it(`lock: ${CONTENDERS} processes taking over one stale lock at once: exactly one holds it, in each of ${TRIALS} trials`, async () => {
      const refusals = new Set<string>();
      for (let trial = 1; trial <= TRIALS; trial++) {
        const root = join(scratch, `trial ${trial}`);
        writeLock(root, { pid: deadPid() });
        for (const contender of contenders) contender.send('go', root, 'api');
        const answers = await Promise.all(contenders.map((c) => c.next()));
        const holders = contenders.filter((_c, i) => answers[i] === 'HELD');
        assert.equal(holders.length, 1, `trial ${trial}: ${holders.length} processes hold the lock at once:\n${answers.join('\n')}`);
        for (const answer of answers.filter((a) => a !== 'HELD')) {
          assert.match(answer, /^REFUSED (A freeze of bottle "api" is already running \(by process \d+ on .+\)\. Wait for it to finish\.|Another window is taking over the lock .+ of bottle "api" right now\. Try again\.|Could not take the lock .+ for bottle "api": other windows kept taking it\. Try again\.)$/);
          refusals.add(answer.replace(/\d+/g, 'N').replace(/since .+\)/, 'since T)'));
        }
        holders[0].send('release');
        assert.equal(await holders[0].next(), 'RELEASED');
        assert.deepEqual(readdirSync(join(root, 'api')), [], `trial ${trial}: the holder's release removed its lock and nothing else is left`);
      }
      assert.ok(refusals.size > 0, 'the others were refused');
    });
  });

  it('lock: release removes only its own lock, never the lock another window holds now', async () => {
    const store = new StateStore(scratch);
    const lock = await store.lock('api', 'freeze');
    const theirs = writeLock(scratch, { pid: otherProcess(), operation: 'resume', token: 'theirs' });
    const before = readFileSync(theirs, 'utf8');
    await lock.release();
    assert.equal(readFileSync(theirs, 'utf8'), before, "the other window's lock is still there");
  });

  it('lock: a stale lock whose pid now belongs to another process (a different start time) is taken over', async () => {
    const pid = otherProcess();
    writeLock(scratch, { pid, token: 'gone', startTime: String(Number(startTimeOf(pid)) - 1) });
    const lock = await new StateStore(scratch).lock('api', 'freeze');
    assert.equal(lock.owner.pid, process.pid);
    assert.equal(lock.tookOverFrom?.pid, pid);
    await lock.release();
  });

  it('lock: a lock from an earlier boot is taken over, even if its pid runs now', async () => {
    const pid = otherProcess();
    writeLock(scratch, { pid, token: 'gone', startTime: startTimeOf(pid), bootId: 'an-earlier-boot' });
    const lock = await new StateStore(scratch).lock('api', 'freeze');
    assert.equal(lock.tookOverFrom?.pid, pid);
    await lock.release();
  });

  it('lock: a live owner whose start time was not recorded cannot be told from a reused pid, so the message names the lock file', async () => {
    const pid = otherProcess();
    const path = writeLock(scratch, { pid });
    await assert.rejects(new StateStore(scratch).lock('api', 'resume'), (e: Error) => {
      assert.equal(e.message, `A freeze of bottle "api" is already running (by process ${pid} on ${hostname()}, since 2026-11-29T10:00:00.000Z). Wait for it to finish. If process ${pid} is not a VS Code window, delete ${path}.`);
      return true;
    });
  });

  it('lock: a live owner with a matching start time keeps its lock', async () => {
    const pid = otherProcess();
    const path = writeLock(scratch, { pid, token: 'live', startTime: startTimeOf(pid) });
    await assert.rejects(new StateStore(scratch).lock('api', 'resume'), /^BottleLockedError: A freeze of bottle "api" is already running \(by process \d+ on .+\)\. Wait for it to finish\.$/);
    assert.match(readFileSync(path, 'utf8'), /"token":"live"/);
  });

  it('lock: a window taking over a stale lock right now (a live takeover guard) makes the others wait', async () => {
    const path = writeLock(scratch, { pid: deadPid() });
    const guard = `${path}.takeover`;
    writeFileSync(guard, JSON.stringify({ pid: process.pid, host: hostname(), operation: 'takeover', since: 'now', token: 'busy', startTime: startTimeOf(process.pid) }));
    await assert.rejects(new StateStore(scratch).lock('api', 'freeze'), (e: Error) => e.message === `Another window is taking over the lock ${path} of bottle "api" right now. Try again.`);
  });

  it('lock: a takeover guard left by a crash is cleared with the stale lock', async () => {
    const path = writeLock(scratch, { pid: deadPid() });
    writeFileSync(`${path}.takeover`, JSON.stringify({ pid: deadPid(), host: hostname(), operation: 'takeover', since: 'then', token: 'crashed' }));
    const lock = await new StateStore(scratch).lock('api', 'freeze');
    await lock.release();
    assert.deepEqual(readdirSync(join(scratch, 'api')), []);
  });

  it('lock: the lock file is readable by its owner only (0600)', async () => {
    const store = new StateStore(scratch);
    const lock = await store.lock('api', 'freeze');
    assert.equal(statSync(join(scratch, 'api', '.bot-bottle.lock')).mode & 0o777, 0o600);
    await lock.release();
  });
});
