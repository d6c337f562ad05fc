import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { ownerOfTempDir } from '../../src/core/fsutil';
import type { PipelineProgress } from '../../src/core/pipeline';
import { describeTree, EXCLUDED_TOP, processesMentioning, sha256, startWorld, type World } from '../support/world';

const VM_ARCHIVE = 'var/tmp/.bot-bottle-commit.tar.gz';

describe('freeze through real parts, docker image path (stand-in smolvm, tar, docker on podman, registry, skopeo)', function () {
  let world: World;
  before(async () => {
    world = await startWorld('freeze');
  });
  after(async () => world?.stop());

  it('snapshots a running bottle: same files, nothing ephemeral, no leftovers, a true record', async () => {
    const machine = world.createRunningBottle('alpha');
    world.sim('machine', 'exec', '--name', machine, '--', 'sh', '-c', 'echo scratch > /var/tmp/scratch && mkdir -p /proc/1 && echo x > /proc/1/status');
    const tempBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('bot-bottle-'));
    const progress: PipelineProgress[] = [];

    const snapshot = await freezeBottle(world.services({ imageBuilder: 'docker' }), 'alpha', { signal: new AbortController().signal, onProgress: (p) => progress.push(p) });

    assert.equal(snapshot.sidecar, `${world.stateRoot}/alpha/committed-smolmachine.smolmachine`);
    assert.ok(existsSync(`${world.stateRoot}/alpha/committed-smolmachine`), 'the launcher sits beside the sidecar');
    assert.equal(snapshot.record?.sha256, sha256(readFileSync(snapshot.sidecar)));
    assert.equal(snapshot.record?.sidecarBytes, snapshot.sizeBytes);
    assert.deepEqual(snapshot.record?.steps.map((s) => s.id), ['probe', 'archive', 'copy', 'build', 'save', 'push', 'pack']);
    assert.deepEqual([...new Set(progress.map((p) => p.stepTitle))], [
      'Checking that the bottle answers', 'Archiving the root filesystem', 'Copying the archive', 'Building the image',
      'Saving the image', 'Pushing the image to a local registry', 'Packing the snapshot', 'Keeping the snapshot', 'Leaving the snapshot where bot-bottle looks',
    ]);

    // The sidecar restores (through the stand-in's own unpacking) to the same files, minus the ephemeral ones.
    world.sim('machine', 'create', '--name', 'check-alpha', '--from', snapshot.sidecar);
    const original = describeTree(world.rootfs(machine), [...EXCLUDED_TOP, VM_ARCHIVE]);
    const restored = describeTree(world.rootfs('check-alpha'));
    for (const top of EXCLUDED_TOP) assert.ok(!restored.has(top), `${top} must not be in the snapshot`);
    assert.ok(original.has('home/node/.profile') && original.get('tmp/claude-1000') === undefined);
    const strip = (m: Map<string, { type: string; mode: number; content?: string }>) => [...m].map(([p, e]) => `${p} ${e.type} ${e.mode.toString(8)} ${e.content ?? ''}`).sort();
    assert.deepEqual(strip(restored), strip(original));

    // Nothing left behind: no archive in the VM, no temp folder, no image tarball, no registry.
    assert.ok(!existsSync(`${world.rootfs(machine)}/${VM_ARCHIVE}`), 'the archive in the VM is removed');
    // Only this process's temp folders (their names carry its pid): other runs make theirs meanwhile.
    assert.deepEqual(readdirSync(tmpdir()).filter((n) => ownerOfTempDir(n) === process.pid && !tempBefore.includes(n)), []);
    assert.deepEqual(readdirSync(`${world.stateRoot}/alpha`).sort(), ['committed-smolmachine', 'committed-smolmachine.smolmachine', 'snapshot.json']);
    assert.deepEqual(processesMentioning('registry serve').filter((l) => l.includes('bot-bottle-registry')), []);
    for (const line of ['tar --create --gzip', 'build --tag bot-bottle-committed-alpha:latest', 'pack create --image 127.0.0.1:']) {
      assert.ok(world.toolLog.lines.some((l) => l.includes(line)), `the tools log shows "${line}"`);
    }
  });
});
