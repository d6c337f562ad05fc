import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CancelledError, UserError } from '../../src/core/errors';
import { MemoryLog } from '../support/memoryLog';
import { serveImage, type ImageEndpoint } from '../../src/core/oci/endpoint';
import { bindAddressFor } from '../../src/core/pullHost';
import { assembleImage, type OciImage } from '../../src/core/oci/image';
import { digestLayer } from '../../src/core/oci/layer';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function fetchRaw(url: string, method = 'GET', agent: Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/**
 * An address of this machine other than 127.0.0.1, present on every Linux host (the kernel routes
 * all of 127.0.0.0/8 to loopback), so these tests need no network interface and never skip.
 */
const OTHER_ADDRESS = '127.0.0.2';

describe('OCI image endpoint', () => {
  let dir: string;
  let layerBytes: Buffer;
  let image: OciImage;
  const log = new MemoryLog();
  const open: ImageEndpoint[] = [];
  const serve = async (pullHost = '127.0.0.1', signal?: AbortSignal) => {
    const endpoint = await serveImage(image, { pullHost, log, signal });
    open.push(endpoint);
    return endpoint;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bb-oci-endpoint-'));
    layerBytes = gzipSync(Buffer.concat([Buffer.alloc(2_000_000, 'file data '), randomBytes(500_000)]));
    const layerFile = join(dir, 'rootfs.tar.gz');
    writeFileSync(layerFile, layerBytes);
    const layer = await digestLayer(layerFile, { gzip: true });
    image = assembleImage({ architecture: 'amd64', layerFile, layer, gzip: true });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((e) => e.close()));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers /v2/ as a registry does', async () => {
    const endpoint = await serve();
    const reply = await fetchRaw(`${endpoint.url}/v2/`);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['docker-distribution-api-version'], 'registry/2.0');
    assert.equal(reply.body.toString(), '{}');
  });

  it('serves the manifest by tag and by digest, with its media type, length and digest', async () => {
    const endpoint = await serve();
    assert.equal(endpoint.pullReference, `127.0.0.1:${endpoint.port}/${endpoint.repository}:${image.tag}`);
    for (const reference of [image.tag, image.manifest.digest]) {
      const url = `${endpoint.url}/v2/${endpoint.repository}/manifests/${reference}`;
      const reply = await fetchRaw(url);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body, image.manifest.bytes);
      assert.equal(reply.headers['content-type'], 'application/vnd.oci.image.manifest.v1+json');
      assert.equal(reply.headers['content-length'], String(image.manifest.size));
      assert.equal(reply.headers['docker-content-digest'], sha256(reply.body));
      const head = await fetchRaw(url, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers['content-length'], String(image.manifest.size));
      assert.equal(head.headers['docker-content-digest'], image.manifest.digest);
    }
  });

  it('streams each blob from disk as its digest says, and answers HEAD with its length', async () => {
    const endpoint = await serve();
    for (const [digest, expected] of [[image.layer.digest, layerBytes], [image.config.digest, image.config.bytes]] as const) {
      const url = `${endpoint.url}/v2/${endpoint.repository}/blobs/${digest}`;
      const reply = await fetchRaw(url);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body, expected);
      assert.equal(sha256(reply.body), digest);
      assert.equal(reply.headers['content-length'], String(expected.length));
      assert.equal(reply.headers['docker-content-digest'], digest);
      assert.equal(reply.headers['content-type'], 'application/octet-stream');
      const head = await fetchRaw(url, 'HEAD');
      assert.deepEqual([head.status, head.body.length, head.headers['content-length']], [200, 0, String(expected.length)]);
    }
    const encoded = await fetchRaw(`${endpoint.url}/v2/${endpoint.repository}/blobs/${image.config.digest.replace(':', '%3A')}`);
    assert.equal(encoded.status, 200);
  });

  it('lists its one tag, as skopeo inspect wants', async () => {
    const endpoint = await serve();
    const reply = await fetchRaw(`${endpoint.url}/v2/${endpoint.repository}/tags/list`);
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body.toString()), { name: endpoint.repository, tags: [image.tag] });
  });

  it('answers 404 to a neighbouring name and to everything it does not serve', async () => {
    const endpoint = await serve();
    const repo = endpoint.repository;
    assert.match(repo, /^bot-bottle-committed\/[0-9a-f]{32}$/);
    const neighbour = repo.slice(0, -1) + (repo.endsWith('0') ? '1' : '0');
    const other = await serve();
    assert.notEqual(other.repository, repo, 'each endpoint has its own random name');
    const paths = [
      `/v2/${neighbour}/manifests/${image.tag}`,
      `/v2/${neighbour}/blobs/${image.layer.digest}`,
      `/v2/${neighbour}/tags/list`,
      `/v2/bot-bottle-committed/manifests/${image.tag}`,
      `/v2/${repo}/manifests/latest`,
      `/v2/${repo}/manifests/sha256:${'0'.repeat(64)}`,
      `/v2/${repo}/blobs/sha256:${'0'.repeat(64)}`,
      `/v2/${repo}/blobs/${image.manifest.digest}/extra`,
      '/v2/_catalog',
      '/',
      '/v2/..%2f',
    ];
    for (const path of paths) assert.equal((await fetchRaw(`${endpoint.url}${path}`)).status, 404, path);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      assert.equal((await fetchRaw(`${endpoint.url}/v2/${repo}/blobs/uploads/`, method)).status, 404, method);
      assert.equal((await fetchRaw(`${endpoint.url}/v2/${repo}/manifests/${image.tag}`, method)).status, 404, method);
    }
  });

  it('serves nothing after close, not even on a connection kept alive', async () => {
    const endpoint = await serve();
    const agent = new Agent({ keepAlive: true });
    assert.equal((await fetchRaw(`${endpoint.url}/v2/`, 'GET', agent)).status, 200);
    await endpoint.close();
    await endpoint.close();
    await assert.rejects(fetchRaw(`${endpoint.url}/v2/`, 'GET', agent), /ECONNREFUSED|ECONNRESET|socket hang up/);
    await assert.rejects(fetchRaw(`${endpoint.url}/v2/`), /ECONNREFUSED/);
    agent.destroy();
  });

  it('stops when the signal aborts, and does not start on one already aborted', async () => {
    const controller = new AbortController();
    const endpoint = await serve('127.0.0.1', controller.signal);
    controller.abort();
    await endpoint.close();
    await assert.rejects(fetchRaw(`${endpoint.url}/v2/`), /ECONNREFUSED/);
    await assert.rejects(serve('127.0.0.1', AbortSignal.abort()), CancelledError);
  });

  it('listens on loopback only for the default pull host and for a host name, never on another address', async () => {
    for (const pullHost of ['127.0.0.1', 'host.smolvm.internal', 'localhost']) {
      const endpoint = await serve(pullHost);
      assert.equal(endpoint.address, '127.0.0.1', pullHost);
      assert.ok(endpoint.pullReference.startsWith(`${pullHost}:${endpoint.port}/`));
      await assert.rejects(fetchRaw(`http://${OTHER_ADDRESS}:${endpoint.port}/v2/`), /ECONNREFUSED/, `${pullHost}: not served on ${OTHER_ADDRESS}`);
    }
  });

  it('listens on another address only when the pull host names it, and then not on 127.0.0.1', async () => {
    const endpoint = await serve(OTHER_ADDRESS);
    assert.equal(endpoint.address, OTHER_ADDRESS);
    assert.equal((await fetchRaw(`http://${OTHER_ADDRESS}:${endpoint.port}/v2/`)).status, 200);
    await assert.rejects(fetchRaw(`http://127.0.0.1:${endpoint.port}/v2/`), /ECONNREFUSED/);
  });

  it('refuses a wildcard, a malformed or a foreign pull host with a message naming the setting', async () => {
    assert.equal(bindAddressFor('[::1]'), '::1');
    assert.equal(bindAddressFor(' 127.0.0.2 '), '127.0.0.2');
    for (const bad of ['0.0.0.0', '[::]', 'http://host:5000', 'host:5000', '']) {
      assert.throws(() => bindAddressFor(bad), (error: Error) => error instanceof UserError && /botBottle\.registry\.pullHost/.test(error.message), bad);
    }
    await assert.rejects(serve('203.0.113.7'), (error: Error) => error instanceof UserError && /not an address of this machine/.test(error.message));
  });
});
