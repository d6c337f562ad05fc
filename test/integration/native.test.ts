import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { CancelledError } from '../../src/core/errors';
import { freezeBottle } from '../../src/core/freeze/smolmachines';
import { serveImage } from '../../src/core/oci/endpoint';
import { assembleImage } from '../../src/core/oci/image';
import { digestLayer } from '../../src/core/oci/layer';
import type { CoreSettings } from '../../src/core/settings';
import { readSidecar } from '../sim/smolmachine';
import { liveChildGroups } from '../../src/core/run';
import { groupsLeftAfter } from '../support/processes';
import { describeTree, EXCLUDED_TOP, sha256, SIM_BIN, startWorld, type Entry, type World } from '../support/world';

const signal = () => new AbortController().signal;

/** Clients of an endpoint in this process must not block its event loop: never execFileSync them. */
function client(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 120_000 }, (error, stdout, stderr) => (error ? reject(new Error(`${file} ${args.join(' ')}: ${stderr}`)) : resolve(stdout)));
  });
}
const NO_DOCKER_TOOLS = { smolvm: SIM_BIN, docker: '/nonexistent/docker', crane: '/nonexistent/crane', skopeo: '/nonexistent/skopeo', registry: '/nonexistent/registry' };

/** Status of GET /v2/ at a host:port, or the connection error's code. */
function probe(hostPort: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`http://${hostPort}/v2/`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

const shape = (tree: Map<string, Entry>) => [...tree].map(([p, e]) => `${p} ${e.type} ${e.mode.toString(8)} ${e.content ?? ''}`).sort();
const shapeWithOwners = (tree: Map<string, Entry>) => [...tree].map(([p, e]) => `${p} ${e.type} ${e.mode.toString(8)} ${e.uid} ${e.content ?? ''}`).sort();

describe('native freeze through real parts (stand-in smolvm, tar, skopeo, docker on podman)', function () {
  let world: World;
  /** os.tmpdir() for the code under test: the host temp folders it leaves must be gone. */
  let tempDir: string;
  let restoreTemp: () => void;
  before(async () => {
    world = await startWorld('native');
    tempDir = join(world.root, 'host temp');
    mkdirSync(tempDir);
    restoreTemp = world.withEnv({ TMPDIR: tempDir });
  });
  after(async () => {
    restoreTemp?.();
    await world?.stop();
  });

  /** Services whose docker, registry, crane and skopeo paths all point nowhere. */
  const services = (overrides: Partial<CoreSettings> = {}) => world.services({ paths: NO_DOCKER_TOOLS, ...overrides });
  const restoreTree = (sidecar: string, name: string) => {
    world.sim('machine', 'create', '--name', name, '--from', sidecar);
    return describeTree(world.rootfs(name));
  };
  const pullReferences = () => world.toolLog.lines.flatMap((l) => /pack create --image (\S+)/.exec(l)?.[1] ?? []);

  it('serves an image that skopeo, docker (podman) and the stand-in’s pack all read, with digests that agree', async () => {
    const machine = world.createRunningBottle('clients');
    const vmArchive = '/var/tmp/clients.tar.gz';
    world.sim('machine', 'exec', '--name', machine, '--', 'tar', '--create', '--gzip', ...EXCLUDED_TOP.map((d) => `--exclude=./${d}`), `--file=${vmArchive}`, '--directory=/', '.');
    const archive = join(tempDir, 'clients.tar.gz');
    await client(SIM_BIN, ['machine', 'cp', `${machine}:${vmArchive}`, archive]);
    const layer = await digestLayer(archive, { gzip: true });
    assert.equal(layer.diffId, `sha256:${sha256(execFileSync('gzip', ['-dc', archive], { maxBuffer: 1 << 30 }))}`);
    const image = assembleImage({ architecture: 'amd64', layerFile: archive, layer, gzip: true });
    const endpoint = await serveImage(image, { pullHost: '127.0.0.1', log: world.toolLog });
    const ref = endpoint.pullReference;
    try {
      const inspected = JSON.parse(await client('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]));
      assert.equal(inspected.Digest, image.manifest.digest);
      assert.deepEqual(inspected.Layers, [layer.digest]);
      assert.deepEqual([inspected.Os, inspected.Architecture], ['linux', 'amd64']);
      const config = JSON.parse(await client('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${ref}`]));
      assert.deepEqual(config.rootfs.diff_ids, [layer.diffId]);

      const copied = join(world.root, 'skopeo copy');
      await client('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `dir:${copied}`]);
      assert.deepEqual(readFileSync(join(copied, 'manifest.json')), image.manifest.bytes);
      assert.equal(`sha256:${sha256(readFileSync(join(copied, layer.digest.slice(7))))}`, layer.digest);

      await client('docker', ['pull', ref]);
      try {
        assert.deepEqual(JSON.parse(execFileSync('docker', ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref], { encoding: 'utf8' })), [layer.diffId]);
        assert.equal(execFileSync('docker', ['run', '--rm', ref, 'sh', '-c', 'id -un; pwd'], { encoding: 'utf8' }), 'node\n/home/node\n');
      } finally {
        execFileSync('docker', ['rmi', '--force', ref], { stdio: 'ignore' });
      }

      const packed = await client(SIM_BIN, ['pack', 'create', '--image', ref, '-o', join(world.root, 'clients-pack')]);
      assert.match(packed, new RegExp(`Layer 1/1: ${layer.digest.slice(0, 19)}`));
      const sidecar = readSidecar(join(world.root, 'clients-pack.smolmachine')).manifest;
      assert.equal(sidecar.digest, image.manifest.digest);
      assert.deepEqual(sidecar.assets.layers.map((l) => l.digest), [layer.digest]);
      // A pack records no user (crates/smolvm-pack/src/format.rs:334-419).
      assert.deepEqual(['user' in sidecar, sidecar.workdir], [false, '/home/node']);
    } finally {
      await endpoint.close();
    }
    assert.equal(await probe(ref.split('/')[0]), 'ECONNREFUSED');
  });

  it('freezes without docker, a registry or skopeo to the same files as the docker path, and serves nothing afterwards', async () => {
    const machine = world.createRunningBottle('round');
    world.sim('machine', 'exec', '--name', machine, '--', 'sh', '-c', 'mkdir -p /home/node/work && echo hello > /home/node/work/a.txt && ln -s a.txt /home/node/work/b && chown -R 1000:1000 /home/node/work && echo scratch > /var/tmp/scratch');
    const original = describeTree(world.rootfs(machine), [...EXCLUDED_TOP]);

    const viaDocker = await freezeBottle(world.services({ imageBuilder: 'docker' }), 'round', { signal: signal() });
    assert.equal(viaDocker.record?.imageBuilder, 'docker');
    const dockerTree = restoreTree(viaDocker.sidecar, 'check-round-docker');

    const logFrom = world.toolLog.lines.length;
    const viaNative = await freezeBottle(services(), 'round', { signal: signal() });
    assert.equal(viaNative.record?.imageBuilder, 'native');
    assert.equal(viaNative.record?.compression, 'gzip');
    assert.deepEqual(viaNative.record?.steps.map((s) => s.id), ['probe', 'inspect', 'list', 'archive', 'copy', 'image', 'pack']);
    assert.equal(viaNative.record?.sha256, sha256(readFileSync(viaNative.sidecar)));
    const nativeTree = restoreTree(viaNative.sidecar, 'check-round-native');

    assert.deepEqual(shape(nativeTree), shape(dockerTree));
    assert.deepEqual(shape(nativeTree), shape(original));
    const commands = world.toolLog.lines.slice(logFrom).filter((l) => l.startsWith('$ '));
    assert.ok(commands.every((l) => /^\$ \S*smolvm /.test(l)), `only smolvm ran:\n${commands.join('\n')}`);
    assert.ok(commands.some((l) => l.includes('tar --create --gzip')));
    const [ref] = pullReferences().slice(-1);
    assert.match(ref, /^127\.0\.0\.1:\d+\/bot-bottle-committed\/[0-9a-f]{32}:[0-9a-f]{16}$/);
    assert.equal(await probe(ref.split('/')[0]), 'ECONNREFUSED', 'nothing is served after the freeze');
    assert.deepEqual(readdirSync(tempDir).filter((n) => n.startsWith('bot-bottle-')), [], 'no host temp folder is left');
    assert.ok(!readdirSync(`${world.rootfs(machine)}/var/tmp`).some((n) => n.startsWith('.bot-bottle-commit')), 'no archive is left in the VM');
  });

  it('freezes with an uncompressed archive through a pull host name the VM knows, to the same files, leaving out a mounted host folder from the space check and the archive alike', async () => {
    const machine = 'bot-bottle-plain';
    const hostFolder = join(world.root, 'plain project');
    mkdirSync(hostFolder);
    writeFileSync(join(hostFolder, 'secret.txt'), 'stays on the host\n');
    world.sim('machine', 'create', '--name', machine, '--image', 'node:22', '-v', `${hostFolder}:/workspace`);
    world.sim('machine', 'start', '--name', machine);
    assert.equal(world.sim('machine', 'exec', '--name', machine, '--', 'cat', '/workspace/secret.txt'), 'stays on the host\n', 'tar in the VM would see the host folder');
    const original = describeTree(world.rootfs(machine), [...EXCLUDED_TOP, 'workspace']);
    const logFrom = world.toolLog.lines.length;
    const mainFrom = world.log.lines.length;

    // crane speaks plain http to `localhost:PORT`; to host.smolvm.internal only https (ggcr@v0.19.0:pkg/name/registry.go:81-101).
    const snapshot = await freezeBottle(services({ compression: 'none', pullHost: 'localhost' }), 'plain', { signal: signal() });

    assert.equal(snapshot.record?.compression, 'none');
    assert.deepEqual(snapshot.record?.mountsLeftOut, ['/workspace']);
    const lines = world.toolLog.lines.slice(logFrom);
    assert.ok(lines.some((l) => /tar --create --exclude=\.\/proc .*--exclude=\.\/workspace --file=\/var\/tmp\/\.bot-bottle-commit\.tar /.test(l)), 'tar without --gzip, to a .tar, without the mount');
    assert.ok(lines.some((l) => l.includes('df -Pk /var/tmp')) && lines.some((l) => l.includes('du -sk --exclude=/proc') && l.includes('--exclude=/workspace /')), 'free space was checked first, for what tar archives');
    assert.ok(world.log.lines.slice(mainFrom).includes('Left out of the snapshot: /workspace (a host folder).'));
    assert.match(pullReferences().at(-1) ?? '', /^localhost:\d+\//);
    const restored = restoreTree(snapshot.sidecar, 'check-plain');
    assert.ok(![...restored.keys()].some((path) => path.startsWith('workspace')), 'nothing of the host folder is in the snapshot');
    assert.deepEqual(shape(restored), shape(original));
  });

  it('refuses an uncompressed archive when the VM’s /var/tmp is short, keeping the last good snapshot', async () => {
    const machine = world.createRunningBottle('short');
    const good = await freezeBottle(services(), 'short', { signal: signal() });
    const goodBytes = readFileSync(good.sidecar);
    const varTmp = `${world.rootfs(machine)}/var/tmp`;
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', varTmp]);
    try {
      await assert.rejects(
        freezeBottle(services({ compression: 'none' }), 'short', { signal: signal() }),
        /Not enough free space in the bottle's \/var\/tmp .*botBottle\.freeze\.compression/,
      );
    } finally {
      execFileSync('umount', [varTmp]);
    }
    assert.deepEqual(readFileSync(good.sidecar), goodBytes);
    assert.ok(!world.toolLog.lines.some((l) => l.includes('--file=/var/tmp/.bot-bottle-commit.tar ') && l.includes('bot-bottle-short')), 'tar never ran');
  });

  it('reports the copy as a percentage of the archive’s size, which smolvm’s download progress lacks (src/cli/machine.rs:4989-4992), and raises smolvm’s transfer cap for its own copy when the archive is over it (src/agent/client.rs:2205-2260, 2630-2635)', async () => {
    // The whole root filesystem: a smaller archive is copied before a second progress line comes.
    world.createRunningBottle('progress', { wholeRootfs: true });
    // The stand-in caps downloads as smolvm does; a cap below this archive stands in for a root over 4 GiB.
    const lowCap = 1024 * 1024;
    const undo = world.withEnv({ SMOLVM_SIM_CP_RATE: `${4 * 1024 * 1024}@bot-bottle-progress`, SMOLVM_FILE_TRANSFER_MAX_BYTES: String(lowCap) });
    const copy: Array<{ fraction: number; detail?: string }> = [];
    const logFrom = world.log.lines.length;
    let snapshot;
    try {
      snapshot = await freezeBottle(services(), 'progress', {
        signal: signal(),
        onProgress: (p) => p.stepId === 'copy' && p.detail && copy.push({ fraction: p.fraction, detail: p.detail }),
      });
    } finally {
      undo();
    }
    const archiveBytes = snapshot.record?.archiveBytes ?? 0;
    assert.ok(archiveBytes > lowCap, `the archive (${archiveBytes} bytes) is over the cap the environment set`);
    const logged = world.log.lines.slice(logFrom);
    assert.ok(logged.some((l) => l.includes(`raises smolvm's transfer cap to 4.3 GB (SMOLVM_FILE_TRANSFER_MAX_BYTES=${4 * 1024 ** 3})`)), logged.join('\n'));
    assert.ok(copy.length >= 2, `copy progress: ${JSON.stringify(copy)}`);
    for (const { detail } of copy) assert.match(detail ?? '', /^[\d.]+ [KMG]?B of [\d.]+ [KMG]?B \(\d{1,3}%\), [\d.]+ [KMG]?B\/s$/);
    const fractions = copy.map((c) => c.fraction);
    assert.deepEqual(fractions, [...fractions].sort((a, b) => a - b), 'never goes back');
    assert.ok(fractions[0] < fractions.at(-1)!, `moves forward: ${fractions.join(', ')}`);
  });

  it('refuses before copying when the host’s temp folder has no room for the archive, and leaves nothing behind', async () => {
    const machine = world.createRunningBottle('roomless');
    const smallTemp = join(world.root, 'small temp');
    mkdirSync(smallTemp);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', smallTemp]);
    const undo = world.withEnv({ TMPDIR: smallTemp });
    const logFrom = world.toolLog.lines.length;
    try {
      await assert.rejects(
        freezeBottle(services({ compression: 'none' }), 'roomless', { signal: signal() }),
        (error: Error) =>
          new RegExp(`Not enough free space on this computer for the bottle's archive: it is [\\d.]+ [KMG]?B, and the disk of ${smallTemp} has [\\d.]+ [KM]?B free\\. Nothing was copied\\.`).test(error.message),
      );
      assert.deepEqual(readdirSync(smallTemp), [], 'no temp folder is left');
    } finally {
      undo();
      execFileSync('umount', [smallTemp]);
    }
    assert.ok(!world.toolLog.lines.slice(logFrom).some((l) => l.includes('machine cp') && l.includes('.bot-bottle-commit')), 'the archive was never copied');
    assert.ok(!readdirSync(`${world.rootfs(machine)}/var/tmp`).some((n) => n.startsWith('.bot-bottle-commit')), 'no archive is left in the VM');
    assert.equal(await services().store.readSnapshot('roomless'), undefined, 'no snapshot');
  });

  it('stops serving when the freeze is cancelled during the pack', async () => {
    world.createRunningBottle('cancel');
    const undo = world.withEnv({ SMOLVM_SIM_HANG: 'pack:pull' });
    const controller = new AbortController();
    const before = pullReferences().length;
    let packGroups: number[] = [];
    try {
      const freezing = freezeBottle(services(), 'cancel', { signal: controller.signal });
      while (pullReferences().length === before) await new Promise((resolve) => setTimeout(resolve, 50));
      const hostPort = (pullReferences().at(-1) ?? '').split('/')[0];
      assert.equal(await probe(hostPort), 401, 'served (to those with the credentials) while the pack runs');
      packGroups = liveChildGroups().map((g) => g.pgid);
      controller.abort();
      await assert.rejects(freezing, CancelledError);
      assert.equal(await probe(hostPort), 'ECONNREFUSED');
    } finally {
      undo();
    }
    assert.ok(packGroups.length > 0);
    assert.deepEqual(await groupsLeftAfter(packGroups, 5000), [], 'the pack and everything it started are gone');
    assert.deepEqual(readdirSync(tempDir).filter((n) => n.startsWith('bot-bottle-')), []);
  });

  it('row 5: what ps shows of the pack (the pull reference) does not get the image: the pull needs the freeze’s credentials, which only the pack has', async () => {
    world.createRunningBottle('private');
    const undo = world.withEnv({ SMOLVM_SIM_HANG: 'pack:pull' });
    const controller = new AbortController();
    const before = pullReferences().length;
    try {
      const freezing = freezeBottle(services(), 'private', { signal: controller.signal });
      while (pullReferences().length === before) await new Promise((resolve) => setTimeout(resolve, 50));
      const reference = pullReferences().at(-1)!;
      const pack = liveChildGroups().find((g) => g.tool === 'smolvm')!;
      const argv = readFileSync(`/proc/${pack.pgid}/cmdline`, 'utf8').split('\0');
      assert.ok(argv.includes(reference), 'the reference is on the command line, for every user to read');
      const inspect = await client('skopeo', ['inspect', '--tls-verify=false', `docker://${reference}`]).then(() => 'served', (error: Error) => error.message);
      assert.match(inspect, /unauthorized|authentication required/i, 'the reference alone is refused');

      const password = /\0BOT_BOTTLE_PULL_PASSWORD=([0-9a-f]{64})\0/.exec(`\0${readFileSync(`/proc/${pack.pgid}/environ`, 'utf8')}`)?.[1];
      assert.ok(password, 'the pack holds the password in its environment, which only its user can read');
      const served = await client('skopeo', ['inspect', '--tls-verify=false', '--creds', `bot-bottle:${password}`, `docker://${reference}`]);
      assert.match(served, /"Architecture"/, 'with the credentials, the image is served');
      assert.ok(!argv.some((arg) => arg.includes(password)) && !world.toolLog.text.includes(password) && !world.log.text.includes(password), 'the password is on no command line and in no log');
      controller.abort();
      await assert.rejects(freezing, CancelledError);
    } finally {
      undo();
    }
  });

  it('freezes again with only what changed, stacked on the last snapshot’s layers and flattened for the pack, to the tree the bottle has', async () => {
    const machine = world.createRunningBottle('delta');
    // A path changed within the clock slack before a listing counts as changed at the next freeze
    // (src/core/freeze/delta.ts): the bottle's files are made long enough before the first listing.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    world.sim('machine', 'exec', '--name', machine, '--', 'sh', '-c', 'mkdir -p /opt/gone /opt/was-dir && echo a > /opt/gone/a && echo b > /opt/was-dir/b && ln -s gone /opt/link');
    const first = await freezeBottle(services({ incremental: true }), 'delta', { signal: signal() });
    assert.deepEqual(first.record?.layers?.map((l) => l.role), ['full']);
    assert.equal(first.record?.listing?.machine, machine);
    world.sim('machine', 'exec', '--name', machine, '--', 'sh', '-c',
      'echo changed >> /home/node/notes.txt && rm -rf /opt/gone /opt/was-dir && echo now-a-file > /opt/was-dir && ln -sfn elsewhere /opt/link && mkdir -p "/srv/new dir" && echo x > "/srv/new dir/f" && chown -R 1000:1000 /srv && chmod 0700 /home/node');
    const logFrom = world.toolLog.lines.length;
    const second = await freezeBottle(services({ incremental: true }), 'delta', { signal: signal() });
    assert.deepEqual(second.record?.layers?.map((l) => l.role), ['full', 'whiteouts', 'delta']);
    assert.equal(second.record?.layers?.[0].digest, first.record?.layers?.[0].digest, 'the full layer is shared, not archived again');
    assert.ok(second.record!.layers![2].size < first.record!.layers![0].size / 10, 'the delta is small');
    assert.ok(world.toolLog.lines.slice(logFrom).some((l) => /tar --create --gzip .*--no-recursion .*--files-from=\/var\/tmp\/\.bot-bottle-files/.test(l)), 'only the listed paths were archived');
    assert.deepEqual(
      shapeWithOwners(restoreTree(second.sidecar, 'check-delta')),
      shapeWithOwners(describeTree(world.rootfs(machine), [...EXCLUDED_TOP])),
      'deleted, replaced and relinked paths too: smolvm’s pack merges several layers with cp -a, so the pack gets one',
    );
  });
});
