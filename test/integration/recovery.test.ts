import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { ownerOfTempDir } from '../../src/core/fsutil';
import { recoverInterruptedWork } from '../../src/core/recovery';
import type { CoreSettings } from '../../src/core/settings';
import { runTool } from '../../src/core/run';
import { COMMITTED_LABEL, imageLabel, labelledImageIds } from '../../src/core/tools/docker';
import { groupAlive, isAlive } from '../support/processes';
import { processesMentioning, REPO, sha256, startWorld, type World } from '../support/world';

/** Runs a freeze in another process and SIGKILLs it as `step` begins, as a crash would; returns its pid. */
async function crashDuring(world: World, slug: string, step: string, imageBuilder: 'docker' | 'native', overrides: Partial<CoreSettings> = {}): Promise<number> {
  const settings = { ...world.services().settings, imageBuilder, ...overrides };
  return crashChild(['test/support/freeze-child.ts', JSON.stringify(settings), slug], step);
}

/** Runs a resume of `slug`'s snapshot as `asSlug` in another process and SIGKILLs it as `step` begins; returns its pid. */
async function crashResumeDuring(world: World, slug: string, asSlug: string, step: string): Promise<number> {
  return crashChild(['test/support/resume-child.ts', JSON.stringify(world.services().settings), slug, asSlug], step);
}

async function crashChild(script: string[], step: string): Promise<number> {
  const [file, ...args] = script;
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, file), ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line === `STEP ${step}`) setTimeout(() => { child.kill('SIGKILL'); resolve(); }, 700);
      if (line === 'DONE') reject(new Error(`the freeze finished before reaching ${step}`));
    });
    child.on('exit', () => setTimeout(() => reject(new Error('the child ended before the step')), 1000));
  });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

/** The process groups a dead process listed as its running children (what recovery reads). */
function childGroupsOf(world: World, pid: number): number[] {
  const folder = join(world.stateRoot, '.children');
  const file = readdirSync(folder).find((name) => name.endsWith(`.${pid}.json`));
  assert.ok(file, `process ${pid} listed no children in ${folder}`);
  return (JSON.parse(readFileSync(join(folder, file), 'utf8')) as { groups: { pgid: number }[] }).groups.map((g) => g.pgid);
}

