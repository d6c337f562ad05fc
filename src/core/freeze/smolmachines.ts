/**
 * Freezing a smolmachines bottle without stopping it: archive the root filesystem inside the VM,
 * copy it out, turn it into an image, and let `smolvm pack create` make the `.smolmachine` from it.
 * The steps, in order, are the list below; each one is in steps.ts.
 */
import { runPipeline, type PipelineProgress, type Step } from '../pipeline';
import { committedImageRef, validateSlug } from '../names';
import type { Services } from '../services';
import type { Snapshot } from '../state';
import { choosePusher } from '../tools/push';
import { findExecutable } from '../tools/which';
import type { FreezeState, FreezeTools } from './context';
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
];

export interface FreezeOptions {
  signal: AbortSignal;
  onProgress?: (progress: PipelineProgress) => void;
}

/**
 * Freezes one bottle. Only one operation per bottle at a time (across windows); a failed or
 * cancelled freeze leaves the last good snapshot as it was.
 */
export async function freezeBottle(services: Services, slug: string, options: FreezeOptions): Promise<Snapshot> {
  validateSlug(slug, services.prefix);
  const tools = resolveFreezeTools(services);
  const lock = await services.store.lock(slug, 'freeze');
  const log = services.logs.main;
  try {
    const state: FreezeState = {
      slug,
      machine: services.prefix + slug,
      imageRef: committedImageRef(slug),
      store: services.store,
      tools,
      run: services.run,
      toolLog: services.logs.tools,
      pullHost: services.settings.pullHost,
      versions: {},
    };
    log.info(`Freezing ${state.machine}`);
    await runPipeline(DOCKER_FREEZE_STEPS, state, { signal: options.signal, log, onProgress: options.onProgress });
    const snapshot = await services.store.readSnapshot(slug);
    if (!snapshot) throw new Error(`The snapshot of ${slug} is missing after the freeze.`);
    log.info(`Froze ${state.machine} into ${snapshot.sidecar}. To move it to another machine, copy it with its launcher ${snapshot.launcher}.`);
    return snapshot;
  } finally {
    await lock.release();
  }
}

/** Every tool the docker path needs, found before anything runs, so a missing one costs nothing. */
function resolveFreezeTools(services: Services): FreezeTools {
  const paths = services.settings.paths;
  return {
    smolvm: services.smolvm(),
    docker: services.tool('docker'),
    registry: findExecutable('registry', paths.registry),
    pusher: choosePusher({ craneBin: findExecutable('crane', paths.crane), skopeoBin: findExecutable('skopeo', paths.skopeo) }),
  };
}
