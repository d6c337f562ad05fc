import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BotBottle, type CoreSettings } from '../../src/core/facade';
import { readSidecar } from '../sim/smolmachine';
import { botBottleDouble, type BotBottleDouble } from '../support/botBottleCli';
import { describeTree, sha256, SIM_BIN, startWorld, type World } from '../support/world';

const signal = () => new AbortController().signal;

describe("bot-bottle's own files, through a freeze and a resume (stand-in smolvm, bot-bottle CLI double)", function () {
  let world: World;
  let core: BotBottle;
  let botBottle: BotBottleDouble;
  before(async () => {
    world = await startWorld('bot-bottle files');
    const settings: CoreSettings = {
      paths: { smolvm: SIM_BIN, docker: '', crane: '', skopeo: '', registry: '' },
      stateDir: world.stateRoot,
      machinePrefix: 'bot-bottle-',
      pullHost: '127.0.0.1',
    };
    core = new BotBottle(settings, { main: world.log, tools: world.toolLog });
    botBottle = botBottleDouble(world.home);
  });
  after(async () => world?.stop());

  const listed = async (slug: string) => (await core.listBottles()).find((b) => b.slug === slug);

  it('after a freeze in the extension, bot-bottle resume would boot the extension’s snapshot; metadata.json is untouched', async () => {
    world.createRunningBottle('fix-login-4k2x9');
    botBottle.launch('fix-login-4k2x9', { backend: 'smolmachines', label: 'Fix the login', agent_name: 'claude', cwd: '/work/app', started_at: '2026-03-01T09:30:00Z' });
    const metadataBefore = readFileSync(join(botBottle.stateDir('fix-login-4k2x9'), 'metadata.json'));

    const snapshot = await core.freeze('fix-login-4k2x9', { signal: signal() });

    const plan = botBottle.resume('fix-login-4k2x9');
    assert.deepEqual(plan, {
      slug: 'fix-login-4k2x9', backend: 'smolmachines', label: 'Fix the login',
      boot: { from: 'smolmachine', path: join(botBottle.stateDir('fix-login-4k2x9'), 'committed-smolmachine.smolmachine') },
    });
    const booted = (plan.boot as { path: string }).path;
    assert.equal(readSidecar(booted).fileSize, snapshot.sizeBytes, 'a whole SMOLPACK footer, checksums and all');
    assert.equal(statSync(booted).ino, statSync(snapshot.sidecar).ino, 'the same file as the extension’s snapshot (a hard link)');
    assert.ok(existsSync(join(botBottle.stateDir('fix-login-4k2x9'), '.preserve')));
    assert.deepEqual(readFileSync(join(botBottle.stateDir('fix-login-4k2x9'), 'metadata.json')), metadataBefore);
    assert.ok(!snapshot.sidecar.startsWith(join(world.home, '.bot-bottle')), 'the extension’s own snapshot lives outside bot-bottle’s folder');

    const bottle = await listed('fix-login-4k2x9');
    assert.equal(bottle?.snapshot?.sidecar, snapshot.sidecar, 'the extension’s own snapshot is the one listed');
    assert.deepEqual(bottle?.botBottle?.metadata, { backend: 'smolmachines', label: 'Fix the login', agentName: 'claude', cwd: '/work/app', startedAt: new Date('2026-03-01T09:30:00Z') });
  });

  it('after bot-bottle’s own commit, the extension lists that snapshot and resumes it', async () => {
    const machine = world.createRunningBottle('source-1');
    const ours = await core.freeze('source-1', { signal: signal() });
    botBottle.launch('theirs-7q2zz', { backend: 'smolmachines', label: 'Committed by bot-bottle' });
    const artifact = botBottle.commitSmolmachine('theirs-7q2zz', ours.sidecar);

    const bottle = await listed('theirs-7q2zz');
    assert.equal(bottle?.machine, undefined);
    assert.equal(bottle?.snapshot?.sidecar, artifact);
    assert.equal(bottle?.botBottle?.metadata.label, 'Committed by bot-bottle');

    // bot-bottle's commit writes no record to check its snapshot against: the user confirms it.
    const { machine: resumed } = await core.resume(bottle!.snapshot!, { signal: signal(), allowUnverified: true });
    assert.equal(resumed, 'bot-bottle-theirs-7q2zz');
    assert.equal((await listed('theirs-7q2zz'))?.machine?.state, 'running');
    const files = (tree: ReturnType<typeof describeTree>) => [...tree].filter(([p]) => p.startsWith('home/node')).map(([p, e]) => `${p} ${e.content ?? ''}`).sort();
    assert.deepEqual(files(describeTree(world.rootfs(resumed))), files(describeTree(world.rootfs(machine))));
  });

  it('bot-bottle deleting its state folder leaves the extension’s snapshots intact and listed', async () => {
    const slug = 'fix-login-4k2x9';
    const ours = (await listed(slug))!.snapshot!;
    const hash = sha256(readFileSync(ours.sidecar));
    assert.equal(hash, ours.record?.sha256);

    botBottle.launch(slug, { backend: 'smolmachines' });
    botBottle.cleanExit(slug);
    assert.ok(!existsSync(botBottle.stateDir(slug)), 'a clean exit after a launch deletes the folder');
    rmSync(join(world.home, '.bot-bottle', 'state'), { recursive: true, force: true });

    assert.equal(sha256(readFileSync(ours.sidecar)), hash);
    const bottle = await listed(slug);
    assert.equal(bottle?.snapshot?.sidecar, ours.sidecar);
    assert.equal(bottle?.botBottle, undefined);
    assert.deepEqual(readdirSync(join(world.stateRoot, slug)).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json']);
    assert.throws(() => botBottle.resume(slug), /no bottle "fix-login-4k2x9" to resume/);
  });

  it('a freeze of a bottle bot-bottle would never have named leaves nothing in its folder, and says why', async () => {
    world.createRunningBottle('Not_Bot_Bottles');
    await core.freeze('Not_Bot_Bottles', { signal: signal() });
    assert.ok(!existsSync(join(world.home, '.bot-bottle', 'state', 'Not_Bot_Bottles')));
    assert.ok(world.log.lines.some((l) => l.includes('"Not_Bot_Bottles" is not a name bot-bottle gives a bottle: its names are lower-case letters and digits, in groups joined by single hyphens. So bot-bottle cannot resume it, and nothing is left in its state folder.')));
  });
});
