/**
 * The native path's own steps: no docker, no registry process, no pusher. The archive copied out
 * of the VM is already an OCI layer; it is read once to learn its two digests, a config and a
 * manifest are written around it, and the extension serves the three to `smolvm pack create` for
 * exactly as long as the pack runs.
 */
import { UserError } from '../errors';
import { formatBytes } from '../format';
import { serveImage } from '../oci/endpoint';
import { createPullCredentials, smolvmPullEnvironment } from '../oci/pullCredentials';
import { createHash } from 'node:crypto';
import { emptyFilesTar } from '../oci/emptyTar';
import { dirname, join } from 'node:path';
import { ensureWorkDir } from './incremental';
import { flattenLayers } from '../oci/flatten';
import { assembleLayeredImage, layerCompression, layerMediaType, MEDIA_TYPE, ociArchitecture, type LayerFile } from '../oci/image';
import { whiteoutMembers } from './delta';
import { digestLayer } from '../oci/layer';
import type { Step, StepContext } from '../pipeline';
import { runTool } from '../run';
import { findOnPath } from '../executables';
import type { FreezeState } from './context';
import { archiveExcludes } from './mounts';
import { packSnapshot } from './steps';

type FreezeStep = Step<FreezeState>;

const KIB = 1024;
const ROOM_MARGIN_BYTES = 64 * 1024 * KIB;

export const inspectVm: FreezeStep = {
  id: 'inspect',
  title: 'Inspecting the bottle',
  weight: 1,
  async run(ctx, s) {
    const uname = await runTool(s.run, s.tools.smolvm.exec(s.machine, ['uname', '-m']), { signal: ctx.signal });
    s.architecture = ociArchitecture(uname.stdout);
    if (s.compression === 'none') await ensureRoomForPlainArchive(s, ctx.signal);
    s.hostZstd = findOnPath('zstd');
    // Not with incremental freezes: a delta on a zstd base came out as large as a full layer (the
    // native integration test), for a reason not yet found.
    if (!s.incremental && s.compression === 'gzip' && s.hostZstd && (await guestHasZstd(s, ctx.signal))) s.format = 'zstd';
    ctx.log.info(`  archive: ${s.format === 'zstd' ? 'zstd -T0 (the bottle and this host have zstd)' : s.format}`);
  },
};

/** Multi-threaded zstd is much faster than gzip in the VM, and smolvm reads zstd layers (crates/smolvm-oci-layer/src/lib.rs:167-200). */
async function guestHasZstd(s: FreezeState, signal: AbortSignal): Promise<boolean> {
  const version = await runTool(s.run, s.tools.smolvm.exec(s.machine, ['zstd', '--version']), { signal }).catch(() => undefined);
  return version !== undefined && /zstd/i.test(version.stdout);
}

/**
 * A plain tar is about as big as the files it holds, so `/var/tmp` must have that much free.
 * `du -k` counts allocated blocks, which already cover what tar adds per file (a 512-byte header
 * and padding to 512 bytes), so it errs on the large side; the margin (10% and 64 MiB) covers what
 * it misses: files that grow while tar reads them, file systems that store data compressed.
 */
async function ensureRoomForPlainArchive(s: FreezeState, signal: AbortSignal): Promise<void> {
  // The same excludes as tar, and no -x: tar crosses into other file systems (mounts included when asked).
  const excludes = archiveExcludes(s).map((pattern) => `--exclude=${pattern.slice(1)}`);
  // Like tar, du exits 1 when a file vanishes under it: normal on a live system.
  const du = await runTool(s.run, s.tools.smolvm.exec(s.machine, ['du', '-sk', ...excludes, '/'], { okExitCodes: [0, 1] }), { signal });
  const df = await runTool(s.run, s.tools.smolvm.exec(s.machine, ['df', '-Pk', '/var/tmp']), { signal });
  const needed = parseDuKib(du.stdout) * KIB * 1.1 + ROOM_MARGIN_BYTES;
  const free = parseDfAvailableKib(df.stdout) * KIB;
  s.toolLog.info(`  an uncompressed archive needs about ${formatBytes(needed)} in /var/tmp; ${formatBytes(free)} is free`);
  if (free < needed) {
    throw new UserError(
      `Not enough free space in the bottle's /var/tmp for an uncompressed archive: it needs about ${formatBytes(needed)} and ${formatBytes(free)} is free. ` +
        'Free some space in the bottle, or set botBottle.freeze.compression to "gzip".',
    );
  }
}

