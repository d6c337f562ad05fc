/**
 * Pulls an image over plain HTTP with the OCI distribution API (as smolvm does for localhost
 * registries): manifest (or index -> the host's platform), config and layers, each digest checked.
 * A registry that answers `/v2/` with a Basic challenge gets the credentials smolvm's config names
 * for it, as crane does inside smolvm's helper VM.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { agentError, osErrorText } from './errors';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST].join(', ');
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_REDIRECTS = 5;
/** How a guest names its host; the stand-in's "guest" is the host itself. */
const HOST_ALIASES = new Set(['host.smolvm.internal', 'host.docker.internal', 'host.containers.internal']);

export interface ImageReference {
  text: string;
  registry: string;
  repository: string;
  reference: string;
  /** The `Authorization` header every request carries, once the registry asked for credentials. */
  authorization?: string;
}

export interface ImageConfig {
  User?: string;
  WorkingDir?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
}

export interface PulledLayer {
  digest: string;
  mediaType: string;
  size: number;
  file: string;
}

export interface PulledImage {
  digest: string;
  os: string;
  architecture: string;
  config: ImageConfig;
  layers: PulledLayer[];
  size: number;
}

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string };
}

interface Manifest {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export function parseReference(text: string): ImageReference {
  let rest = text;
  let reference = 'latest';
  const at = rest.indexOf('@');
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon > rest.lastIndexOf('/')) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  if (!hasRegistry) return { text, registry: 'registry-1.docker.io', repository: rest.includes('/') ? rest : `library/${rest}`, reference };
  return { text, registry: first, repository: rest.slice(slash + 1), reference };
}

function baseUrl(ref: ImageReference): string {
  const [host, port] = ref.registry.split(':');
  const reachable = HOST_ALIASES.has(host) ? '127.0.0.1' : host;
  return `http://${reachable}${port ? `:${port}` : ''}`;
}

export async function pullImage(reference: ImageReference, dir: string, platform: { os: string; architecture: string }): Promise<PulledImage> {
  const base = baseUrl(reference);
  const ref = { ...reference, authorization: await authorizationFor(reference, base) };
  const { manifest, digest } = await fetchManifest(ref, base, ref.reference, platform);
  if (!manifest.config || !manifest.layers) throw pullError(ref, 'manifest has no config or layers');
  const configBytes = await fetchVerified(ref, `${base}/v2/${ref.repository}/blobs/${manifest.config.digest}`, manifest.config.digest);
  const config = JSON.parse(configBytes.toString('utf8')) as { os?: string; architecture?: string; config?: ImageConfig };
  const layers: PulledLayer[] = [];
  for (const [index, layer] of manifest.layers.entries()) {
    layers.push(await downloadLayer(ref, base, layer, join(dir, `layer-${index}`)));
  }
  return {
    digest,
    os: config.os ?? platform.os,
    architecture: config.architecture ?? platform.architecture,
    config: config.config ?? {},
    layers,
    size: layers.reduce((sum, layer) => sum + layer.size, 0),
  };
}

/**
 * crane pings `/v2/` first and answers a Basic challenge with the credentials it was given: smolvm
 * hands it those its config has for the registry (crates/smolvm-agent/src/storage.rs:4295, from
 * src/agent/client.rs:991). Without any, the pull fails as unauthorized.
 */
async function authorizationFor(ref: ImageReference, base: string): Promise<string | undefined> {
  const ping = await get(ref, `${base}/v2/`);
  if (ping.status !== 401) return undefined;
  const credentials = configuredCredentials(ref.registry);
  if (!credentials || !/^Basic\b/i.test(ping.challenge)) throw pullError(ref, 'UNAUTHORIZED: authentication required');
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/**
 * The registry's entry in smolvm's config: `SMOLVM_CONFIG`, else ~/.config/smolvm/config.toml
 * (src/settings.rs:70), table `[images.registries."<registry>"]`; a username, and the password from
 * the variable `password_env` names, else `password` (src/registry.rs:180). Only the plain
 * `key = "string"` lines of that one table are read: the stand-in has no TOML parser.
 */
function configuredCredentials(registry: string): { username: string; password: string } | undefined {
  const path = process.env.SMOLVM_CONFIG || join(homedir(), '.config', 'smolvm', 'config.toml');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const entry = tomlTable(text, `images.registries.${JSON.stringify(registry)}`);
  const password = (entry.password_env !== undefined ? process.env[entry.password_env] : undefined) ?? entry.password;
  return entry.username !== undefined && password !== undefined ? { username: entry.username, password } : undefined;
}

function tomlTable(text: string, name: string): Record<string, string> {
  const values: Record<string, string> = {};
  let inside = false;
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line.startsWith('[')) inside = line === `[${name}]`;
    const pair = inside ? /^([A-Za-z_]+)\s*=\s*("(?:[^"\\]|\\.)*")$/.exec(line) : null;
    if (pair) values[pair[1]] = JSON.parse(pair[2]) as string;
  }
  return values;
}

