import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CancelledError, UserError } from '../../src/core/errors';
import { assembleImage, blobsOf, MEDIA_TYPE, ociArchitecture } from '../../src/core/oci/image';
import { digestLayer } from '../../src/core/oci/layer';

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('OCI layer digests', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-oci-layer-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a .tar.gz once for the blob digest and the diff_id of what it unpacks to, reporting bytes read', async () => {
    // Bigger than one read chunk, and a mix of compressible and random bytes.
    const tar = Buffer.concat([Buffer.alloc(3 * 1024 * 1024, 'text '), randomBytes(1024 * 1024)]);
    const gz = gzipSync(tar);
    const file = join(dir, 'rootfs.tar.gz');
    writeFileSync(file, gz);
    const seen: number[] = [];
    const layer = await digestLayer(file, { gzip: true, onBytes: (read, total) => seen.push(read / total) });
    assert.deepEqual(layer, { digest: sha256(gz), diffId: sha256(tar), size: gz.length });
    assert.equal(seen.at(-1), 1);
    assert.ok(seen.every((fraction, i) => i === 0 || fraction >= seen[i - 1]));
  });

  it('takes a plain tar as its own diff_id', async () => {
    const tar = randomBytes(100_000);
    const file = join(dir, 'rootfs.tar');
    writeFileSync(file, tar);
    assert.deepEqual(await digestLayer(file, { gzip: false }), { digest: sha256(tar), diffId: sha256(tar), size: tar.length });
  });

  it('fails on a truncated or a non-gzip archive rather than giving a digest', async () => {
    const file = join(dir, 'broken.tar.gz');
    writeFileSync(file, gzipSync(randomBytes(200_000)).subarray(0, 50_000));
    await assert.rejects(digestLayer(file, { gzip: true }), /unexpected end of file/);
    writeFileSync(file, 'not gzip at all');
    await assert.rejects(digestLayer(file, { gzip: true }), /incorrect header check/);
  });

  it('stops when the signal aborts', async () => {
    const file = join(dir, 'big.tar');
    writeFileSync(file, randomBytes(8 * 1024 * 1024));
    const controller = new AbortController();
    const digesting = digestLayer(file, { gzip: false, signal: controller.signal, onBytes: () => controller.abort() });
    await assert.rejects(digesting, (error: Error) => error.name === 'AbortError' || error instanceof CancelledError);
  });
});

describe('OCI image around one layer', () => {
  const layer = { digest: `sha256:${'a'.repeat(64)}`, diffId: `sha256:${'b'.repeat(64)}`, size: 1234 };
  const created = new Date('2026-11-30T10:00:00Z');

  it('writes the config the docker path’s Dockerfile would give: node, /home/node, the VM’s architecture, the diff_id', () => {
    const image = assembleImage({ architecture: 'arm64', layerFile: '/x/rootfs.tar.gz', layer, gzip: true, created });
    const config = JSON.parse(image.config.bytes.toString('utf8'));
    assert.deepEqual(config, {
      created: '2026-11-30T10:00:00.000Z',
      architecture: 'arm64',
      os: 'linux',
      config: { User: 'node', WorkingDir: '/home/node', Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    });
    assert.equal(image.config.digest, sha256(image.config.bytes));
    assert.equal(image.config.size, image.config.bytes.length);
    assert.equal(image.tag, image.config.digest.slice('sha256:'.length, 'sha256:'.length + 16));
  });

  it('writes an OCI manifest naming the config and the layer with their digests, sizes and media types', () => {
    const image = assembleImage({ architecture: 'amd64', layerFile: '/x/rootfs.tar.gz', layer, gzip: true, created });
    assert.equal(image.manifest.digest, sha256(image.manifest.bytes));
    assert.equal(image.manifest.mediaType, MEDIA_TYPE.manifest);
    assert.deepEqual(JSON.parse(image.manifest.bytes.toString('utf8')), {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: image.config.digest, size: image.config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: 1234 }],
    });
    assert.deepEqual([...blobsOf(image).keys()], [image.config.digest, layer.digest]);
    assert.equal(image.layer.file, '/x/rootfs.tar.gz');
  });

  it('marks a plain tar layer as such', () => {
    const image = assembleImage({ architecture: 'amd64', layerFile: '/x/rootfs.tar', layer, gzip: false, created });
    assert.equal(image.layer.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  });

  it('names the VM’s CPU as OCI does, and refuses one smolvm does not run on', () => {
    assert.equal(ociArchitecture('x86_64\n'), 'amd64');
    assert.equal(ociArchitecture('aarch64'), 'arm64');
    assert.equal(ociArchitecture('arm64'), 'arm64');
    assert.throws(() => ociArchitecture('riscv64'), UserError);
  });
});