/** The first number of `du -sk` output, in KiB. */
export function parseDuKib(stdout: string): number {
  const match = /^\s*(\d+)\s/m.exec(stdout);
  if (!match) throw new Error(`du printed ${JSON.stringify(stdout.trim().slice(0, 100))} where a size was expected`);
  return Number(match[1]);
}

/** The "Available" column of `df -Pk` (POSIX format), in KiB. */
export function parseDfAvailableKib(stdout: string): number {
  const row = stdout.trim().split('\n').at(-1) ?? '';
  const match = /\s(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+\/.*$/.exec(row);
  if (!match) throw new Error(`df printed ${JSON.stringify(stdout.trim().slice(0, 200))} where a POSIX table was expected`);
  return Number(match[3]);
}

export const describeImage: FreezeStep = {
  id: 'image',
  title: 'Describing the image',
  weight: 8,
  async run(ctx, s) {
    const digests = s.archiveDigests ?? await digestLayer(s.archive!, {
      gzip: s.format === 'gzip',
      compression: s.format,
      zstd: s.hostZstd,
      signal: ctx.signal,
      onBytes: (read, total) => ctx.progress(total ? read / total : 1, `${formatBytes(read)} / ${formatBytes(total)}`),
    });
    const mediaType = layerMediaType(s.format);
    // Kept only when a later freeze can build on it: with a listing of what it holds.
    const file = s.listing ? await s.layerStore.put(s.archive!, digests.digest) : s.archive!;
    const archived = { ...digests, mediaType, role: s.delta ? 'delta' : 'full', file } as const;
    s.layers = [...(s.delta ? await layersBelow(s) : []), archived];
    ctx.log.info(`Layers kept: ${s.layers.map((l) => `${l.role} ${l.digest} (${formatBytes(l.size)})`).join(', ')}`);
    const served = s.delta ? await flattenStack(ctx, s) : archived;
    s.image = assembleLayeredImage({ architecture: s.architecture!, layers: [served] });
    ctx.log.info(`Image ${s.image.manifest.digest}: layer ${served.digest}, diff_id ${served.diffId}`);
  },
};

/** The stack as one layer, for smolvm's pack (see oci/flatten.ts): the listed paths, each from the topmost layer that has it. */
async function flattenStack(ctx: StepContext, s: FreezeState): Promise<LayerFile> {
  // Beside where the archive arrived: the layer store's disk, not a temp folder that may be in memory.
  const file = join(dirname(s.archive!), 'flattened.tar');
  const listed = s.listing!.entries;
  const stack = s.layers!.map((l) => ({ file: l.file, compression: layerCompression(l.mediaType), zstd: s.hostZstd }));
  const digests = await flattenLayers(stack, file, { keep: (name) => listed.has(name), signal: ctx.signal });
  ctx.log.info(`  flattened ${s.layers!.length} layers into one of ${formatBytes(digests.size)} for the pack`);
  return { ...digests, file, mediaType: MEDIA_TYPE.tarLayer };
}

/** The last snapshot's layers from the store, then the whiteouts of what was deleted since (made here). */
async function layersBelow(s: FreezeState): Promise<NonNullable<FreezeState['layers']>> {
  const { below, changes } = s.delta!;
  const layers = below.map((l) => ({ ...l, file: s.layerStore.pathOf(l.digest) }));
  const members = whiteoutMembers(changes);
  if (members.length === 0) return layers;
  const tar = emptyFilesTar(members);
  const digest = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const file = await s.layerStore.putBytes(tar, digest);
  return [...layers, { digest, diffId: digest, size: tar.length, mediaType: MEDIA_TYPE.tarLayer, role: 'whiteouts', file }];
}

/** Serves the image only while the pack runs: stopped as soon as it ends, and on cancel or failure. */
export const packFromEndpoint: FreezeStep = {
  id: 'pack',
  title: packSnapshot.title,
  weight: packSnapshot.weight,
  async run(ctx, s) {
    const credentials = createPullCredentials();
    const endpoint = await serveImage(s.image!, { pullHost: s.pullHost, credentials, signal: ctx.signal, log: s.toolLog });
    ctx.defer('stop the image endpoint', () => endpoint.close());
    s.pullRef = endpoint.pullReference;
    s.packEnv = await smolvmPullEnvironment(await ensureWorkDir(ctx, s), endpoint.registryHost, credentials);
    try {
      await packSnapshot.run(ctx, s);
    } finally {
      await endpoint.close();
    }
  },
};
