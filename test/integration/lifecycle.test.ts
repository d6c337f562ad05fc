// Start, Stop, Restart and Delete Bottle through the smolvm stand-in, as the view runs them. Only
// smolvm is needed, so no container service is started. (A resumed bottle's row: resume.test.ts.)
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bottle } from '../../src/core/bottles';
import { ToolError } from '../../src/core/errors';
import { changeBottle } from '../../src/core/lifecycle';
import { BottleLockedError } from '../../src/core/lock';
import { Services } from '../../src/core/services';
import { LAUNCHER_NAME, SIDECAR_NAME } from '../../src/core/state';
import { rowParts } from '../../src/ui/bottleRows';
import { MemoryLog } from '../support/memoryLog';
import { makeSimDataDir, simBin, type SimDataDir } from '../support/sim';
import { execFileSync } from 'node:child_process';

const t = (message: string, ...args: Array<string | number>) => message.replace(/\{(\d+)\}/g, (_, i: string) => String(args[Number(i)]));
const signal = () => new AbortController().signal;

describe("a bottle's life through the stand-in", function () {
  let data: SimDataDir;
  let stateDir: string;
  let services: Services;
  let previousDataDir: string | undefined;
  const sim = (...args: string[]) => execFileSync(simBin, args, { encoding: 'utf8', env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const bottle = async (slug: string): Promise<Bottle | undefined> => (await services.catalog.refresh()).find((b) => b.slug === slug);
  const consoleLog = () => readFileSync(join(data.dataDir, 'machines', 'bot-bottle-life', 'agent-console.log'), 'utf8');

  before(() => {
    data = makeSimDataDir();
    previousDataDir = process.env.SMOLVM_DATA_DIR;
    process.env.SMOLVM_DATA_DIR = data.dataDir;
    stateDir = mkdtempSync(join(tmpdir(), 'bb-life-state-'));
    const settings = { paths: { smolvm: simBin, docker: '', crane: '', skopeo: '', registry: '' }, stateDir, machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1', imageBuilder: 'native' as const };
    services = new Services(settings, { main: new MemoryLog(), tools: new MemoryLog() });
    sim('machine', 'create', '--name', 'bot-bottle-life', '--image', 'node:22');
  });
  after(() => {
    if (previousDataDir === undefined) delete process.env.SMOLVM_DATA_DIR;
    else process.env.SMOLVM_DATA_DIR = previousDataDir;
    data?.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts, restarts and stops the machine, and does nothing while another window holds the bottle', async () => {
    await changeBottle(services, (await bottle('life'))!, 'start', signal());
    const started = await bottle('life');
    assert.equal(started?.machine?.state, 'running');

    await changeBottle(services, started!, 'restart', signal());
    const restarted = await bottle('life');
    assert.equal(restarted?.machine?.state, 'running');
    assert.notEqual(restarted?.machine?.pid, started?.machine?.pid, 'a new VM process');
    assert.match(consoleLog(), /shutdown requested[^\n]*\n[^\n]*boot complete/, 'a stop, then a start');

    const lock = await services.store.lock('life', 'freeze');
    const before = consoleLog();
    await assert.rejects(changeBottle(services, restarted!, 'stop', signal()), BottleLockedError).finally(() => lock.release());
    assert.equal(consoleLog(), before, 'smolvm was not called');

    await changeBottle(services, restarted!, 'stop', signal());
    assert.equal((await bottle('life'))?.machine?.state, 'stopped');
  });

  it('deletes the machine and keeps its snapshot', async () => {
    const folder = join(stateDir, 'life');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, SIDECAR_NAME), 'kept');
    writeFileSync(join(folder, LAUNCHER_NAME), 'kept');
    await changeBottle(services, (await bottle('life'))!, 'delete', signal());
    const deleted = await bottle('life');
    assert.equal(deleted?.machine, undefined, 'the machine is gone');
    assert.equal(readFileSync(deleted!.snapshot!.sidecar, 'utf8'), 'kept', 'the snapshot stays');
    assert.deepEqual(rowParts(deleted!, Date.now(), Date.now(), t), ['snapshot', 'just now']);
  });

  it("says smolvm's own words when the machine went away meanwhile", async () => {
    const gone: Bottle = { slug: 'life', machineName: 'bot-bottle-life', machine: { name: 'bot-bottle-life', state: 'running' } };
    // smolvm stop of an unknown name: `Error: vm not found` (src/cli/vm_common.rs:1938-1940).
    await assert.rejects(changeBottle(services, gone, 'stop', signal()), (error: ToolError) => /vm not found: bot-bottle-life/.test(error.message));
  });
});
