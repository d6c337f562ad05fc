/**
 * The container tool clients against the real tools: docker (Docker's client, Podman's engine),
 * Distribution's registry, skopeo, tar and gzip. Nothing is faked.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ToolError } from '../../src/core/errors';
import { MemoryLog } from '../support/memoryLog';
import { createRunner, type RunOptions, type Runner } from '../../src/core/run';
import { runTool } from '../../src/core/run';
import { dockerfileForRootfs, ROOTFS_ARCHIVE } from '../../src/core/committedImage';
import * as docker from '../../src/core/tools/docker';
import { choosePusher } from '../../src/core/executables';
import { pushTarball } from '../../src/core/tools/push';
import { inspectRemote } from '../support/skopeo';
import { startEphemeralRegistry, type EphemeralRegistry } from '../../src/core/freeze/registry';
import { findExecutable } from '../../src/core/executables';
import { requireContainerTools, startContainerService, type ContainerService, type ContainerTools } from '../support/containers';
import { groupAlive } from '../support/processes';

/** A log that can act when a line shows up: how the tests cancel at a chosen moment. */
class WatchedLog extends MemoryLog {
  private watchers: { pattern: RegExp; action: () => void }[] = [];
  when(pattern: RegExp, action: () => void): void {
    this.watchers.push({ pattern, action });
  }
  override info(message: string): void {
    super.info(message);
    for (const watcher of this.watchers.filter((w) => w.pattern.test(message))) {
      this.watchers.splice(this.watchers.indexOf(watcher), 1);
      watcher.action();
    }
  }
}

