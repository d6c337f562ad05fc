/**
 * A read-only OCI distribution endpoint for one image, served from this process while
 * `smolvm pack create` pulls it: `GET`/`HEAD` of `/v2/`, of the manifest (by tag or digest) and of
 * each blob, streamed from disk, and the tag list (without it `skopeo inspect` gives up). Anything
 * else is 404.
 *
 * It listens on loopback, or on the address `botBottle.registry.pullHost` names, on a port the
 * kernel picks, under a repository name with 128 random bits in it: another local process cannot
 * find the image by guessing. It stops on `close()` or when the signal aborts, and then nothing
 * more is served, not even to connections already open.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { CancelledError, errorMessage, UserError } from '../errors';
import type { Log } from '../log';
import { COMMITTED_REPOSITORY } from '../names';
import { bindAddressFor } from '../pullHost';
import { blobsOf, type Blob, type OciImage } from './image';

const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' };
const NOT_FOUND_BODY = Buffer.from(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'not found' }] }));

export interface ServeOptions {
  /** How the VM names this host (`botBottle.registry.pullHost`); it also decides the bind address. */
  pullHost: string;
  signal?: AbortSignal;
  log: Log;
}

export interface ImageEndpoint {
  /** `<pullHost>:<port>/<repository>:<tag>`: what `smolvm pack create --image` is given. */
  readonly pullReference: string;
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
  const repository = `${COMMITTED_REPOSITORY}/${randomBytes(16).toString('hex')}`;
  const resources = resourcesOf(image, repository);
  const server = createServer((request, response) => respond(request, response, resources, options.log));
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
  const endpoint: ImageEndpoint = {
    pullReference: `${options.pullHost.trim()}:${port}/${repository}:${image.tag}`,
    url: `http://${isIP(address) === 6 ? `[${address}]` : address}:${port}`,
    address,
    port,
    repository,
    close,
  };
  options.log.info(`Serving the image at ${endpoint.url}/v2/${repository} until the pack is done`);
  return endpoint;
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
