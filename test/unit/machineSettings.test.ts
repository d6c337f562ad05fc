import assert from 'node:assert/strict';
import { UserError } from '../../src/core/errors';
import { checkSize, createOptionsFor, describeCarried, previewResume, settingsOf, sizeTextProblem, UNRECORDED_SETTINGS } from '../../src/core/machineSettings';
import { parseMachine, SmolvmCli } from '../../src/core/tools/smolvm';

/** One object of `machine status --json` as smolvm 1.9.3 prints it (src/cli/vm_common.rs:2469-2520), trimmed to what matters here. */
const status = (overrides: Record<string, unknown> = {}) =>
  parseMachine({ name: 'bot-bottle-a', state: 'running', cpus: 2, memory_mib: 2048, mounts: 0, ports: 0, storage_gb: null, overlay_gb: null, labels: {}, restart_policy: 'never', network: true, ...overrides });

describe('machine settings carried by a snapshot', () => {
  it('carries what smolvm reports: network, size, disks and labels', () => {
    const settings = settingsOf(status({ storage_gb: 30, overlay_gb: 5, labels: { team: 'a' } }));
    assert.deepEqual(createOptionsFor(settings), { network: true, cpus: 2, memoryMib: 2048, storageGb: 30, overlayGb: 5, labels: { team: 'a' } });
    assert.equal(describeCarried(settings), 'network on, 2 CPUs, 2048 MiB memory, 30 GiB storage, 5 GiB overlay, labels team=a');
  });

  it('leaves the disk sizes to smolvm’s defaults when it reports null (src/data/storage.rs:10,13)', () => {
    const options = createOptionsFor(settingsOf(status()));
    assert.equal(options.storageGb, undefined);
    assert.equal(options.overlayGb, undefined);
  });

  it('names the allow-list as not carried only when the network is on: allow flags imply --net (src/cli/machine.rs:100)', () => {
    const allowList = (lost: string[]) => lost.some((l) => l.startsWith('its egress allow-list'));
    assert.equal(allowList(settingsOf(status()).notCarried), true);
    assert.equal(allowList(settingsOf(status({ network: false })).notCarried), false);
  });

  it('names mounts, ports and a restart policy, which smolvm create cannot be given back', () => {
    const lost = settingsOf(status({ mounts: 2, ports: 1, restart_policy: 'always' })).notCarried;
    assert.ok(lost.includes('2 mounts (-v): smolvm reports how many, not which'), lost.join('\n'));
    assert.ok(lost.includes('1 port mapping (-p): smolvm reports how many, not which'), lost.join('\n'));
    assert.ok(lost.some((l) => l.startsWith('its restart policy "always"')), lost.join('\n'));
    assert.ok(!settingsOf(status()).notCarried.some((l) => /mount|port mapping|restart/.test(l)));
  });

  it('carries nothing for a snapshot without settings', () => {
    assert.deepEqual(createOptionsFor(undefined), {});
  });
});