describe('container tools, for real', function () {
  this.timeout(60_000);
  let tools: ContainerTools;
  let service: ContainerService;
  let work: string;
  let log: WatchedLog;
  let run: Runner;
  const tag = `bot-bottle-it-${randomBytes(4).toString('hex')}:latest`;
  let id: string;
  let savedImage: string;
  const inEngine = (extra: RunOptions = {}): RunOptions => ({ env: service.env, ...extra });

  before(async () => {
    tools = requireContainerTools();
    service = await startContainerService();
    work = mkdtempSync(join(tmpdir(), 'bb-tools-it-'));
    log = new WatchedLog();
    run = createRunner(log);
    makeRootfsArchive(join(work, 'context'));
    writeFileSync(join(work, 'context', 'Dockerfile'), dockerfileForRootfs());
  });

  after(async () => {
    await service?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe('docker through the Podman engine', () => {
    it('reaches the engine', async () => {
      const version = await runTool(run, docker.version(tools.docker), inEngine());
      assert.ok(version.server, `no engine: ${version.serverError}`);
    });

    it('builds an image FROM scratch out of a root filesystem archive and reads its id', async () => {
      await runTool(run, docker.build(tools.docker, { tag, contextDir: join(work, 'context') }), inEngine());
      id = await runTool(run, docker.imageId(tools.docker, tag), inEngine());
      assert.match(id, /^sha256:[0-9a-f]{64}$/);
    });

    it('saves the image as a docker-archive tarball', async () => {
      savedImage = join(work, 'committed.image.tar');
      await runTool(run, docker.save(tools.docker, tag, savedImage), inEngine());
      const manifest = JSON.parse(tarEntry(savedImage, 'manifest.json')) as { Config: string; RepoTags: string[]; Layers: string[] }[];
      assert.equal(manifest.length, 1);
      assert.ok(manifest[0].RepoTags.some((repoTag) => repoTag.endsWith(tag)), JSON.stringify(manifest));
      assert.equal(manifest[0].Layers.length, 1);
    });
  });

  describe('ephemeral registry (Distribution)', () => {
    it('starts on loopback, answers, and stops leaving no process, port or folder', async () => {
      const registry = await startEphemeralRegistry({ registryBin: tools.registry, log });
      assert.equal(registry.pushEndpoint, `127.0.0.1:${registry.port}`);
      assert.equal(registry.pullEndpoint, `127.0.0.1:${registry.port}`);
      assert.equal(registry.backing.kind, 'process');
      const { pid, dir } = registry.backing as { pid: number; dir: string };
      assert.equal(await statusOf(registry.port, '/v2/'), 200);
      assert.ok(existsSync(dir) && groupAlive(pid));

      const stopped = Date.now();
      await registry.stop();
      assert.ok(Date.now() - stopped < 3000, 'stop took too long');
      assert.equal(await statusOf(registry.port, '/v2/'), 'refused');
      assert.equal(existsSync(dir), false);
      assert.equal(groupAlive(pid), false);
    });

    it('runs two at once without clashing', async () => {
      const [a, b] = await Promise.all([
        startEphemeralRegistry({ registryBin: tools.registry, log }),
        startEphemeralRegistry({ registryBin: tools.registry, log, pullHost: 'host.internal' }),
      ]);
      try {
        assert.notEqual(a.port, b.port);
        assert.equal(b.pullEndpoint, `host.internal:${b.port}`);
        await a.stop();
        assert.equal(await statusOf(a.port, '/v2/'), 'refused');
        assert.equal(await statusOf(b.port, '/v2/'), 200);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    });

    for (const moment of [
      { name: 'right after it was spawned', line: /^\$ .*serve .*config\.yml &$/ },
      { name: 'once it listens, before it answered', line: /listening on 127\.0\.0\.1:\d+/ },
    ]) {
      it(`cancelled ${moment.name}, leaves nothing behind`, async () => {
        const tmpRoot = mkdtempSync(join(work, 'registry-tmp-'));
        const controller = new AbortController();
        const ownLog = new WatchedLog();
        ownLog.when(moment.line, () => controller.abort());
        await assert.rejects(startEphemeralRegistry({ registryBin: tools.registry, log: ownLog, tmpRoot, signal: controller.signal }), CancelledError);
        assert.doesNotMatch(ownLog.text, /Registry ready/);
        assert.deepEqual(readdirSync(tmpRoot), []);
        assert.deepEqual(processesMentioning(tmpRoot), []);
      });
    }
  });

  describe('push', () => {
    let registry: EphemeralRegistry;
    before(async () => {
      registry = await startEphemeralRegistry({ registryBin: tools.registry, log });
    });
    after(async () => {
      await registry?.stop();
    });

    it('pushes the saved tarball with skopeo, and skopeo reads the same image back', async () => {
      assert.ok(savedImage && id, 'needs the image built and saved above');
      const pusher = choosePusher({ craneBin: findExecutable('crane', undefined, ''), skopeoBin: tools.skopeo });
      assert.equal(pusher.tool, 'skopeo');
      const shortId = id.slice('sha256:'.length, 'sha256:'.length + 16);
      const ref = `${registry.pushEndpoint}/bot-bottle-committed:${shortId}`;
      await runTool(run, pushTarball(pusher, savedImage, ref, { insecure: true }), inEngine());
      assert.match(log.text, /Copying blob sha256:/);

      const remote = await runTool(run, inspectRemote(tools.skopeo, `${registry.pullEndpoint}/bot-bottle-committed:${shortId}`, { insecure: true }), inEngine());
      const manifest = await fetchManifest(registry.port, 'bot-bottle-committed', shortId);
      assert.deepEqual(remote.repoTags, [shortId]);
      assert.equal(remote.digest, `sha256:${sha256(manifest.raw)}`);
      assert.equal(manifest.json.config.digest, id, 'the config blob is the image docker built');
      assert.deepEqual(remote.layers, manifest.json.layers.map((layer) => layer.digest));
      assert.equal(remote.layers.length, 1);

      const config = JSON.parse(await fetchText(registry.port, `/v2/bot-bottle-committed/blobs/${id}`)) as ImageConfig;
      const savedLayer = (JSON.parse(tarEntry(savedImage, 'manifest.json')) as { Layers: string[] }[])[0].Layers[0];
      assert.deepEqual(config.rootfs.diff_ids, [`sha256:${sha256(tarEntryBytes(savedImage, savedLayer))}`]);
      assert.equal(config.config.User, 'node');
      assert.equal(config.config.WorkingDir, '/home/node');
    });

    it('cancelled mid-push, leaves no skopeo process and no temp files', async () => {
      const skopeoTmp = mkdtempSync(join(work, 'skopeo-tmp-'));
      const controller = new AbortController();
      const ref = `${registry.pushEndpoint}/bot-bottle-cancelled:1`;
      const pushing = runTool(run, pushTarball({ tool: 'skopeo', bin: tools.skopeo }, savedImage, ref, { insecure: true }), inEngine({
        env: { ...service.env, TMPDIR: skopeoTmp },
        signal: controller.signal,
        onLine: () => controller.abort(),
      }));
      await assert.rejects(pushing, CancelledError);
      assert.deepEqual(processesMentioning(ref), []);
      assert.deepEqual(readdirSync(skopeoTmp), []);
      const inspected = await runTool(run, inspectRemote(tools.skopeo, ref, { insecure: true }), inEngine()).catch((e: unknown) => e);
      assert.ok(inspected instanceof ToolError, 'a cancelled push must not leave a tagged image');
      assert.equal(await statusOf(registry.port, '/v2/'), 200);
    });
  });

  describe('cleanup', () => {
    it('removes the image', async () => {
      await runTool(run, docker.rmi(tools.docker, tag), inEngine());
      await assert.rejects(runTool(run, docker.imageId(tools.docker, tag), inEngine()), ToolError);
    });

    it('stops the Podman service, leaving no process or state', async () => {
      const { pid, dir } = service;
      await service.stop();
      assert.equal(groupAlive(pid), false);
      assert.equal(existsSync(dir), false);
    });
  });
});

/**
 * `<context>/rootfs.tar.gz` made by the real tar and gzip: a tiny home for node plus 16 MiB that
 * does not compress, so that pushing takes long enough to be cancelled halfway.
 */
function makeRootfsArchive(context: string): void {
  const root = join(context, '..', 'rootfs');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'home', 'node'), { recursive: true });
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n');
  writeFileSync(join(root, 'home', 'node', 'hello.txt'), 'frozen\n');
  writeFileSync(join(root, 'home', 'node', 'noise.bin'), randomBytes(16 * 1024 * 1024));
  mkdirSync(context);
  execFileSync('tar', ['--create', '--gzip', '--owner=1000', '--group=1000', `--file=${join(context, ROOTFS_ARCHIVE)}`, `--directory=${root}`, '.']);
}

function tarEntryBytes(tarball: string, entry: string): Buffer {
  return execFileSync('tar', ['--extract', '--to-stdout', `--file=${tarball}`, entry], { maxBuffer: 256 * 1024 * 1024 });
}

function tarEntry(tarball: string, entry: string): string {
  return tarEntryBytes(tarball, entry).toString('utf8');
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

interface ImageConfig {
  config: { User?: string; WorkingDir?: string };
  rootfs: { diff_ids: string[] };
}

interface Manifest {
  config: { digest: string };
  layers: { digest: string }[];
}

const MANIFEST_TYPES = ['application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.oci.image.manifest.v1+json'].join(', ');

async function fetchManifest(port: number, name: string, tagName: string): Promise<{ raw: Buffer; json: Manifest }> {
  const raw = await fetchBytes(port, `/v2/${name}/manifests/${tagName}`, { accept: MANIFEST_TYPES });
  return { raw, json: JSON.parse(raw.toString('utf8')) as Manifest };
}

async function fetchText(port: number, path: string): Promise<string> {
  return (await fetchBytes(port, path)).toString('utf8');
}

/** GET without keep-alive; follows nothing (Distribution serves blobs from its own filesystem). */
function fetchBytes(port: number, path: string, headers: Record<string, string> = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${path}: ${res.statusCode}`))));
    }).on('error', reject);
  });
}

function statusOf(port: number, path: string): Promise<number | 'refused'> {
  return new Promise((resolve) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve('refused'));
  });
}


/** Pids of live processes (zombies excluded) whose command line contains `text`. */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = /^State:\s+(\w)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (cmdline.includes(text) && state !== 'Z') pids.push(Number(entry));
    } catch {
      // it exited while we looked
    }
  }
  return pids;
}
