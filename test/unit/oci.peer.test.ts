/**
 * Issue row 5: any local user could download a frozen bottle's root filesystem, because the only
 * guard was the random repository name, and that name is on `pack create`'s command line for
 * `ps` to show. On Linux the image endpoint now serves only sockets that this user owns, and on
 * every platform only clients that give the credentials made for that one freeze.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MemoryLog } from '../support/memoryLog';
import { serveImage, type ImageEndpoint } from '../../src/core/oci/endpoint';
import { assembleImage, type OciImage } from '../../src/core/oci/image';
import { digestLayer } from '../../src/core/oci/layer';
import { findSocketOwner } from '../../src/core/oci/peer';
import { createPullCredentials, smolvmPullEnvironment } from '../../src/core/oci/pullCredentials';

const run = promisify(execFile);
const NOBODY = 65534;

/** `curl` as this user, or as `nobody` through setpriv: the status and the body's length. */
async function curl(url: string, as: 'me' | 'nobody'): Promise<{ status: string; bytes: number }> {
  const args = ['--silent', '--output', '/dev/null', '--write-out', '%{http_code} %{size_download}', url];
  const argv = as === 'me' ? ['curl', ...args] : ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'curl', ...args];
  const { stdout } = await run(argv[0], argv.slice(1));
  const [status, bytes] = stdout.trim().split(' ');
  return { status, bytes: Number(bytes) };
}

