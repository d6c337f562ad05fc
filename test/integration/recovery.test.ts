import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { recoverInterruptedWork } from '../../src/core/recovery';
import { processesMentioning, REPO, sha256, startWorld, type World } from '../support/world';

/** Runs a freeze in another process and SIGKILLs it as `step` begins, as a crash would. */
async function crashDuring(world: World, slug: string, step: string, imageBuilder: 'docker' | 'native'): Promise<void> {
  const settings = { ...world.services().settings, imageBuilder };
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'test/support/freeze-child.ts'), JSON.stringify(settings), slug], {
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

  const ownedTemp = () => readdirSync(tmpdir()).filter((n) => /^bot-bottle-[a-z-]+\.\d+\./.test(n));

  it('cleans the lock, the temp folder and the archive in the VM of a freeze killed while copying', async () => {
    const undo = world.withEnv({ SMOLVM_SIM_DELAY: `cp@${machine}=60000` });
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

  it('stops the orphaned registry and removes the image tarball and staging of a freeze killed while packing', async () => {
    const undo = world.withEnv({ SMOLVM_SIM_DELAY: 'pack=60000' });
    try {
      await crashDuring(world, slug, 'pack', 'docker');
    } finally {
      undo();
    }
    assert.ok(processesMentioning('bot-bottle-registry.').some((l) => l.includes('serve')), 'the crash left the registry running');
    assert.ok(readdirSync(join(world.stateRoot, slug)).some((n) => n.startsWith('.incoming-')), 'the crash left the staging folder');

    const done = await recoverInterruptedWork(world.services());

    assert.ok(done.some((l) => /^stopped the registry \(process \d+\) of process \d+, which is gone$/.test(l)), done.join('\n'));
    assert.ok(done.some((l) => /^crashy: removed \.incoming-/.test(l)), done.join('\n'));
    for (let i = 0; i < 40 && processesMentioning('bot-bottle-registry.').some((l) => l.includes('serve')); i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(processesMentioning('bot-bottle-registry.').filter((l) => l.includes('serve')), []);
    assert.deepEqual(readdirSync(join(world.stateRoot, slug)).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json']);
    assert.equal(sha256(readFileSync(join(world.stateRoot, slug, 'committed-smolmachine.smolmachine'))), good);
  });
});
