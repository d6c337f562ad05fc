/**
 * A throwaway OCI registry for tests (Debian's `docker-registry`, Distribution 2.8) and a
 * plain-HTTP image pusher, so pack tests pull from a real registry.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { registryConfig } from '../../src/core/tools/registry';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 3_000;

export interface Registry {
  port: number;
  /** `127.0.0.1:PORT`: how the host (and the stand-in's "guest") reaches the registry. */
  pushHost: string;
  pullHost: string;
  url: string;
  /** The registry's filesystem storage (blobs live under docker/registry/v2/blobs). */
  storageDir: string;
  stop(): Promise<void>;
}

export async function startRegistry(): Promise<Registry> {
  if (!existsSync(REGISTRY_BINARY)) {
    throw new Error(`${REGISTRY_BINARY} is missing: apt-get install -y --no-install-recommends docker-registry`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'bb-registry-'));
  // The product's own configuration: the same registry the docker freeze path runs.
  writeFileSync(join(dir, 'config.yml'), registryConfig(join(dir, 'storage'), createHash('sha256').update(dir).digest('hex')));
  const child = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const stop = () => stopRegistry(child, dir);
  try {
    const port = await waitForPort(child);
    await waitForApi(`http://127.0.0.1:${port}`);
    const host = `127.0.0.1:${port}`;
    return { port, pushHost: host, pullHost: host, url: `http://${host}`, storageDir: join(dir, 'storage'), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function waitForPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`registry did not report its port:\n${output}`)), START_TIMEOUT_MS);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        child.stderr?.removeAllListeners('data');
        child.stderr?.resume();
        resolve(Number(match[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`registry exited with ${code}:\n${output}`));
    });
  });
}

async function waitForApi(url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`registry at ${url} never answered /v2/`);
}

async function stopRegistry(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.pid) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    signalGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child.pid as number, 'SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Layer {
  data: Buffer;
  mediaType: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A tar of `dir`'s contents (`./...` entries, owners and modes kept), made with GNU tar. */
export function tarDirectory(dir: string): Buffer {
  const result = spawnSync('tar', ['--create', '--numeric-owner', '--sort=name', `--directory=${dir}`, '.'], { maxBuffer: 1024 ** 3 });
  if (result.status !== 0) throw new Error(`tar failed: ${result.stderr.toString()}`);
  return result.stdout;
}

export function gzipLayer(tar: Buffer, mediaType: string = MEDIA.ociLayerGzip): Layer {
  return { data: gzipSync(tar), mediaType, diffId: sha256Digest(tar) };
}

export function plainLayer(tar: Buffer): Layer {
  return { data: tar, mediaType: MEDIA.ociLayerTar, diffId: sha256Digest(tar) };
}

/** A `.tar.gz` root filesystem archive is already a valid OCI layer. */
export function layerFromTarGz(tarGz: Buffer): Layer {
  return { data: tarGz, mediaType: MEDIA.ociLayerGzip, diffId: sha256Digest(gunzipSync(tarGz)) };
}

export interface ImageConfig {
  User?: string;
  WorkingDir?: string;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
}

export interface PushOptions {
  config?: ImageConfig;
  architecture?: string;
  /** `docker` pushes docker v2 schema 2 media types; default OCI. */
  format?: 'oci' | 'docker';
  /** Wrap the manifest in an OCI index, after a decoy linux/s390x image holding `/WRONG_PLATFORM`. */
  index?: boolean;
}

export interface PushedImage {
  /** `HOST/repo:tag`, ready for `smolvm pack create --image`. */
  ref: string;
  digest: string;
  layerDigests: string[];
}

/** Where the registry keeps a blob's bytes (tests corrupt it to check digest verification). */
export function blobPath(registry: Registry, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return join(registry.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

export async function pushImage(host: string, repository: string, tag: string, layers: Layer[], options: PushOptions = {}): Promise<PushedImage> {
  const docker = options.format === 'docker';
  const architecture = options.architecture ?? hostArchitecture();
  const config = Buffer.from(JSON.stringify({ architecture, os: 'linux', config: options.config ?? {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  const configDigest = await pushBlob(host, repository, config);
  for (const layer of layers) await pushBlob(host, repository, layer.data);
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? MEDIA.dockerManifest : MEDIA.ociManifest,
    config: { mediaType: docker ? MEDIA.dockerConfig : MEDIA.ociConfig, digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: sha256Digest(l.data), size: l.data.length })),
  };
  const body = Buffer.from(JSON.stringify(manifest));
  const layerDigests = manifest.layers.map((l) => l.digest);
  if (!options.index) {
    const digest = await pushManifest(host, repository, tag, manifest.mediaType, body);
    return { ref: `${host}/${repository}:${tag}`, digest, layerDigests };
  }
  const manifestDigest = await pushManifest(host, repository, sha256Digest(body), manifest.mediaType, body);
  const decoy = await pushDecoy(host, repository);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: [decoy, { mediaType: manifest.mediaType, digest: manifestDigest, size: body.length, platform: { os: 'linux', architecture } }],
  };
  const digest = await pushManifest(host, repository, tag, MEDIA.ociIndex, Buffer.from(JSON.stringify(index)));
  return { ref: `${host}/${repository}:${tag}`, digest, layerDigests };
}

async function pushDecoy(host: string, repository: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'bb-decoy-'));
  try {
    writeFileSync(join(dir, 'WRONG_PLATFORM'), 'this layer belongs to linux/s390x\n');
    const layer = gzipLayer(tarDirectory(dir));
    const pushed = await pushImage(host, repository, 'decoy-s390x', [layer], { architecture: 's390x' });
    const body = await fetch(`http://${host}/v2/${repository}/manifests/decoy-s390x`, { headers: { Accept: MEDIA.ociManifest } }).then((r) => r.arrayBuffer());
    return { mediaType: MEDIA.ociManifest, digest: pushed.digest, size: body.byteLength, platform: { os: 'linux', architecture: 's390x' } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function pushBlob(host: string, repository: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  const base = `http://${host}`;
  const start = await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location') ?? '', base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: data, headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

export async function pushManifest(host: string, repository: string, reference: string, mediaType: string, body: Buffer): Promise<string> {
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { method: 'PUT', body, headers: { 'Content-Type': mediaType } });
  if (response.status !== 201) throw new Error(`manifest push: HTTP ${response.status} ${await response.text()}`);
  return sha256Digest(body);
}

export function hostArchitecture(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}
