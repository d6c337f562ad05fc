/**
 * Issue row 11 (docker path): after a crash neither the registry container nor the committed image
 * was cleaned up. The next start finds them by their labels and removes those whose owner is gone,
 * through a stand-in docker that records what it is asked (test/integration/recovery.test.ts does
 * the image through a real engine).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLog } from '../support/memoryLog';
import { recoverInterruptedWork } from '../../src/core/recovery';
import { Services } from '../../src/core/services';

const DEAD = `sha256:${'d'.repeat(64)}`;
const BUSY = `sha256:${'b'.repeat(64)}`;
const ODD = `sha256:${'0'.repeat(64)}`;

describe('recovery: docker leftovers found by label (issue row 11)', () => {
  let dir: string;
  let calls: string;
  let gonePid: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-recovery-docker-'));
    calls = join(dir, 'calls');
    writeFileSync(calls, '');
    gonePid = spawnSync('true').pid!;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A docker whose engine holds two registries (one of a gone process, one of this one), one of another host, and three images. */
  function fakeDocker(): string {
    const owners = [`bot-bottle-registry-gone\t${hostname()}/${gonePid}`, `bot-bottle-registry-live\t${hostname()}/${process.pid}`, 'bot-bottle-registry-far\tanother-host/1'];
    const script = join(dir, 'docker');
    writeFileSync(script, [
      '#!/bin/sh',
      `echo "$*" >> '${calls}'`,
      'case "$1 $2" in',
      `  "ps --all"|"network ls") printf '%s\\n' ${owners.map((o) => `'${o}'`).join(' ')} ;;`,
      `  "image ls") printf '%s\\n' ${DEAD} ${BUSY} ${ODD} ;;`,
      `  "image inspect") printf '%s\\n' '${DEAD}\tcrashy' '${BUSY}\tbusy' '${ODD}\t../../etc' ;;`,
      'esac',
      '',
    ].join('\n'), { mode: 0o755 });
    return script;
  }

  it('row 11: removes the registry container and network of a process that is gone, and the image of a bottle no freeze holds', async () => {
    const stateRoot = join(dir, 'state');
    mkdirSync(stateRoot);
    const paths = { smolvm: '', docker: fakeDocker(), crane: '', skopeo: '', registry: '' };
    const services = new Services({ paths, stateDir: stateRoot, machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1' }, { main: new MemoryLog(), tools: new MemoryLog() });
    const lock = await services.store.lock('busy', 'freeze');
    let done: string[];
    try {
      done = await recoverInterruptedWork(services, join(dir, 'no-temp'));
    } finally {
      await lock.release();
    }

    assert.deepEqual(done, [
      `removed the registry container bot-bottle-registry-gone of process ${gonePid}, which is gone`,
      `removed the registry network bot-bottle-registry-gone of process ${gonePid}, which is gone`,
      'removed the image dddddddddddd of an interrupted freeze of crashy',
    ]);
    const removals = readFileSync(calls, 'utf8').split('\n').filter((l) => / rm |^rm |^rmi /.test(l));
    assert.deepEqual(removals, ['rm --force bot-bottle-registry-gone', 'network rm bot-bottle-registry-gone', `rmi --force ${DEAD}`]);
  });
});