async function fetchManifest(ref: ImageReference, base: string, reference: string, platform: { os: string; architecture: string }): Promise<{ manifest: Manifest; digest: string }> {
  const response = await get(ref, `${base}/v2/${ref.repository}/manifests/${reference}`, ACCEPT);
  if (response.status === 404) throw pullError(ref, `manifest unknown: ${ref.repository}:${reference}`);
  expectOk(ref, response);
  const digest = sha256(response.body);
  if (reference.startsWith('sha256:') && reference !== digest) throw pullError(ref, `digest mismatch for manifest ${reference}: computed ${digest}`);
  const manifest = JSON.parse(response.body.toString('utf8')) as Manifest;
  const mediaType = manifest.mediaType ?? response.contentType;
  if (mediaType === OCI_INDEX || mediaType === DOCKER_LIST || (manifest.manifests && !manifest.layers)) {
    const chosen = (manifest.manifests ?? []).find((m) => m.platform?.os === platform.os && m.platform?.architecture === platform.architecture);
    if (!chosen) throw pullError(ref, `no image for platform ${platform.os}/${platform.architecture} in the index`);
    return fetchManifest(ref, base, chosen.digest, platform);
  }
  return { manifest, digest };
}

async function fetchVerified(ref: ImageReference, url: string, digest: string): Promise<Buffer> {
  const response = await get(ref, url);
  expectOk(ref, response);
  const actual = sha256(response.body);
  if (actual !== digest) throw pullError(ref, `digest mismatch for blob ${digest}: computed ${actual}`);
  return response.body;
}

/**
 * A layer's media type is never checked: `crane blob` fetches any blob and the extractor goes by
 * its first bytes (crates/smolvm-agent/src/storage.rs:2134-2144, crates/smolvm-oci-layer/src/lib.rs:167-200).
 */
async function downloadLayer(ref: ImageReference, base: string, layer: Descriptor, file: string): Promise<PulledLayer> {
  const mediaType = layer.mediaType ?? '';
  const response = await open(ref, `${base}/v2/${ref.repository}/blobs/${layer.digest}`);
  if (response.statusCode !== 200) {
    response.resume();
    throw pullError(ref, `GET blob ${layer.digest}: HTTP ${response.statusCode}`);
  }
  const hash = createHash('sha256');
  let size = 0;
  response.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  await pipeline(response, createWriteStream(file));
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== layer.digest) throw pullError(ref, `digest mismatch for layer ${layer.digest}: computed ${actual}`);
  return { digest: layer.digest, mediaType, size, file };
}

interface Response {
  status: number;
  contentType: string;
  /** `WWW-Authenticate`, when the registry sent one. */
  challenge: string;
  body: Buffer;
}

async function get(ref: ImageReference, url: string, accept?: string): Promise<Response> {
  const response = await open(ref, url, accept);
  const chunks: Buffer[] = [];
  for await (const chunk of response as AsyncIterable<Buffer>) chunks.push(chunk);
  return {
    status: response.statusCode ?? 0,
    contentType: String(response.headers['content-type'] ?? ''),
    challenge: String(response.headers['www-authenticate'] ?? ''),
    body: Buffer.concat(chunks),
  };
}

/** A GET that follows redirects (registries may send blobs elsewhere). */
async function open(ref: ImageReference, url: string, accept?: string, redirects = 0): Promise<IncomingMessage> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const headers = { ...(accept ? { Accept: accept } : {}), ...(ref.authorization ? { Authorization: ref.authorization } : {}) };
    const req = request(url, { headers, timeout: REQUEST_TIMEOUT_MS }, resolve);
    req.on('timeout', () => req.destroy(Object.assign(new Error('operation timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (error) => reject(pullError(ref, `error sending request for url (${url}): ${osErrorText(error)}`)));
    req.end();
  });
  const location = response.headers.location;
  if (response.statusCode && response.statusCode >= 300 && response.statusCode < 400 && location) {
    response.resume();
    if (redirects >= MAX_REDIRECTS) throw pullError(ref, 'too many redirects');
    return open(ref, new URL(location, url).toString(), accept, redirects + 1);
  }
  return response;
}

function expectOk(ref: ImageReference, response: Response): void {
  if (response.status === 401) throw pullError(ref, 'UNAUTHORIZED: authentication required');
  if (response.status !== 200) throw pullError(ref, `registry answered HTTP ${response.status}: ${response.body.toString('utf8').slice(0, 200).trim()}`);
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function pullError(ref: ImageReference, message: string): Error {
  return agentError('pull image', `failed to pull ${ref.text}: ${message}`);
}
