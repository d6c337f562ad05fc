/**
 * A read-only OCI distribution endpoint for one image, served from this process while
 * `smolvm pack create` pulls it: `GET`/`HEAD` of `/v2/`, of the manifest (by tag or digest) and of
 * each blob, streamed from disk, and the tag list (without it `skopeo inspect` gives up). Anything
 * else is 404.
 *
 * It listens on loopback, or on the address `botBottle.registry.pullHost` names, on a port the
 * kernel picks, under a repository name with 128 random bits in it: another local process cannot
 * find the image by guessing. The name is on `pack create`'s command line, which every local user
 * can read, so on Linux it is not the only guard: a connection from a socket that another user
 * owns, or from no socket of this host, is refused (peer.ts). It stops on `close()` or when the
 * signal aborts, and then nothing more is served, not even to connections already open.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { CancelledError, errorMessage, UserError } from '../errors';
import type { Log } from '../log';
import { COMMITTED_REPOSITORY } from '../names';
import { bindAddressFor } from '../pullHost';
import { blobsOf, type Blob, type OciImage } from './image';
import { canCheckPeers, peerUid, TCP_TABLES } from './peer';
import { authorizes, type PullCredentials } from './pullCredentials';

const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const NOT_FOUND_BODY = Buffer.from(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'not found' }] }));
const UNAUTHORIZED_BODY = Buffer.from(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
const DENIED_BODY = Buffer.from(JSON.stringify({ errors: [{ code: 'DENIED', message: 'only the user who runs the freeze may pull this image' }] }));

export interface ServeOptions {
  /** How the VM names this host (`botBottle.registry.pullHost`); it also decides the bind address. */
  pullHost: string;
  /** Asked of every client (HTTP Basic, after a 401 challenge, as registries do), when given. */
  credentials?: PullCredentials;
  signal?: AbortSignal;
  log: Log;
}

export interface ImageEndpoint {
  /** `<pullHost>:<port>/<repository>:<tag>`: what `smolvm pack create --image` is given. */
  readonly pullReference: string;
  /** `<pullHost>:<port>`: the registry part of the pull reference, which smolvm looks credentials up by. */
  readonly registryHost: string;
  /** `http://<address>:<port>`, as this host reaches it. */
  readonly url: string;
  /** The address it listens on. */
  readonly address: string;
  readonly port: number;
  readonly repository: string;
  /** Stops serving and drops every open connection. Safe to call more than once. */
  close(): Promise<void>;
}

interface Resource {
  contentType: string;
  size: number;
  digest?: string;
  body: { bytes: Buffer } | { file: string };
}

export async function serveImage(image: OciImage, options: ServeOptions): Promise<ImageEndpoint> {
  const address = bindAddressFor(options.pullHost);
  if (options.signal?.aborted) throw new CancelledError();
  await ensurePeersCanBeChecked();
  const repository = `${COMMITTED_REPOSITORY}/${randomBytes(16).toString('hex')}`;
  const resources = resourcesOf(image, repository);
  const fromThisUser = peerFilter();
  const server = createServer((request, response) => {
    void fromThisUser(request.socket).then((allowed) => {
      if (!allowed) refuse(request, response, options.log);
      else if (options.credentials && !authorizes(request.headers.authorization, options.credentials)) challenge(request, response);
      else respond(request, response, resources, options.log);
    });
  });
  await listen(server, address, options.pullHost);
  const close = stopper(server, options.signal);
  if (options.signal?.aborted) {
    await close();
    throw new CancelledError();
  }
  const bound = (server.address() as AddressInfo).address;
  if (bound !== address) {
    await close();
    throw new Error(`The image endpoint asked for ${address} but listens on ${bound}; it was stopped.`);
  }
  const { port } = server.address() as AddressInfo;
  const registryHost = `${options.pullHost.trim()}:${port}`;
  const endpoint: ImageEndpoint = {
    pullReference: `${registryHost}/${repository}:${image.tag}`,
    registryHost,
    url: `http://${isIP(address) === 6 ? `[${address}]` : address}:${port}`,
    address,
    port,
    repository,
    close,
  };
  options.log.info(`Serving the image at ${endpoint.url}/v2/${repository} until the pack is done`);
  return endpoint;
}

// ---------------------------------------------------------------------------------------------
// Only this user's processes are served (where the platform can tell).

/** Without its socket tables a Linux host cannot tell who connects: refuse to serve at all rather than serve anyone. */
async function ensurePeersCanBeChecked(): Promise<void> {
  if (!canCheckPeers()) return;
  const readable = await readFile(TCP_TABLES[0], 'utf8').then(() => true, () => false);
  if (!readable) throw new UserError(`Cannot read ${TCP_TABLES[0]}, so the image endpoint could not tell this user's connections from another user's; nothing was served. Use the docker image builder (botBottle.freeze.imageBuilder).`);
}

