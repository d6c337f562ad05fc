import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, truncateSync, writeFileSync, type Stats } from 'node:fs';
import { discoverBottles } from '../../src/core/bottles';
import { isFreezePullReference } from '../../src/core/committedImage';
import { isCancelled } from '../../src/core/errors';
import { formatTime } from '../../src/core/format';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { labelSnapshot } from '../../src/core/snapshots';
import { INIT_COMMANDS, MachineExistsError, resumeBottle, resumeSteps } from '../../src/core/resume';
import { UNRECORDED_SETTINGS } from '../../src/core/machineSettings';
import { runTool } from '../../src/core/run';
import type { Snapshot } from '../../src/core/state';
import { parseMachine } from '../../src/core/tools/smolvm';
import { rowParts } from '../../src/ui/bottleRows';
import { describeTree, EXCLUDED_TOP, startWorld, type World } from '../support/world';

const signal = () => new AbortController().signal;

describe('resume through real parts', function () {
  let world: World;
  let snapshot: Snapshot;

  before(async () => {
    world = await startWorld('resume');
    world.createRunningBottle('beta');
    snapshot = await freezeBottle(world.services(), 'beta', { signal: signal() });
  });
  after(async () => world?.stop());

  const machines = async () => (await runTool(world.services().run, world.services().smolvm().list())).map((m) => m.name).sort();
  const deleteMachine = (name: string) => world.sim('machine', 'delete', '--name', name, '-f');

  it('brings a frozen bottle back whole, with /tmp and /var/tmp ready for the agent', async () => {
    const original = describeTree(world.rootfs('bot-bottle-beta'), EXCLUDED_TOP);
    world.sim('machine', 'stop', '--name', 'bot-bottle-beta');
    deleteMachine('bot-bottle-beta');

    const { machine } = await resumeBottle(world.services(), snapshot, { signal: signal() });

    assert.equal(machine, 'bot-bottle-beta');
    const status = JSON.parse(world.sim('machine', 'status', '--name', machine, '--json'));
    assert.equal(status.state, 'running');
    // smolvm records the pack's image: the address the freeze served it at, gone now (src/cli/machine.rs:3384-3388).
    // The row names the snapshot instead.
    assert.ok(isFreezePullReference(status.image), status.image);
    const row = rowParts({ slug: 'beta', machineName: machine, machine: parseMachine(status), snapshot }, Date.now(), Date.now(), (m, ...a) => m.replace('{0}', String(a[0])));
    assert.equal(row.at(-1), `from snapshot ${formatTime(snapshot.createdAt)}`);
    const restored = describeTree(world.rootfs(machine), EXCLUDED_TOP);
    const shape = (tree: typeof original) => [...tree].map(([p, e]) => `${p} ${e.type} ${e.mode.toString(8)} ${e.content ?? ''}`).sort();
    assert.deepEqual(shape(restored), shape(original));
    for (const dir of ['tmp', 'var/tmp']) {
      const info: Stats = statSync(`${world.rootfs(machine)}/${dir}`);
      assert.equal(info.mode & 0o7777, 0o1777, `/${dir} is mode 1777`);
      assert.equal(info.uid, 0, `/${dir} is owned by root`);
    }
    // The agent (uid 1000) can write there: run inside the machine's root as that uid.
    execFileSync('chroot', ['--userspec=1000:1000', world.rootfs(machine), 'touch', '/tmp/agent-was-here', '/var/tmp/agent-was-here']);
    assert.equal(statSync(`${world.rootfs(machine)}/tmp/agent-was-here`).uid, 1000);
  });

  it('without the seed’s mkdir-before-chown fix the resumed bottle would lack /tmp and /var/tmp', async () => {
    deleteMachine('bot-bottle-beta');
    const withoutMkdir = INIT_COMMANDS.filter((c) => c[0] !== 'mkdir');
    const error = await resumeBottle(world.services(), snapshot, { signal: signal() }, resumeSteps(withoutMkdir)).catch((e) => e);
    assert.match(String(error?.message), /Preparing it for the agent failed: .*chown.*(No such file|cannot access)/s);
    assert.ok(!(await machines()).includes('bot-bottle-beta'), 'the half-made machine was deleted');
  });

  it('refuses a name that is taken unless told to replace it, and can resume under a new name', async () => {
    await resumeBottle(world.services(), snapshot, { signal: signal() });
    await assert.rejects(resumeBottle(world.services(), snapshot, { signal: signal() }), MachineExistsError);
    world.sim('machine', 'exec', '--name', 'bot-bottle-beta', '--', 'touch', '/home/node/marker');

    await resumeBottle(world.services(), snapshot, { signal: signal(), replace: true });
    assert.throws(() => statSync(`${world.rootfs('bot-bottle-beta')}/home/node/marker`), 'replaced: the old machine’s files are gone');

    const twin = await resumeBottle(world.services(), snapshot, { signal: signal(), asSlug: 'beta-2' });
    assert.equal(twin.machine, 'bot-bottle-beta-2');
    assert.deepEqual((await machines()).filter((m) => m.startsWith('bot-bottle-beta')), ['bot-bottle-beta', 'bot-bottle-beta-2']);
  });

  it('a Replace cancelled after the old machine was deleted says that it was deleted', async () => {
    if (!(await machines()).includes('bot-bottle-beta')) await resumeBottle(world.services(), snapshot, { signal: signal() });
    const undoEnv = world.withEnv({ SMOLVM_SIM_HANG: 'create@bot-bottle-beta' });
    const controller = new AbortController();
    try {
      const resuming = resumeBottle(world.services(), snapshot, {
        signal: controller.signal,
        replace: true,
        onProgress: (p) => p.stepId === 'create' && setTimeout(() => controller.abort(), 300),
      });
      const error = await resuming.catch((e: unknown) => e);
      assert.ok(isCancelled(error), String(error));
      assert.equal(error.aftermath, 'The machine bot-bottle-beta it was to replace had already been deleted.');
      assert.ok(!(await machines()).includes('bot-bottle-beta'), 'the replaced machine is really gone');
    } finally {
      undoEnv();
    }
  });

  it('gives back the network, CPUs and memory, and names the egress allow-list as not carried over', async () => {
    // create --from takes network from the pack OR --net (src/cli/machine.rs:3347-3358), and the
    // pack always says false (src/cli/pack.rs:482); cpus/mem from the pack unless the flags differ
    // from 4/8192 (src/cli/machine.rs:3336-3345); the allow-list is in no output (vm_common.rs:2469-2520).
    const machine = 'bot-bottle-eps';
    world.sim('machine', 'create', '--name', machine, '--image', 'node:22', '--net', '--allow-cidr', '127.0.0.16/32', '--cpus', '2', '--mem', '2048');
    world.sim('machine', 'start', '--name', machine);
    const frozen = await freezeBottle(world.services(), 'eps', { signal: signal() });
    assert.equal(frozen.record?.machineSettings?.network, true);
    assert.ok(world.toolLog.lines.some((l) => /pack create .* --cpus 2 --mem 2048/.test(l)), 'the pack records the size');
    world.sim('machine', 'stop', '--name', machine);
    deleteMachine(machine);

    const resumed = await resumeBottle(world.services(), frozen, { signal: signal() });

    const status = JSON.parse(world.sim('machine', 'status', '--name', machine, '--json'));
    assert.deepEqual([status.state, status.network, status.cpus, status.memory_mib], ['running', true, 2, 2048]);
    assert.ok(resumed.notCarried.some((l) => l.startsWith('its egress allow-list (--allow-cidr, --allow-host)')), resumed.notCarried.join('\n'));
    assert.match(world.log.text, /Carried over: network on, 2 CPUs, 2048 MiB memory/);
    assert.match(world.log.text, /Not carried over: its egress allow-list \(--allow-cidr, --allow-host\)/);
  });

  it('says a snapshot with no record of its machine carries no settings over', async () => {
    const unrecorded: Snapshot = { ...snapshot, record: undefined };
    const resumed = await resumeBottle(world.services(), unrecorded, { signal: signal(), asSlug: 'beta-bare', allowUnverified: true });
    assert.deepEqual(resumed.notCarried, [UNRECORDED_SETTINGS]);
    assert.match(world.log.text, /Not carried over: its machine settings/);
  });

  it('refuses a size smolvm would refuse or ignore before it runs anything', async () => {
    const before = await machines();
    const calls = world.toolLog.lines.length;
    await assert.rejects(
      resumeBottle(world.services(), snapshot, { signal: signal(), asSlug: 'beta-sized', size: { cpus: 0 } }),
      /The CPU count asked for the resumed machine \(0\) cannot be used: smolvm needs at least 1 CPU\. Nothing was created\./,
    );
    assert.equal(world.toolLog.lines.length, calls, 'no smolvm call was made');
    assert.deepEqual(await machines(), before);
  });

  describe('a damaged sidecar is refused before any machine is created', () => {
    const damagedCopy = async (damage: (path: string) => void): Promise<Snapshot> => {
      const store = world.services().store;
      const fresh = (await store.readSnapshot('beta'))!;
      const path = `${world.root}/damaged.smolmachine`;
      writeFileSync(path, readFileSync(fresh.sidecar));
      damage(path);
      return { ...fresh, sidecar: path, sizeBytes: statSync(path).size };
    };

    it('one flipped byte', async () => {
      const before = await machines();
      const flipped = await damagedCopy((path) => {
        const bytes = readFileSync(path);
        bytes[Math.floor(bytes.length / 2)] ^= 0xff;
        writeFileSync(path, bytes);
      });
      await assert.rejects(resumeBottle(world.services(), flipped, { signal: signal(), asSlug: 'gamma' }), /is damaged: its sha256 is [0-9a-f]{64}, but it was written as [0-9a-f]{64}\. It was not used\./);
      assert.deepEqual(await machines(), before);
    });

    it('truncated', async () => {
      const before = await machines();
      const cut = await damagedCopy((path) => truncateSync(path, 1000));
      await assert.rejects(resumeBottle(world.services(), cut, { signal: signal(), asSlug: 'gamma' }), /is 1000 bytes, but it was written as \d+ bytes: it is truncated or was changed\. It was not used\./);
      assert.deepEqual(await machines(), before);
    });
  });

  describe('a failure after create leaves no machine behind', () => {
    for (const [point, step] of [['create', 'Creating the machine from the snapshot'], ['start', 'Starting the machine'], ['exec', 'Preparing it for the agent']] as const) {
      it(`fails at ${point}`, async () => {
        const before = await machines();
        const undo = world.withEnv({ SMOLVM_SIM_FAIL: `${point}@bot-bottle-delta`, SMOLVM_SIM_FAIL_MESSAGE: `injected ${point} failure` });
        try {
          const error = await resumeBottle(world.services(), snapshot, { signal: signal(), asSlug: 'delta' }).catch((e) => e);
          assert.equal(error?.message, `${step} failed: smolvm exited with status 1: Error: injected ${point} failure`);
        } finally {
          undo();
        }
        assert.deepEqual(await machines(), before);
      });
    }
  });

  // Last: it freezes eps twice more, after the test above froze it once and resumed it.
  describe('the history', () => {
    it('three freezes with keep 2 prune the oldest unpinned while a pinned one survives, and the pinned older snapshot resumes with its own files', async () => {
      const machine = 'bot-bottle-eps';
      const services = world.services({ snapshotsKeep: 2 });
      const store = services.store;
      const first = (await store.readSnapshot('eps'))!;
      await labelSnapshot(store, first, { pinned: true, name: 'known good', note: 'before the agent ran' });
      for (const generation of ['second', 'third']) {
        world.sim('machine', 'exec', '--name', machine, '--', 'sh', '-c', `echo ${generation} > /home/node/generation`);
        await freezeBottle(services, 'eps', { signal: signal() });
      }

      const history = await store.readHistory('eps');
      assert.deepEqual(history.map((s) => [s.record?.name, s.record?.pinned, s.record?.sha256]), [['known good', true, first.record?.sha256]], 'the second snapshot was pruned; the pinned first stays');
      assert.match(world.log.text, /Pruned 1 older snapshot\(s\) of eps \(botBottle\.snapshots\.keep is 2\)/);
      const bottle = (await discoverBottles({ listMachines: async () => [], store, prefix: 'bot-bottle-' })).find((b) => b.slug === 'eps');
      assert.deepEqual(bottle?.history?.map((s) => s.historyId), [history[0].historyId]);
      assert.equal(bottle?.snapshotBytes, await store.diskUsage('eps'));

      world.sim('machine', 'stop', '--name', machine);
      deleteMachine(machine);
      await resumeBottle(services, history[0], { signal: signal() });
      assert.ok(!existsSync(`${world.rootfs(machine)}/home/node/generation`), 'the first snapshot, frozen before any generation file, gives back its own files');
      assert.ok(existsSync(`${world.rootfs(machine)}/home/node/.profile`), 'and the rest of the bottle');
      assert.deepEqual((await store.readHistory('eps')).map((s) => s.historyId), [history[0].historyId], 'resuming leaves the history as it was');
    });
  });
});