describe('image endpoint: only this user may pull (issue row 5)', function () {
  let dir: string;
  let image: OciImage;
  let layerSize: number;
  const log = new MemoryLog();
  const open: ImageEndpoint[] = [];

  before(async function () {
    assert.equal(process.platform, 'linux', 'these tests check the Linux peer check');
    assert.equal(process.getuid?.(), 0, 'acting as another user (nobody) takes root: run these tests as root, as CI does');
    dir = mkdtempSync(join(tmpdir(), 'bb-oci-peer-'));
    chmodSync(dir, 0o755);
    const layerFile = join(dir, 'rootfs.tar');
    writeFileSync(layerFile, Buffer.alloc(64 * 1024, 'secret rootfs '));
    const layer = await digestLayer(layerFile, { gzip: false });
    layerSize = layer.size;
    image = assembleImage({ architecture: 'amd64', layerFile, layer, gzip: false });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((e) => e.close()));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const serve = async (pullHost: string) => {
    const endpoint = await serveImage(image, { pullHost, log });
    open.push(endpoint);
    return endpoint;
  };
  const layerUrl = (endpoint: ImageEndpoint) => `${endpoint.url}/v2/${endpoint.repository}/blobs/${image.layer.digest}`;
  const manifestUrl = (endpoint: ImageEndpoint) => `${endpoint.url}/v2/${endpoint.repository}/manifests/${image.tag}`;

  it('row 5: another local user (nobody) who read the repository name from ps is refused the layer and the manifest', async () => {
    const endpoint = await serve('127.0.0.1');
    assert.deepEqual(await curl(layerUrl(endpoint), 'nobody'), { status: '403', bytes: Buffer.byteLength(deniedBody()) });
    assert.equal((await curl(manifestUrl(endpoint), 'nobody')).status, '403');
    assert.equal((await curl(`${endpoint.url}/v2/`, 'nobody')).status, '403');
    assert.match(log.text, /image endpoint: refused GET \/v2\/.* not a process of this user/);
  });

  it('row 5: the same pulls from this user are served, over IPv4 and IPv6 loopback', async () => {
    for (const pullHost of ['127.0.0.1', '[::1]']) {
      const endpoint = await serve(pullHost);
      assert.deepEqual(await curl(layerUrl(endpoint), 'me'), { status: '200', bytes: layerSize }, pullHost);
      assert.equal((await curl(manifestUrl(endpoint), 'me')).status, '200', pullHost);
      assert.equal((await curl(layerUrl(endpoint), 'nobody')).status, '403', pullHost);
    }
  });
});

describe('image endpoint: per-freeze credentials (issue row 5)', function () {
  let dir: string;
  let image: OciImage;
  const open: ImageEndpoint[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bb-oci-credentials-'));
    const layerFile = join(dir, 'rootfs.tar');
    writeFileSync(layerFile, Buffer.alloc(4096, 'secret rootfs '));
    image = assembleImage({ architecture: 'amd64', layerFile, layer: await digestLayer(layerFile, { gzip: false }), gzip: false });
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((e) => e.close()));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  async function get(url: string, authorization?: string): Promise<{ status: number; challenge?: string }> {
    const response = await fetch(url, { headers: authorization ? { Authorization: authorization } : {} });
    await response.arrayBuffer();
    return { status: response.status, challenge: response.headers.get('www-authenticate') ?? undefined };
  }

  it('row 5: the repository name alone is not enough: a client without the freeze’s credentials gets a Basic challenge', async () => {
    const credentials = createPullCredentials();
    const endpoint = await serveImage(image, { pullHost: '127.0.0.1', credentials, log: new MemoryLog() });
    open.push(endpoint);
    const manifest = `${endpoint.url}/v2/${endpoint.repository}/manifests/${image.tag}`;
    assert.deepEqual(await get(`${endpoint.url}/v2/`), { status: 401, challenge: 'Basic realm="bot-bottle"' });
    assert.equal((await get(manifest)).status, 401);
    assert.equal((await get(manifest, basic(credentials.username, 'wrong'))).status, 401);
    assert.equal((await get(manifest, basic('someone', credentials.password))).status, 401);
    assert.equal((await get(manifest, basic(credentials.username, credentials.password))).status, 200);
    assert.equal((await get(`${endpoint.url}/v2/${endpoint.repository}/blobs/${image.layer.digest}`, basic(credentials.username, credentials.password))).status, 200);
  });

  it('gives smolvm the credentials through a private config file and an environment variable, never an argument', async () => {
    const credentials = createPullCredentials();
    const env = await smolvmPullEnvironment(dir, '127.0.0.1:41234', credentials);
    assert.deepEqual(Object.keys(env).sort(), ['BOT_BOTTLE_PULL_PASSWORD', 'SMOLVM_CONFIG']);
    assert.equal(env.BOT_BOTTLE_PULL_PASSWORD, credentials.password);
    assert.equal(statSync(env.SMOLVM_CONFIG).mode & 0o777, 0o600);
    assert.equal(
      readFileSync(env.SMOLVM_CONFIG, 'utf8'),
      '[images.registries."127.0.0.1:41234"]\nusername = "bot-bottle"\npassword_env = "BOT_BOTTLE_PULL_PASSWORD"\n',
    );
    assert.ok(!readFileSync(env.SMOLVM_CONFIG, 'utf8').includes(credentials.password), 'the file names the variable, not the password');
    assert.notEqual(createPullCredentials().password, credentials.password, 'each freeze has its own');
  });
});

describe('peer lookup in /proc/net/tcp and /proc/net/tcp6', () => {
  const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
  // 127.0.0.1:40000 -> 127.0.0.1:8080 owned by 1000; the server's own accepted socket, owned by 0.
  const IPV4 = [
    HEADER,
    '   0: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 -1',
    '   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');
  // An IPv6 socket connected to ::ffff:127.0.0.1:8080 from ::ffff:127.0.0.1:40001, owned by 65534.
  const MAPPED = '   0: 0000000000000000FFFF00000100007F:9C41 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000 65534        0 4244 1';
  // ::1:40002 -> ::1:8080, owned by 501.
  const IPV6 = '   0: 00000000000000000000000001000000:9C42 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000   501        0 4245 1';

  const connection = (clientAddress: string, clientPort: number, serverAddress: string) => ({
    client: { address: clientAddress, port: clientPort },
    server: { address: serverAddress, port: 8080 },
  });

  it('finds the client’s socket by its own end, not the server’s accepted socket', () => {
    assert.equal(findSocketOwner(IPV4, connection('127.0.0.1', 40000, '127.0.0.1')), 1000);
    assert.equal(findSocketOwner(IPV4, connection('127.0.0.1', 40001, '127.0.0.1')), undefined);
  });

  it('reads IPv4-mapped and IPv6 addresses, whichever way the server names them', () => {
    assert.equal(findSocketOwner(MAPPED, connection('127.0.0.1', 40001, '127.0.0.1')), NOBODY);
    assert.equal(findSocketOwner(MAPPED, connection('::ffff:127.0.0.1', 40001, '::ffff:127.0.0.1')), NOBODY);
    assert.equal(findSocketOwner(IPV6, connection('::1', 40002, '::1')), 501);
    assert.equal(findSocketOwner(IPV6, connection('0:0:0:0:0:0:0:1', 40002, '::1')), 501);
  });

  it('finds nothing for a peer that has no socket on this host', () => {
    assert.equal(findSocketOwner([IPV4, MAPPED, IPV6].join('\n'), connection('10.0.0.7', 40000, '127.0.0.1')), undefined);
    assert.equal(findSocketOwner('', connection('127.0.0.1', 40000, '127.0.0.1')), undefined);
  });
});

function deniedBody(): string {
  return JSON.stringify({ errors: [{ code: 'DENIED', message: 'only the user who runs the freeze may pull this image' }] });
}