/** Decides once per connection whether the process at its other end belongs to this user. */
function peerFilter(): (socket: Socket) => Promise<boolean> {
  if (!canCheckPeers()) return async () => true;
  const uid = process.getuid?.();
  const verdicts = new WeakMap<Socket, Promise<boolean>>();
  return (socket) => {
    let verdict = verdicts.get(socket);
    if (!verdict) {
      verdict = peerUid(connectionOf(socket)).then((owner) => owner !== undefined && owner === uid);
      verdicts.set(socket, verdict);
    }
    return verdict;
  };
}

function connectionOf(socket: Socket) {
  return {
    client: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 },
    server: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
  };
}

function refuse(request: IncomingMessage, response: ServerResponse, log: Log): void {
  log.info(`  image endpoint: refused ${request.method} ${request.url} from ${request.socket.remoteAddress}:${request.socket.remotePort}, not a process of this user`);
  response.writeHead(403, { ...API_VERSION_HEADER, 'Content-Type': 'application/json', 'Content-Length': DENIED_BODY.length, Connection: 'close' });
  response.end(request.method === 'HEAD' ? undefined : DENIED_BODY);
}

/** Distribution's answer to a request without (the right) credentials: a Basic challenge. */
function challenge(request: IncomingMessage, response: ServerResponse): void {
  response.writeHead(401, {
    ...API_VERSION_HEADER,
    'WWW-Authenticate': 'Basic realm="bot-bottle"',
    'Content-Type': 'application/json',
    'Content-Length': UNAUTHORIZED_BODY.length,
  });
  response.end(request.method === 'HEAD' ? undefined : UNAUTHORIZED_BODY);
}

/** Every path served, mapped to what it answers. */
function resourcesOf(image: OciImage, repository: string): Map<string, Resource> {
  const manifest: Resource = { contentType: image.manifest.mediaType, size: image.manifest.size, digest: image.manifest.digest, body: image.manifest };
  const resources = new Map<string, Resource>([
    ['/v2/', jsonResource({})],
    [`/v2/${repository}/manifests/${image.tag}`, manifest],
    [`/v2/${repository}/manifests/${image.manifest.digest}`, manifest],
    [`/v2/${repository}/tags/list`, jsonResource({ name: repository, tags: [image.tag] })],
  ]);
  for (const blob of blobsOf(image).values()) resources.set(`/v2/${repository}/blobs/${blob.digest}`, blobResource(blob));
  return resources;
}

function jsonResource(value: object): Resource {
  const bytes = Buffer.from(JSON.stringify(value));
  return { contentType: 'application/json', size: bytes.length, body: { bytes } };
}

/** Blobs go out as Distribution sends them: opaque bytes, named by their digest. */
function blobResource(blob: Blob): Resource {
  return { contentType: 'application/octet-stream', size: blob.size, digest: blob.digest, body: 'file' in blob ? { file: blob.file } : { bytes: blob.bytes } };
}

function respond(request: IncomingMessage, response: ServerResponse, resources: Map<string, Resource>, log: Log): void {
  const path = requestPath(request.url);
  const resource = request.method === 'GET' || request.method === 'HEAD' ? resources.get(path ?? '') : undefined;
  log.debug(`  image endpoint: ${request.method} ${path ?? request.url} ${resource ? 200 : 404}`);
  if (!resource) {
    response.writeHead(404, { ...API_VERSION_HEADER, 'Content-Type': 'application/json', 'Content-Length': NOT_FOUND_BODY.length });
    response.end(request.method === 'HEAD' ? undefined : NOT_FOUND_BODY);
    return;
  }
  response.writeHead(200, {
    ...API_VERSION_HEADER,
    'Content-Type': resource.contentType,
    'Content-Length': resource.size,
    ...(resource.digest ? { 'Docker-Content-Digest': resource.digest } : {}),
  });
  if (request.method === 'HEAD') response.end();
  else if ('bytes' in resource.body) response.end(resource.body.bytes);
  else streamFile(resource.body.file, response, log);
}

function streamFile(file: string, response: ServerResponse, log: Log): void {
  // A client that hangs up, or close() during a transfer, ends it here too.
  pipeline(createReadStream(file), response).catch((error: unknown) => log.debug(`  image endpoint: sending ${file} stopped: ${errorMessage(error)}`));
}

/** `/v2/...` without the query, percent-decoded (a digest may come as `sha256%3A...`), or undefined. */
function requestPath(url: string | undefined): string | undefined {
  try {
    const path = decodeURIComponent(new URL(url ?? '', 'http://endpoint').pathname);
    return path === '/v2' ? '/v2/' : path;
  } catch {
    return undefined;
  }
}

function listen(server: Server, address: string, pullHost: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRNOTAVAIL' ? `${address} is not an address of this machine` : error.message;
      reject(new UserError(`Cannot serve the image for the pack on ${address} (from botBottle.registry.pullHost "${pullHost}"): ${why}.`));
    });
    server.listen({ host: address, port: 0, exclusive: true }, () => resolve());
  });
}

function stopper(server: Server, signal: AbortSignal | undefined): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= new Promise<void>((resolve) => {
      signal?.removeEventListener('abort', onAbort);
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  const onAbort = () => void stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return stop;
}
