/**
 * The smolvm stand-in against smolvm v1.9.3's own source (test/sim/SMOLVM-SOURCE.md), one test
 * per behaviour, each citing the file and line of smol-machines/smolvm it follows.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipLayer, MEDIA, pushImage, startRegistry, tarDirectory, type Layer, type Registry } from '../support/registry';
import { ensureSimBuilt, createRunningMachine, machineRootfs, makeSimDataDir, runSim, type SimDataDir, type SimResult } from '../support/sim';
import { buildTar, layerOf, type Member } from './tar-build';

const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';

let data: SimDataDir;

function sim(args: string[], env: Record<string, string> = {}): Promise<SimResult> {
  return runSim(args, { dataDir: data.dataDir, env });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await sim(args, env);
  assert.equal(result.exitCode, 0, `smolvm ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function status(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await ok(['machine', 'status', '--name', name, '--json'])) as Record<string, unknown>;
}

/** The manifest JSON of a sidecar, located through its footer. */
function manifestOf(sidecar: string): Record<string, unknown> {
  const bytes = readFileSync(sidecar);
  const start = Number(bytes.readBigUInt64LE(bytes.length - 64 + 36));
  return JSON.parse(bytes.subarray(start, bytes.length - 64).toString()) as Record<string, unknown>;
}

/** The compressed assets at the start of a sidecar (its footer's assets size). */
function assetsOf(sidecar: string): Buffer {
  const bytes = readFileSync(sidecar);
  return bytes.subarray(0, Number(bytes.readBigUInt64LE(bytes.length - 64 + 28)));
}

/** Every path under `root` that is a character device or carries a whiteout marker's name. */
function markersUnder(root: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isCharacterDevice() || entry.name.startsWith('.wh.')) found.push(path.slice(root.length + 1));
  }
  return found;
}

