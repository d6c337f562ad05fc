/**
 * Issue row 4: tools outlive the extension host. Every child runs in a process group the runner
 * tracks; the groups die with the extension host (deactivate, process exit), and those a killed
 * host left behind are ended by the next start's recovery before it cleans. Every check here is
 * on the process groups these tests started, never on the machine's process list.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { endOrphanedChildren } from '../../src/core/childRecord';
import { silentLog } from '../../src/core/log';
import { MemoryLog } from '../support/memoryLog';
import { recoverInterruptedWork } from '../../src/core/recovery';
import { createRunner, killAllChildren, liveChildGroups, startBackgroundProcess } from '../../src/core/run';
import { Services } from '../../src/core/services';
import { groupAlive, waitFor } from '../support/processes';
import { REPO } from '../support/world';

const services = (stateRoot: string) =>
  new Services(
    { paths: { smolvm: '', docker: '/bin/false', crane: '', skopeo: '', registry: '' }, stateDir: stateRoot, machinePrefix: 'bot-bottle-', pullHost: '127.0.0.1' },
    { main: silentLog, tools: silentLog },
  );

describe('no tool outlives the extension host (issue row 4)', function () {
  let dir: string;
  let stateRoot: string;
  const started: number[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-children-'));
    stateRoot = join(dir, 'state');
    mkdirSync(stateRoot);
  });
  afterEach(() => {
    for (const pgid of started.splice(0)) if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs test/support/runner-child.ts; resolves with the child once its tool runs, and the tool's group id. */
  async function hostWithATool(ending: 'exit' | 'wait'): Promise<{ host: ChildProcess; pgid: number; exited: Promise<unknown> }> {
    const pidFile = join(dir, 'tool.pid');
    const host = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test/support/runner-child.ts'), stateRoot, pidFile, ending], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => host.once('exit', resolve));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: host.stdout! }).on('line', (line) => line === 'STARTED' && resolve());
      void exited.then(() => reject(new Error('the stand-in host ended before its tool started')));
    }).catch(async (error: unknown) => {
      await exited;
      throw error;
    });
    const pgid = Number(readFileSync(pidFile, 'utf8'));
    started.push(pgid);
    return { host, pgid, exited };
  }

  it('row 4: a tool the runner started dies with the extension host when it exits', async () => {
    const { pgid, exited } = await hostWithATool('exit');
    await exited;
    assert.ok(await waitFor(() => !groupAlive(pgid), 3000), `the tool's process group ${pgid} outlived its host`);
  });

  it('row 4: a tool left by a SIGKILLed extension host is ended by the next start before recovery cleans', async () => {
    const { host, pgid, exited } = await hostWithATool('wait');
    host.kill('SIGKILL');
    await exited;
    assert.ok(groupAlive(pgid), 'SIGKILL gives the host no chance to end its tool');

    const done = await recoverInterruptedWork(services(stateRoot), join(dir, 'no-temp'));

    assert.ok(done.includes(`stopped sh (process group ${pgid}) of process ${host.pid}, which is gone`), done.join('\n'));
    assert.ok(!groupAlive(pgid), `process group ${pgid} is still there`);
    assert.deepEqual(readdirSync(join(stateRoot, '.children')).filter((n) => n.includes(`.${host.pid}.`)), [], 'the dead host’s list is removed');
  });

  it('recovery leaves alone a group whose id a later process has taken', async () => {
    const other = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    started.push(other.pid!);
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    mkdirSync(join(stateRoot, '.children'));
    const list = { pid: gone.pid, host: hostname(), groups: [{ pgid: other.pid, startedAt: Date.now() - 3_600_000, tool: 'smolvm' }] };
    writeFileSync(join(stateRoot, '.children', `${hostname()}.${gone.pid}.json`), JSON.stringify(list));

    const done = await endOrphanedChildren(stateRoot, createRunner(silentLog));

    assert.deepEqual(done, []);
    assert.ok(groupAlive(other.pid!), 'a group recorded an hour before this one started is not ours');
    assert.deepEqual(readdirSync(join(stateRoot, '.children')), [], 'the list of a dead process is removed either way');
  });

  it('row 4: killAllChildren (the extension’s deactivate) ends every running tool’s process group, a background one too', async () => {
    const run = createRunner(new MemoryLog());
    const command = run(['sh', '-c', 'sleep 300 & wait']).catch((error: unknown) => error);
    const server = startBackgroundProcess(new MemoryLog(), ['sh', '-c', 'sleep 300 & wait']);
    const groups = liveChildGroups().map((g) => g.pgid);
    assert.ok(groups.includes(server.pid) && groups.length >= 2, `tracked: ${groups.join(', ')}`);
    started.push(...groups);

    await killAllChildren();

    assert.deepEqual(groups.filter(groupAlive), []);
    assert.ok((await command) instanceof Error, 'the command reports that it was ended');
    await server.exited;
    assert.deepEqual(liveChildGroups(), []);
  });
});