describe('the size a resume creates the machine with', () => {
  const recorded = settingsOf(status({ storage_gb: 30, labels: { team: 'a' } }));
  const createArgv = (options: ReturnType<typeof createOptionsFor>) =>
    new SmolvmCli('smolvm').create({ name: 'bot-bottle-a', from: '/s/a.smolmachine', ...options }).argv.slice(3).join(' ');

  it('passes the recorded size to create --from when none is chosen', () => {
    assert.equal(createArgv(createOptionsFor(recorded)), '--name bot-bottle-a --from /s/a.smolmachine --cpus 2 --mem 2048 --net --storage 30 --label team=a');
  });

  it('passes a chosen size instead, whole: a field left empty is not passed, the rest of the settings still are', () => {
    assert.equal(createArgv(createOptionsFor(recorded, { cpus: 3, memoryMib: 1024, overlayGb: 12 })), '--name bot-bottle-a --from /s/a.smolmachine --cpus 3 --mem 1024 --net --overlay 12 --label team=a');
  });

  it('passes a chosen size for a snapshot with no record of its machine, and nothing else', () => {
    assert.equal(createArgv(createOptionsFor(undefined, { cpus: 6 })), '--name bot-bottle-a --from /s/a.smolmachine --cpus 6');
  });

  it('the dialog before creating names the chosen size and what is not carried over', () => {
    const preview = previewResume(recorded, { cpus: 3, memoryMib: 1024 });
    assert.equal(preview.carried, 'network on, 3 CPUs, 1024 MiB memory, labels team=a');
    assert.ok(preview.notCarried.some((l) => l.startsWith('its egress allow-list')), preview.notCarried.join('\n'));
    assert.deepEqual(previewResume(recorded).size, { cpus: 2, memoryMib: 2048, storageGb: 30, overlayGb: undefined });
    assert.deepEqual(previewResume(undefined), { carried: '', notCarried: [UNRECORDED_SETTINGS], size: {} });
  });

  describe('validation against smolvm 1.9.3’s limits', () => {
    const problem = (field: Parameters<typeof sizeTextProblem>[0], text: string, settings = recorded) => sizeTextProblem(field, text, settings);

    it('takes an empty field as "not given" and refuses anything but a whole number', () => {
      assert.equal(problem('cpus', ''), undefined);
      assert.equal(problem('storageGb', '  '), undefined);
      for (const text of ['two', '2.5', '-1', '1e3', '0x10']) assert.equal(problem('cpus', text), 'Enter a whole number.', text);
    });

    it('CPUs: 1 to 16 (src/data/resources.rs:77-79,85-97)', () => {
      assert.match(problem('cpus', '0') ?? '', /at least 1 CPU\./);
      assert.equal(problem('cpus', '1'), undefined);
      assert.equal(problem('cpus', '16'), undefined);
      assert.match(problem('cpus', '17') ?? '', /at most 16 CPUs/);
    });

    it('memory: at least 64 MiB, at most a u32 (src/data/resources.rs:74-75,98-106; src/cli/machine.rs:2956-2958)', () => {
      assert.match(problem('memoryMib', '63') ?? '', /at least 64 MiB/);
      assert.equal(problem('memoryMib', '64'), undefined);
      assert.equal(problem('memoryMib', '4294967295'), undefined);
      assert.match(problem('memoryMib', '4294967296') ?? '', /at most 4294967295 MiB/);
    });

    it('disks: 0 GiB is refused (src/data/resources.rs:107-121)', () => {
      assert.match(problem('storageGb', '0') ?? '', /at least 1 GiB/);
      assert.match(problem('overlayGb', '0') ?? '', /at least 1 GiB/);
      assert.equal(problem('overlayGb', '1'), undefined);
    });

    it('refuses smolvm’s default CPUs or memory when the snapshot holds another: create --from would keep the snapshot’s (src/cli/machine.rs:3335-3345)', () => {
      assert.match(problem('cpus', '4') ?? '', /reads 4 CPUs as “not given” and would keep the snapshot’s 2/);
      assert.match(problem('memoryMib', '8192') ?? '', /keep the snapshot’s 2048/);
      assert.equal(problem('cpus', '4', settingsOf(status({ cpus: 4 }))), undefined, 'the default is what the snapshot holds');
      assert.equal(sizeTextProblem('cpus', '4', undefined), undefined, 'no record: nothing to compare with');
      assert.equal(problem('storageGb', '20'), undefined, 'disks have no such rule (src/cli/machine.rs:3419-3420)');
    });

    it('checkSize refuses a size the same way, with a UserError that names the field', () => {
      assert.throws(() => checkSize({ cpus: 3, memoryMib: 32 }, recorded), (error: unknown) => error instanceof UserError && /The memory asked for the resumed machine \(32\) cannot be used: smolvm needs at least 64 MiB\./.test(error.message));
      assert.doesNotThrow(() => checkSize({ cpus: 3 }, recorded));
    });
  });
});