describe('smolvm stand-in follows smolvm v1.9.3’s source', function () {
  this.timeout(120_000);
  let registry: Registry;
  /** Packed with --cpus 2 --mem 2048 from an image whose WorkingDir is /home/node. */
  let sidecar: string;
  let packed: SimResult;
  let packedLayerDigest: string;

  before(async () => {
    ensureSimBuilt();
    data = makeSimDataDir();
    await ok(['machine', 'create', '--name', 'image-source', '--image', 'node:22']);
    registry = await startRegistry();
    const layer = gzipLayer(tarDirectory(machineRootfs(data.dataDir, 'image-source')));
    const pushed = await pushImage(registry.pushHost, 'bot-bottle/source', 'v1', [layer], { config: { WorkingDir: '/home/node' } });
    const out = join(data.scratch, 'sized');
    packed = await sim(['pack', 'create', '--image', pushed.ref, '-o', out, '--cpus', '2', '--mem', '2048']);
    assert.equal(packed.exitCode, 0, packed.stderr);
    sidecar = `${out}.smolmachine`;
    packedLayerDigest = pushed.layerDigests[0];
  });

  after(async () => {
    await registry?.stop();
    data?.cleanup();
  });

  describe('machine create --from', () => {
    it('pack create records network false and the size it was given (src/cli/pack.rs:480-482)', () => {
      const manifest = manifestOf(sidecar);
      assert.deepEqual([manifest.network, manifest.cpus, manifest.mem], [false, 2, 2048]);
    });

    it('network is the pack’s OR --net OR any --allow-cidr/--allow-host (src/cli/machine.rs:100, 112-128, 3347-3358)', async () => {
      const cases: Array<[string, string[], boolean]> = [
        ['net-none', [], false],
        ['net-flag', ['--net'], true],
        ['net-cidr', ['--allow-cidr', '127.0.0.16/32'], true],
        ['net-host', ['--allow-host', '127.0.0.1'], true],
        ['net-local', ['--outbound-localhost-only'], true],
      ];
      for (const [name, flags, network] of cases) {
        await ok(['machine', 'create', '--name', name, '--from', sidecar, ...flags]);
        assert.equal((await status(name)).network, network, name);
      }
    });

    it('an --allow-cidr that is no CIDR is a clap usage error, exit 2 (src/smolfile.rs:86-104, src/cli/machine.rs:3001)', async () => {
      const result = await sim(['machine', 'create', '--name', 'bad-cidr', '--from', sidecar, '--allow-cidr', '127.0.0.300/32']);
      assert.equal(result.exitCode, 2, result.stderr);
      assert.match(result.stderr, /^error: invalid value '127\.0\.0\.300\/32' for '--allow-cidr <CIDR>': invalid CIDR/);
    });

    it('--cpus/--mem win only when they differ from 4/8192 (src/cli/machine.rs:3336-3345)', async () => {
      await ok(['machine', 'create', '--name', 'size-default', '--from', sidecar, '--cpus', '4', '--mem', '8192']);
      await ok(['machine', 'create', '--name', 'size-other', '--from', sidecar, '--cpus', '3', '--mem', '1024']);
      const [kept, changed] = [await status('size-default'), await status('size-other')];
      assert.deepEqual([kept.cpus, kept.memory_mib], [2, 2048]);
      assert.deepEqual([changed.cpus, changed.memory_mib], [3, 1024]);
    });

    it('-w is ignored: the pack’s workdir is used (src/cli/machine.rs:3418)', async () => {
      await createRunningMachine(data.dataDir, 'workdir-from', ['--from', sidecar, '-w', '/tmp']);
      assert.equal(await ok(['machine', 'exec', '--name', 'workdir-from', '--', 'sh', '-c', 'pwd']), '/home/node\n');
    });

    it('keeps file owners: no remap to the host user since 1.8.1 (crates/smolvm-pack/src/extract.rs:107-167)', async () => {
      await ok(['machine', 'create', '--name', 'owners-kept', '--from', sidecar]);
      const root = machineRootfs(data.dataDir, 'owners-kept');
      assert.deepEqual([statSync(join(root, 'home/node')).uid, statSync(join(root, 'tmp/claude-1000')).uid, statSync(join(root, 'etc/passwd')).uid], [1000, 1000, 0]);
    });

    it('checks neither the CRC nor a sha256: only pack run does (crates/smolvm-pack/src/packer.rs:600-619, src/cli/pack_run.rs:330-350)', async () => {
      const bytes = readFileSync(sidecar);
      bytes[bytes.length - 64 + 52] ^= 0xff;
      const wrongCrc = join(data.scratch, 'wrong-crc.smolmachine');
      writeFileSync(wrongCrc, bytes);
      await ok(['machine', 'create', '--name', 'wrong-crc', '--from', wrongCrc]);
    });

    it('reads footer versions 1, 2 and 3 and refuses others (crates/smolvm-pack/src/format.rs:62-74, crates/smolvm-pack/src/lib.rs:43-49)', async () => {
      for (const version of [1, 2, 3, 4]) {
        const bytes = readFileSync(sidecar);
        bytes.writeUInt32LE(version, bytes.length - 64 + 8);
        const path = join(data.scratch, `v${version}.smolmachine`);
        writeFileSync(path, bytes);
        const result = await sim(['machine', 'create', '--name', `version-${version}`, '--from', path]);
        if (version <= 3) assert.equal(result.exitCode, 0, result.stderr);
        else assert.match(result.stderr, /^Error: .*unsupported version: 4$/m);
      }
    });

    it('--storage, --overlay and --label are the flags’ (src/cli/machine.rs:3419-3425)', async () => {
      await ok(['machine', 'create', '--name', 'disks', '--from', sidecar, '--storage', '30', '--overlay', '5', '--label', 'team=a', '--label', 'x=']);
      const machine = await status('disks');
      assert.deepEqual([machine.storage_gb, machine.overlay_gb, machine.labels], [30, 5, { team: 'a', x: '' }]);
    });
  });

  describe('pack create --image: image layers, then create --from', () => {
    /** Packs an image of these layers and creates a machine from it; returns the machine's root. */
    async function packAndCreate(name: string, layers: Layer[], env: Record<string, string> = {}): Promise<string> {
      const pushed = await pushImage(registry.pushHost, `bot-bottle/${name}`, 'v1', layers);
      const out = join(data.scratch, name);
      await ok(['pack', 'create', '--image', pushed.ref, '-o', out], env);
      await ok(['machine', 'create', '--name', name, '--from', `${out}.smolmachine`]);
      return machineRootfs(data.dataDir, name);
    }

    const file = (name: string, content: string, extra: Partial<Member> = {}): Member => ({ name, content, ...extra });

    it('reads a layer’s compression from its first bytes, never its media type: zstd, gzip of several members, plain tar (crates/smolvm-oci-layer/src/lib.rs:167-200, crates/smolvm-agent/src/storage.rs:2134-2144)', async () => {
      const long = 'd'.repeat(2000);
      const root = await packAndCreate('compressions', [
        layerOf(buildTar([file('plain.txt', 'plain\n')]), 'none', MEDIA.ociLayerGzip),
        layerOf(buildTar([file('zstd.txt', 'zstd\n')]), 'zstd', ZSTD_LAYER),
        layerOf(buildTar([file('zstd-as-gzip.txt', 'mislabelled\n')]), 'zstd', MEDIA.ociLayerGzip),
        layerOf(buildTar([file('members.txt', long)]), 'gzip-members', MEDIA.ociLayerTar),
      ]);
      const read = (name: string) => readFileSync(join(root, name), 'utf8');
      assert.deepEqual([read('plain.txt'), read('zstd.txt'), read('zstd-as-gzip.txt'), read('members.txt')], ['plain\n', 'zstd\n', 'mislabelled\n', long]);
    });

    it('one layer comes back as it was: owners, modes, symlinks, hard links; markers, escapes and links to nothing are dropped (crates/smolvm-oci-layer/src/lib.rs:56-92, 235-335; crates/smolvm-agent/src/main.rs:5917-5921, storage.rs:727-746)', async () => {
      const root = await packAndCreate('one-layer', [layerOf(buildTar([
        { name: 'home/', type: 'dir' },
        { name: 'home/agent/', type: 'dir', mode: 0o750, uid: 1000, gid: 1000 },
        file('home/agent/notes', 'notes\n', { mode: 0o604, uid: 1000, gid: 1001 }),
        { name: 'home/agent/twin', type: 'hardlink', link: 'home/agent/notes' },
        { name: 'home/agent/latest', type: 'symlink', link: 'notes', uid: 1000, gid: 1000 },
        { name: 'home/agent/private/', type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
        { name: 'home/agent/orphan', type: 'hardlink', link: 'lower/only' },
        file('home/agent/.wh.lower-file', ''),
        file('home/agent/private/.wh..wh..opq', ''),
        { name: 'outside', type: 'symlink', link: '/var' },
        file('outside/planted', 'through a symlink\n'),
        file('../escaped', 'escaped\n'),
        file('/absolute', 'absolute\n'),
      ]), 'gzip', MEDIA.ociLayerGzip)]);
      const agent = join(root, 'home/agent');
      const shape = (path: string) => {
        const info = lstatSync(path);
        return [(info.mode & 0o7777).toString(8), info.uid, info.gid];
      };
      assert.deepEqual([shape(agent), shape(join(agent, 'notes')), shape(join(agent, 'private'))], [['750', 1000, 1000], ['604', 1000, 1001], ['700', 1000, 1000]]);
      assert.equal(statSync(join(agent, 'twin')).ino, statSync(join(agent, 'notes')).ino, 'the hard link is one file with notes');
      assert.deepEqual([readlinkSync(join(agent, 'latest')), lstatSync(join(agent, 'latest')).uid], ['notes', 1000]);
      assert.deepEqual(readdirSync(agent).sort(), ['latest', 'notes', 'private', 'twin'], 'no orphan link, no whiteout marker');
      assert.deepEqual(markersUnder(root), []);
      assert.ok(!existsSync(join(root, 'absolute')) && !existsSync(join(root, 'escaped')) && !existsSync(join(root, 'var/planted')));
    });

    it('several layers are merged with busybox `cp -a`, errors ignored: changed and new files carry, whiteouts, opaque directories and type changes do not (src/cli/pack.rs:394-408; busybox cannot replace an entry of another type)', async () => {
      const lower = buildTar([
        file('gone', 'lower\n'),
        { name: 'gone-dir/', type: 'dir' },
        file('gone-dir/x', 'x\n'),
        { name: 'opaque/', type: 'dir' },
        file('opaque/old', 'old\n'),
        { name: 'dir-to-file/', type: 'dir' },
        file('dir-to-file/inside', 'inside\n'),
        file('file-to-dir', 'a file\n'),
        file('changed', 'v1\n', { mode: 0o644 }),
      ]);
      const upper = buildTar([
        file('.wh.gone', ''),
        file('.wh.gone-dir', ''),
        file('.wh.never-there', ''),
        { name: 'opaque/', type: 'dir' },
        file('opaque/.wh..wh..opq', ''),
        file('opaque/new', 'new\n'),
        file('dir-to-file', 'now a file\n'),
        { name: 'file-to-dir/', type: 'dir' },
        file('file-to-dir/inside', 'inside\n'),
        file('changed', 'v2\n', { mode: 0o600, uid: 1000, gid: 1000 }),
        file('added', 'added\n'),
      ]);
      const root = await packAndCreate('merged', [layerOf(lower, 'gzip', MEDIA.ociLayerGzip), layerOf(upper, 'zstd', ZSTD_LAYER)]);
      const read = (name: string) => readFileSync(join(root, name), 'utf8');
      assert.deepEqual([read('changed'), (statSync(join(root, 'changed')).mode & 0o777).toString(8), statSync(join(root, 'changed')).uid, read('added')], ['v2\n', '600', 1000, 'added\n']);
      assert.equal(read('gone'), 'lower\n', 'a whiteout does not delete a lower file');
      assert.equal(read('gone-dir/x'), 'x\n', 'nor a lower directory');
      assert.deepEqual(readdirSync(join(root, 'opaque')).sort(), ['new', 'old'], 'an opaque directory keeps the lower entries');
      assert.equal(read('dir-to-file/inside'), 'inside\n', 'a directory stays a directory');
      assert.equal(read('file-to-dir'), 'a file\n', 'a file stays a file');
      assert.ok(!existsSync(join(root, 'never-there')));
      assert.deepEqual(markersUnder(root), [], 'a whiteout device hides itself in the machine (crates/smolvm-pack/src/extract.rs:528-535)');
    });

    it('refuses a layer that is a .smolmachine before writing anything (crates/smolvm-oci-layer/src/lib.rs:202-264, crates/smolvm-agent/src/storage.rs:2161-2181)', async () => {
      const pushed = await pushImage(registry.pushHost, 'bot-bottle/pack-as-layer', 'v1', [layerOf(buildTar([file('agent-rootfs.tar', 'x'), file('layers/a.tar', 'y')]), 'gzip', MEDIA.ociLayerGzip)]);
      const out = join(data.scratch, 'pack-as-layer');
      const result = await sim(['pack', 'create', '--image', pushed.ref, '-o', out]);
      assert.equal(result.exitCode, 1, result.stderr);
      assert.match(result.stderr, /\nError: agent operation failed: pull image: layer extraction failed for layer sha256:[0-9a-f]{64}: layer is a smolmachine pack \(contains 'agent-rootfs\.tar'\)/);
      assert.ok(!existsSync(`${out}.smolmachine`) && !existsSync(out));
    });

    it('with SMOLVM_SIM_WIDEN_DIRS=1, the pull leaves a directory that has entries after it at 0755, as smolvm’s does (crates/smolvm-oci-layer/src/lib.rs:303-313)', async () => {
      const root = await packAndCreate('widened', [layerOf(buildTar([
        { name: 'private/', type: 'dir', mode: 0o700, uid: 1000 },
        file('private/key', 'key\n', { mode: 0o600 }),
        { name: 'shared/', type: 'dir', mode: 0o1777 },
        file('shared/scratch', 'scratch\n'),
        { name: 'empty/', type: 'dir', mode: 0o700 },
      ]), 'gzip', MEDIA.ociLayerGzip)], { SMOLVM_SIM_WIDEN_DIRS: '1' });
      const mode = (name: string) => (statSync(join(root, name)).mode & 0o7777).toString(8);
      assert.deepEqual([mode('private'), mode('shared'), mode('empty'), mode('private/key')], ['755', '755', '700', '600']);
    });

    it('writes the sidecar’s assets as one zstd tar of agent-rootfs.tar and layers/<hex>.tar, which the manifest lists (crates/smolvm-pack/src/packer.rs:105-123, assets.rs:20-46, 677-715, format.rs:421-481)', () => {
      const assets = assetsOf(sidecar);
      assert.deepEqual([...assets.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], 'zstd magic');
      const tar = spawnSync('zstd', ['--decompress', '--stdout'], { input: assets, maxBuffer: 1024 ** 3 });
      const names = spawnSync('tar', ['--list'], { input: tar.stdout, maxBuffer: 1024 ** 3, encoding: 'utf8' }).stdout.trim().split('\n');
      const layerPath = `layers/${packedLayerDigest.slice('sha256:'.length)}.tar`;
      assert.deepEqual(names, ['agent-rootfs.tar', 'layers/', layerPath]);
      const manifest = manifestOf(sidecar) as { assets: { layers: unknown[] } };
      assert.deepEqual(Object.keys(manifest.assets).sort(), ['agent_rootfs', 'layers', 'libraries']);
      assert.deepEqual(manifest.assets.layers, [{ digest: packedLayerDigest, path: layerPath, size: (manifest.assets.layers[0] as { size: number }).size }]);
      assert.ok(!('user' in manifest));
    });

    it('draws the pull’s progress on stderr with \\r and ends it with done.; the packing spinner ends on stdout (src/cli/mod.rs:176-230, src/cli/pack.rs:1580-1628)', () => {
      const image = /^Pulling image (\S+)\.\.\./.exec(packed.stderr)?.[1] ?? '';
      assert.match(packed.stderr, new RegExp(`^Pulling image ${image.replace(/[.]/g, '\\.')}\\.\\.\\.\\r.*\\] 100%.*\\rPulling image \\S+\\.\\.\\. done\\. {30}\\n$`, 's'));
      assert.doesNotMatch(packed.stdout, /Pulling image/);
      assert.ok(packed.stdout.includes('\r\u001b[KAssembling packed binary done\nPacked: '), packed.stdout);
    });
  });

  describe('machine exec user', () => {
    it('runs as the image’s USER for an --image machine (src/cli/vm_common.rs:315-356; crun resolves the name, crates/smolvm-agent/src/main.rs:5600-5605)', async () => {
      await createRunningMachine(data.dataDir, 'as-image-user', ['--image', 'node:22']);
      assert.equal(await ok(['machine', 'exec', '--name', 'as-image-user', '--', 'id', '-u'], { SMOLVM_SIM_IMAGE_USER: 'node' }), '0\n', 'the USER is the image’s, fixed at create');
      await ok(['machine', 'create', '--name', 'as-node', '--image', 'node:22'], { SMOLVM_SIM_IMAGE_USER: 'node@as-node' });
      await ok(['machine', 'start', '--name', 'as-node']);
      assert.equal(await ok(['machine', 'exec', '--name', 'as-node', '--', 'sh', '-c', 'id -u; id -g']), '1000\n1000\n');
    });

    it('runs as root for a --from machine: a pack has no user (crates/smolvm-pack/src/format.rs:334-419, crates/smolvm-agent/src/storage.rs:1339-1383)', async () => {
      await createRunningMachine(data.dataDir, 'from-as-root', ['--from', sidecar]);
      assert.equal(await ok(['machine', 'exec', '--name', 'from-as-root', '--', 'id', '-u'], { SMOLVM_SIM_IMAGE_USER: 'node' }), '0\n');
    });
  });

  describe('machine cp progress', () => {
    const SIZE = String.raw`\d+(?:\.\d) (?:B|KB|MB|GB)|\d+ B`;

    it('a download redraws `Downloading G -> H: X (R/s)` with \\r, no total, and one newline at the very end (src/cli/mod.rs:114-169, src/cli/machine.rs:4989-4992)', async () => {
      await createRunningMachine(data.dataDir, 'copier', ['--image', 'node:22']);
      await ok(['machine', 'exec', '--name', 'copier', '--', 'sh', '-c', 'yes | head -c 2097152 > /var/tmp/blob']);
      const local = join(data.scratch, 'blob');
      const result = await sim(['machine', 'cp', 'copier:/var/tmp/blob', local], { SMOLVM_SIM_CP_RATE: String(2 * 1024 * 1024) });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal(result.stderr.indexOf('\n'), result.stderr.length - 1, 'the only newline ends the output');
      const redraws = result.stderr.slice(0, -1).split('\r');
      assert.equal(redraws.shift(), '', 'every redraw starts with \\r');
      assert.ok(redraws.length >= 3, `updates every 250 ms over a one-second copy, got ${JSON.stringify(result.stderr)}`);
      const line = new RegExp(`^Downloading /var/tmp/blob -> ${local}: (${SIZE}) \\((${SIZE})/s\\)$`);
      for (const redraw of redraws) assert.match(redraw, line);
      assert.match(redraws.at(-1) ?? '', /: 2\.0 MB \(/);
    });

    it('an upload of at most 1 MiB prints only its final line, with total and percentage (src/agent/client.rs:2083-2089, src/cli/mod.rs:135-161)', async () => {
      const small = join(data.scratch, 'small');
      writeFileSync(small, Buffer.alloc(1024 * 1024));
      const result = await sim(['machine', 'cp', small, 'copier:/var/tmp/small'], { SMOLVM_SIM_CP_RATE: String(512 * 1024) });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stderr, new RegExp(`^Uploading ${small} -> /var/tmp/small: 1\\.0 MB / 1\\.0 MB \\(100\\.0%, (${SIZE})/s\\)\\n$`));
    });
  });

  describe('the top level', () => {
    it('has no version subcommand: a clap usage error, exit 2 (src/main.rs:24-82); --version prints the crate version (src/main.rs:9-22, Cargo.toml:23)', async () => {
      const result = await sim(['version']);
      assert.equal(result.exitCode, 2, result.stderr);
      assert.match(result.stderr, /^error: unrecognized subcommand 'version'\n/);
      assert.equal(await ok(['--version']), 'smolvm 1.9.3\n');
    });
  });

  describe('machine ls --json / status --json', () => {
    it('prints the 31 keys of machine_status_json in alphabetical order (src/cli/vm_common.rs:2469-2520)', async () => {
      const keys = [
        'cmd', 'cpus', 'created_at', 'cuda', 'cuda_fork_pool_size', 'cuda_vram_limit_mib', 'entrypoint', 'ephemeral', 'forkable',
        'forkpoint_held', 'gpu', 'gpu_vram_mib', 'health_cmd', 'health_interval_secs', 'health_retries', 'health_startup_grace_secs',
        'health_timeout_secs', 'image', 'labels', 'memory_mib', 'mounts', 'name', 'network', 'overlay_gb', 'pid', 'ports',
        'restart_count', 'restart_max_retries', 'restart_policy', 'state', 'storage_gb',
      ];
      const listed = (JSON.parse(await ok(['machine', 'ls', '--json'])) as Array<Record<string, unknown>>).find((m) => m.name === 'image-source');
      assert.deepEqual(Object.keys(listed ?? {}), keys);
      assert.deepEqual(Object.keys(await status('image-source')), keys);
      assert.deepEqual([listed?.network, listed?.labels, listed?.restart_policy, listed?.storage_gb], [false, {}, 'never', null]);
    });

    it('never shows the egress allow-list (src/cli/vm_common.rs:2469-2520: no allowed_cidrs key)', async () => {
      await ok(['machine', 'create', '--name', 'allow-listed', '--image', 'node:22', '--allow-cidr', '127.0.0.16/32']);
      const printed = await ok(['machine', 'status', '--name', 'allow-listed', '--json']);
      assert.equal((JSON.parse(printed) as Record<string, unknown>).network, true);
      assert.doesNotMatch(printed, /127\.0\.0\.16/);
    });
  });
});
