import assert from 'node:assert/strict';
import { createOptionsFor, describeCarried, settingsOf } from '../../src/core/machineSettings';
import { parseMachine } from '../../src/core/tools/smolvm';

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
