/**
 * Freezing a smolmachines bottle without stopping it: archive the root filesystem inside the VM,
 * copy it out, turn it into an image, and let `smolvm pack create` make the `.smolmachine` from it.
 * There are two ways to make the image, each a list of steps below: with docker and a registry
 * (steps.ts), or natively, by describing the archive as an image and serving it from here
 * (native.ts).
 */
import { machineSlugs, refuseCaseTwin } from '../caseClash';
import type { Log } from '../log';
import { bindAddressFor } from '../pullHost';
import { runPipeline, type PipelineProgress, type Step } from '../pipeline';
import { committedImageRef, validateSlug } from '../names';
import type { Services } from '../services';
import type { Snapshot } from '../state';
import { choosePusher, findExecutable } from '../executables';
import { errorMessage } from '../errors';
import { pruneHistory } from '../history';
import { dropLayersOf } from '../layerStore';
import { DEFAULT_SETTINGS, type Compression, type ImageBuilder, type ImageBuilderChoice } from '../settings';
import type { FreezeState, FreezeTools } from './context';
import { leaveForBotBottle } from './mirror';
import { describeLeftOut } from './mounts';
import { describeImage, inspectVm, packFromEndpoint } from './native';
import { listRootfs } from './incremental';
import { LayerStore } from '../layerStore';
import { archiveRootfs, buildImage, copyArchiveOut, keepSnapshot, packSnapshot, probeExec, pushToRegistry, saveImage } from './steps';

export const DOCKER_FREEZE_STEPS: readonly Step<FreezeState>[] = [
  probeExec,
  archiveRootfs,
  copyArchiveOut,
  buildImage,
  saveImage,
  pushToRegistry,
  packSnapshot,
  keepSnapshot,
  leaveForBotBottle,
];

export const NATIVE_FREEZE_STEPS: readonly Step<FreezeState>[] = [
  probeExec,
  inspectVm,
  listRootfs,
  archiveRootfs,
  copyArchiveOut,
  describeImage,
  packFromEndpoint,
  keepSnapshot,
  leaveForBotBottle,
];

export interface FreezeOptions {
  signal: AbortSignal;
  onProgress?: (progress: PipelineProgress) => void;
  /** One full layer even when only what changed could be archived ("Freeze (full)"). */
  full?: boolean;
}

/**
 * Freezes one bottle. Only one operation per bottle at a time (across windows); a failed or
 * cancelled freeze leaves the last good snapshot as it was.
 */
export async function freezeBottle(services: Services, slug: string, options: FreezeOptions): Promise<Snapshot> {
  validateSlug(slug, services.prefix);
  const log = services.logs.main;
  const imageBuilder = chooseImageBuilder(services.settings.imageBuilder);
  // A pull host the image endpoint cannot listen on is refused now, not after minutes of archiving.
  if (imageBuilder === 'native') bindAddressFor(services.settings.pullHost);
  const compression = chooseCompression(imageBuilder, services.settings.compression, log);
  const tools = resolveFreezeTools(services, imageBuilder);
  await refuseCaseTwin(services.store, slug, await machineSlugs(services, options.signal));
  const lock = await services.store.lock(slug, 'freeze');
  try {
    const state: FreezeState = {
      slug,
      machine: services.prefix + slug,
      imageRef: committedImageRef(slug),
      store: services.store,
      botBottle: services.botBottle,
      tools,
      run: services.run,
      toolLog: services.logs.tools,
      pullHost: services.settings.pullHost,
      imageBuilder,
      compression,
      includeMounts: services.settings.includeMounts ?? false,
      incremental: services.settings.incremental ?? false,
      format: compression,
      layerStore: new LayerStore(services.store.root),
      fullRequested: options.full ?? false,
      versions: {},
    };
    log.info(`Freezing ${state.machine} (image builder: ${imageBuilder}, archive: ${compression})`);
    if (imageBuilder === 'docker') log.info('The docker image builder archives everything each time: incremental freezes are the native builder’s.');
    const steps = imageBuilder === 'docker' ? DOCKER_FREEZE_STEPS : NATIVE_FREEZE_STEPS;
    await runPipeline(steps, state, { signal: options.signal, log, onProgress: options.onProgress });
    const snapshot = await services.store.readSnapshot(slug);
    if (!snapshot) throw new Error(`The snapshot of ${slug} is missing after the freeze.`);
    log.info(`Froze ${state.machine} into ${snapshot.sidecar}. To move it to another machine, copy it with its launcher ${snapshot.launcher}.`);
    await pruneAfterFreeze(services, slug);
    const leftOut = snapshot.record?.mountsLeftOut ?? [];
    if (leftOut.length > 0) log.info(`Left out of the snapshot: ${describeLeftOut(leftOut)}.`);
    return snapshot;
  } finally {
    await lock.release();
  }
}

/** The freeze is done whatever happens here: a history entry that cannot be removed now is removed after a later freeze. */
async function pruneAfterFreeze(services: Services, slug: string): Promise<void> {
  const keep = services.settings.snapshotsKeep ?? DEFAULT_SETTINGS.snapshotsKeep;
  try {
    const pruned = await pruneHistory(services.store, slug, keep);
    if (pruned.length) services.logs.main.info(`Pruned ${pruned.length} older snapshot(s) of ${slug} (botBottle.snapshots.keep is ${keep}): ${pruned.map((s) => s.historyId).join(', ')}`);
    const layers = await dropLayersOf(services.store, pruned.map((s) => s.record));
    if (layers.length) services.logs.main.info(`Removed ${layers.length} layer(s) that no snapshot uses any more.`);
  } catch (error) {
    services.logs.main.warn(`Could not prune the older snapshots of ${slug}: ${errorMessage(error)}`);
  }
}

export function chooseImageBuilder(choice: ImageBuilderChoice | undefined): ImageBuilder {
  return choice === 'docker' ? 'docker' : 'native';
}

/** The docker path's Dockerfile unpacks a gzip archive; an uncompressed one is the native path's. */
function chooseCompression(imageBuilder: ImageBuilder, choice: Compression | undefined, log: Log): Compression {
  if (choice !== 'none') return 'gzip';
  if (imageBuilder === 'native') return 'none';
  log.info('botBottle.freeze.compression "none" applies to the native image builder only; the docker path archives with gzip.');
  return 'gzip';
}

/** Every tool the chosen path needs, found before anything runs, so a missing one costs nothing. */
function resolveFreezeTools(services: Services, imageBuilder: ImageBuilder): FreezeTools {
  const paths = services.settings.paths;
  if (imageBuilder === 'native') return { smolvm: services.smolvm() };
  return {
    smolvm: services.smolvm(),
    docker: services.tool('docker'),
    registry: findExecutable('registry', paths.registry),
    pusher: choosePusher({ craneBin: findExecutable('crane', paths.crane), skopeoBin: findExecutable('skopeo', paths.skopeo) }),
  };
}