describe('recovery after a crash mid-freeze', function () {
  let world: World;
  const slug = 'crashy';
  const machine = `bot-bottle-${slug}`;
  let good: string;

  before(async () => {
    world = await startWorld('recovery');
    world.createRunningBottle(slug);
    await freezeBottle(world.services({ imageBuilder: 'native' }), slug, { signal: new AbortController().signal });
    good = sha256(readFileSync(join(world.stateRoot, slug, 'committed-smolmachine.smolmachine')));
  });
  after(async () => {
    for (const line of processesMentioning(world.root)) process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
    await world?.stop();
  });

  // Temp folders of processes that are gone (the crashed freeze's): other runs' live ones are theirs.
  const leftBehind = (pid: number | undefined) => pid !== undefined && !isAlive(pid);
  const ownedTemp = () => readdirSync(tmpdir()).filter((n) => leftBehind(ownerOfTempDir(n)));

  it('cleans the lock, the temp folder and the archive in the VM of a freeze killed while copying', async () => {
    // Slow copies rather than a delay before each: the native path's listing is copied out first, and must get through.
    const undo = world.withEnv({ SMOLVM_SIM_CP_RATE: `262144@${machine}` });
    try {
      await crashDuring(world, slug, 'copy', 'native');
    } finally {
      undo();
    }
    assert.ok(existsSync(join(world.stateRoot, slug, '.bot-bottle.lock')), 'the crash left the lock');
    assert.ok(existsSync(join(world.rootfs(machine), 'var/tmp/.bot-bottle-commit.tar.gz')), 'the crash left the archive in the VM');
    assert.ok(ownedTemp().length > 0, 'the crash left a temp folder');

    const done = await recoverInterruptedWork(world.services());

    assert.ok(done.some((l) => /^crashy: removed the lock of an interrupted freeze \(process \d+, since /.test(l)), done.join('\n'));
    assert.ok(done.includes(`crashy: removed the freeze archive inside ${machine}`), done.join('\n'));
    assert.ok(done.some((l) => /^removed the temp folder .*bot-bottle-vm-commit\.\d+\./.test(l)), done.join('\n'));
    assert.ok(!existsSync(join(world.stateRoot, slug, '.bot-bottle.lock')));
    assert.ok(!existsSync(join(world.rootfs(machine), 'var/tmp/.bot-bottle-commit.tar.gz')));
    assert.deepEqual(ownedTemp(), []);
    assert.equal(sha256(readFileSync(join(world.stateRoot, slug, 'committed-smolmachine.smolmachine'))), good);
    assert.ok(await world.services().store.readSnapshot(slug), 'the last good snapshot is still listed');
    assert.deepEqual(await recoverInterruptedWork(world.services()), [], 'a second start finds nothing to do');
  });

  it('stops the orphaned registry, and removes the image tarball, the staging folder and the committed image (row 11) of a freeze killed while packing', async () => {
    const undo = world.withEnv({ SMOLVM_SIM_DELAY: 'pack=60000' });
    let pid: number;
    try {
      pid = await crashDuring(world, slug, 'pack', 'docker');
    } finally {
      undo();
    }
    const groups = childGroupsOf(world, pid);
    assert.ok(groups.length >= 2 && groups.every(groupAlive), 'the crash left the registry and the pack running');
    assert.ok(readdirSync(join(world.stateRoot, slug)).some((n) => n.startsWith('.incoming-')), 'the crash left the staging folder');
    assert.deepEqual(await committedImages(), [slug], 'the crash left the committed image, labelled with its bottle');

    const done = await recoverInterruptedWork(world.services());

    assert.ok(done.includes(`stopped docker-registry (process group ${groups[0]}) of process ${pid}, which is gone`), done.join('\n'));
    assert.ok(done.some((l) => /^crashy: removed \.incoming-/.test(l)), done.join('\n'));
    assert.ok(done.some((l) => /^removed the image [0-9a-f]{12} of an interrupted freeze of crashy$/.test(l)), done.join('\n'));
    assert.deepEqual(groups.filter(groupAlive), []);
    assert.deepEqual(await committedImages(), []);
    assert.deepEqual(readdirSync(join(world.stateRoot, slug)).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json']);
    assert.equal(sha256(readFileSync(join(world.stateRoot, slug, 'committed-smolmachine.smolmachine'))), good);
  });

  it('row 11: removes the registry container and the network a killed freeze left in the engine, found by their labels', async () => {
    const gonePid = spawnSync('true').pid!;
    const context = join(world.root, 'registry stand-in');
    mkdirSync(context);
    writeFileSync(join(context, 'registry'), 'stands in for registry:2, which is never run here');
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nADD registry /registry\n');
    const docker = (...args: string[]) => runTool(world.services().run, { argv: ['docker', ...args], parse: (r) => r.stdout.trim() });
    await docker('build', '--tag', 'bot-bottle-test-registry:1', context);
    const name = 'bot-bottle-registry-0123456789ab';
    const labels = ['--label', 'bot-bottle.ephemeral-registry=true', '--label', `bot-bottle.owner=${hostname()}/${gonePid}`];
    await docker('network', 'create', ...labels, name);
    // As the freeze runs it (registry.ts), but only created: nothing is run in this sandbox.
    await docker('create', '--name', name, ...labels, '--network', name, '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--publish', '127.0.0.1::5000', 'bot-bottle-test-registry:1', '/registry');

    const done = await recoverInterruptedWork(world.services());

    assert.ok(done.includes(`removed the registry container ${name} of process ${gonePid}, which is gone`), done.join('\n'));
    assert.ok(done.includes(`removed the registry network ${name} of process ${gonePid}, which is gone`), done.join('\n'));
    assert.equal(await docker('ps', '--all', '--filter', 'label=bot-bottle.ephemeral-registry', '--format', '{{.Names}}'), '');
    assert.equal(await docker('network', 'ls', '--filter', 'label=bot-bottle.ephemeral-registry', '--format', '{{.Name}}'), '');
    await docker('rmi', 'bot-bottle-test-registry:1');
  });

  /** The bottles of the images in the test's own container service that carry the committed label. */
  async function committedImages(): Promise<string[]> {
    const run = world.services().run;
    const ids = await runTool(run, labelledImageIds('docker', COMMITTED_LABEL));
    return ids.length ? (await runTool(run, imageLabel('docker', ids, COMMITTED_LABEL))).map((image) => image.value) : [];
  }

  it('row 4: ends the `pack create` a killed freeze left running before it removes the folder the pack writes into', async () => {
    const undo = world.withEnv({ SMOLVM_SIM_DELAY: 'pack=60000' });
    let pid: number;
    try {
      pid = await crashDuring(world, slug, 'pack', 'native');
    } finally {
      undo();
    }
    const groups = childGroupsOf(world, pid);
    assert.ok(groups.length > 0 && groups.every(groupAlive), 'the crash left smolvm pack create running');

    const done = await recoverInterruptedWork(world.services());

    assert.ok(done.some((l) => new RegExp(`^stopped smolvm \\(process group \\d+\\) of process ${pid}, which is gone$`).test(l)), done.join('\n'));
    assert.deepEqual(groups.filter(groupAlive), [], 'no tool of the dead freeze runs any more');
    assert.ok(done.indexOf(done.find((l) => l.startsWith('stopped smolvm'))!) < done.findIndex((l) => /^crashy: removed \.incoming-/.test(l)), `ended before cleaning:\n${done.join('\n')}`);
    assert.deepEqual(readdirSync(join(world.stateRoot, slug)).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json']);
    assert.equal(sha256(readFileSync(join(world.stateRoot, slug, 'committed-smolmachine.smolmachine'))), good);
  });

  it('row 4: deletes the machine a killed resume half created, after ending the smolvm command it left running', async () => {
    const target = 'crashy-resumed';
    const undo = world.withEnv({ SMOLVM_SIM_DELAY: `start@bot-bottle-${target}=60000` });
    let pid: number;
    try {
      pid = await crashResumeDuring(world, slug, target, 'start');
    } finally {
      undo();
    }
    const listed = async () => (await runTool(world.services().run, world.services().smolvm().list())).map((m) => m.name);
    assert.ok((await listed()).includes(`bot-bottle-${target}`), 'the crash left the half-resumed machine');
    const groups = childGroupsOf(world, pid);
    assert.ok(groups.length > 0 && groups.every(groupAlive), 'the crash left smolvm machine start running');

    const done = await recoverInterruptedWork(world.services());

    assert.deepEqual(groups.filter(groupAlive), [], 'no tool of the dead resume runs any more');
    assert.ok(done.includes(`${target}: deleted bot-bottle-${target}, which an interrupted resume (process ${pid}) had half created`), done.join('\n'));
    assert.ok(!(await listed()).includes(`bot-bottle-${target}`), 'the half-resumed machine is gone');
    assert.ok((await listed()).includes(machine), 'the bottle it was resumed from is untouched');
    assert.deepEqual(await recoverInterruptedWork(world.services()), [], 'a second start finds nothing to do');
  });
});
