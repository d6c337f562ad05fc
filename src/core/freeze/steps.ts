/**
 * The freeze steps. Each does one thing, registers its own cleanup, and hands what it made to the
 * next through FreezeState. `smolmachines.ts` puts them in order.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CancelledError, errorMessage, ToolError, UserError } from '../errors';
import { formatBytes } from '../format';
import { fileSize } from '../fsutil';
import { COMMITTED_REPOSITORY, committedTag } from '../names';
import { CLEANUP_TIMEOUT_MS, type Step, type StepContext } from '../pipeline';
import { IMAGE_TARBALL_NAME, LAUNCHER_NAME, sha256File, type SnapshotRecord } from '../state';
import { runTool } from '../run';
import { dockerfileForRootfs } from '../committedImage';
import * as docker from '../tools/docker';
import { pushTarball } from '../tools/push';
import { startEphemeralRegistry } from './registry';
import { parseCopyProgress, SMOLMACHINE_SUFFIX, TRANSFER_CAP_VARIABLE } from '../tools/smolvm';
import { describeCarried, settingsOf } from '../machineSettings';
import { ARCHIVE_EXCLUDES, hostArchiveName, vmArchivePath, VM_FILES_LIST, type ArchiveFormat, type FreezeState } from './context';
import { archiveExcludes, describeLeftOut, findMounts, mountsLeftOut } from './mounts';
import { digestGrowingLayer } from '../oci/layer';
import { ensureWorkDir, stageListing } from './incremental';

type FreezeStep = Step<FreezeState>;

/** Left free on the host beside the archive: the files made next to it, and what else runs there. */
const HOST_ROOM_MARGIN_BYTES = 64 * 1024 * 1024;

export const probeExec: FreezeStep = {
  id: 'probe',
  title: 'Checking that the bottle answers',
  weight: 1,
  async run(ctx, s) {
    const id = await runTool(s.run, s.tools.smolvm.exec(s.machine, ['id', '-u']), { signal: ctx.signal }).catch(async (error: unknown) => {
      throw error instanceof ToolError ? await probeFailure(s, error, ctx.signal) : error;
    });
    if (id.stdout.trim() !== '0') throw notRootError(s.machine, id.stdout.trim());
    s.versions.smolvm = await runTool(s.run, s.tools.smolvm.version(), { signal: ctx.signal }).catch(() => 'unknown');
    const status = await runTool(s.run, s.tools.smolvm.status(s.machine), { signal: ctx.signal });
    s.machineSettings = settingsOf(status);
    s.machineCreatedAt = status.createdAt?.toISOString();
    ctx.log.info(`  ${s.machine}: ${describeCarried(s.machineSettings)}`);
    for (const lost of s.machineSettings.notCarried) ctx.log.info(`  a resume cannot give back ${lost}`);
    s.mounts = await findMounts(s, status.mountCount, ctx.signal);
    const leftOut = mountsLeftOut(s);
    if (leftOut.length > 0) ctx.log.info(`  left out of the snapshot: ${describeLeftOut(leftOut)}; botBottle.freeze.includeMounts archives them too`);
    else if (s.includeMounts && s.mounts.length > 0) ctx.log.info(`  the snapshot includes the mounted ${s.mounts.map((m) => m.path).join(', ')}, as botBottle.freeze.includeMounts asks`);
  },
};

/**
 * Why the bottle does not answer, in the user's terms. smolvm's wording changes between versions,
 * so its JSON list says whether the machine is gone or not running; smolvm's own words follow.
 */
async function probeFailure(s: FreezeState, error: ToolError, signal: AbortSignal): Promise<ToolError> {
  const said = error.reason || '<no output>';
  const status = error.exitCode === undefined ? error.message : `exit ${error.exitCode}: ${said}`;
  const listed = await runTool(s.run, s.tools.smolvm.list(), { signal }).then(
    (machines) => ({ machine: machines.find((m) => m.name === s.machine) }),
    () => undefined,
  );
  let detail = `smolvm exec is not available for ${s.machine} (${status}). If an interactive session is attached, smolvm may refuse a second exec.`;
  if (listed && !listed.machine) detail = `There is no machine ${s.machine} any more: smolvm lists none of that name (${status}). Refresh the Bottles view.`;
  else if (listed?.machine && listed.machine.state !== 'running')
    detail = `${s.machine} is ${listed.machine.state}, not running (${status}). Start it, then freeze again.`;
  return new ToolError(error.command, error.exitCode, error.stderrTail, detail, error.toolReason);
}

/**
 * smolvm runs exec as the image's USER (src/cli/vm_common.rs:315-356) and exec has no --user flag
 * (src/cli/machine.rs:2625-2675): as anyone but root, tar would miss every file that user cannot read.
 */
function notRootError(machine: string, uid: string): UserError {
  return new UserError(
    `smolvm runs commands in ${machine} as user ${JSON.stringify(uid || '<nothing>')}, not as root (uid 0), because its image sets a USER. ` +
      'A freeze must read every file, and smolvm machine exec cannot be told to run as root. Nothing was archived. ' +
      'Make the bottle from an image that runs as root (the agent can still switch to its own user), or freeze a bottle resumed from a snapshot: those run commands as root.',
  );
}

export const archiveRootfs: FreezeStep = {
  id: 'archive',
  title: 'Archiving the root filesystem',
  weight: 20,
  async run(ctx, s) {
    ctx.defer('remove the archive in the VM', () => removeVmArchive(s));
    const tar = archiveCommand({
      archive: vmArchivePath(s.format),
      format: s.format,
      filesFrom: s.delta ? VM_FILES_LIST : undefined,
      excludes: archiveExcludes(s),
    });
    // tar exits 1 when files change while it reads them: normal on a live system.
    await runTool(s.run, s.tools.smolvm.exec(s.machine, tar, { okExitCodes: [0, 1] }), { signal: ctx.signal });
  },
};

export const copyArchiveOut: FreezeStep = {
  id: 'copy',
  title: 'Copying the archive',
  weight: 10,
  async run(ctx, s) {
    const folder = await archiveFolder(ctx, s);
    s.archive = join(folder, hostArchiveName(s.format));
    // smolvm's download progress has no total (src/cli/machine.rs:4989-4992), and its cap is checked while streaming: the size comes from here.
    const size = await vmFileSize(s, vmArchivePath(s.format), ctx);
    if (size !== undefined) await ensureHostRoom(folder, size);
    const copy = s.tools.smolvm.cp({ machine: s.machine, path: vmArchivePath(s.format) }, { host: s.archive }, { expectedBytes: size });
    const cap = copy.env?.[TRANSFER_CAP_VARIABLE];
    if (cap) ctx.log.info(`  the archive is ${formatBytes(size ?? 0)}: this copy raises smolvm's transfer cap to ${formatBytes(Number(cap))} (${TRANSFER_CAP_VARIABLE}=${cap})`);
    // Never through exec's stdout: it is capped at 11 MiB and unreliable for binary data.
    const copied = runTool(s.run, copy, { signal: ctx.signal, onLine: (_stream, line) => reportCopy(ctx, line, size) });
    // The native path digests the archive as it arrives, so that describing the image reads nothing again.
    const digests = s.imageBuilder === 'native'
      ? digestGrowingLayer(s.archive, { compression: s.format, zstd: s.hostZstd, until: copied, signal: ctx.signal }).catch((error: unknown) => {
        ctx.log.info(`  the archive could not be digested as it was copied (${errorMessage(error)}); describing the image reads it once more`);
        return undefined;
      })
      : undefined;
    await copied;
    s.archiveDigests = await digests;
    s.archiveBytes = await fileSize(s.archive);
    if (size !== undefined && s.archiveBytes !== size) throw new Error(`smolvm machine cp wrote ${s.archiveBytes ?? 'no'} bytes of the ${size}-byte archive to ${s.archive}.`);
    await removeVmArchive(s);
  },
};

/** Room for the archive and a margin for the files made beside it in `dir`, or a UserError before anything is copied. */
async function ensureHostRoom(dir: string, archiveBytes: number): Promise<void> {
  const stats = await statfs(dir);
  const free = stats.bavail * stats.bsize;
  if (free >= archiveBytes + HOST_ROOM_MARGIN_BYTES) return;
  throw new UserError(
    `Not enough free space on this computer for the bottle's archive: it is ${formatBytes(archiveBytes)}, and the disk of ${dirname(dir)} has ${formatBytes(free)} free. ` +
      'Nothing was copied. Free some space there (it holds the snapshots, or the temp folder).',
  );
}

export const buildImage: FreezeStep = {
  id: 'build',
  title: 'Building the image',
  weight: 15,
  async run(ctx, s) {
    const dockerBin = needTool(s.tools.docker, 'docker');
    const dockerfile = join(s.workDir!, 'Dockerfile');
    await writeFile(dockerfile, dockerfileForRootfs());
    // The label lets the next start find the image if this window is killed before it is removed.
    const labels = { [docker.COMMITTED_LABEL]: s.slug };
    await runTool(s.run, docker.build(dockerBin, { tag: s.imageRef, contextDir: s.workDir!, dockerfile, labels }), { signal: ctx.signal });
    ctx.defer('remove the image from docker', () => runTool(s.run, docker.rmi(dockerBin, s.imageRef), { timeoutMs: CLEANUP_TIMEOUT_MS }));
    s.imageId = await runTool(s.run, docker.imageId(dockerBin, s.imageRef), { signal: ctx.signal });
    s.versions.docker = await runTool(s.run, docker.version(dockerBin), { signal: ctx.signal }).then((v) => v.client, () => 'unknown');
  },
};

export const saveImage: FreezeStep = {
  id: 'save',
  title: 'Saving the image',
  weight: 10,
  async run(ctx, s) {
    // skopeo's docker-archive: reference cannot hold a ":" in its path; the temp folder has none
    // (machine cp would have refused it).
    const stateDir = await s.store.ensureBottleDir(s.slug);
    const tarball = join(stateDir.includes(':') ? s.workDir! : stateDir, IMAGE_TARBALL_NAME);
    ctx.defer('remove the image tarball', () => rm(tarball, { force: true }));
    s.imageTarball = tarball;
    await runTool(s.run, docker.save(needTool(s.tools.docker, 'docker'), s.imageRef, tarball), { signal: ctx.signal });
  },
};

export const pushToRegistry: FreezeStep = {
  id: 'push',
  title: 'Pushing the image to a local registry',
  weight: 10,
  async run(ctx, s) {
    const registry = await startEphemeralRegistry({
      registryBin: s.tools.registry,
      dockerBin: s.tools.docker,
      log: s.toolLog,
      signal: ctx.signal,
      pullHost: s.pullHost,
    });
    // Stopped only when the whole freeze ends: the pack step pulls from it.
    ctx.defer('stop the registry', () => registry.stop());
    const image = `${COMMITTED_REPOSITORY}:${committedTag(s.imageId!)}`;
    s.pullRef = `${registry.pullEndpoint}/${image}`;
    const pusher = needTool(s.tools.pusher, 'crane or skopeo');
    s.versions.pusher = pusher.tool;
    await runTool(s.run, pushTarball(pusher, s.imageTarball!, `${registry.pushEndpoint}/${image}`, { insecure: true }), { signal: ctx.signal });
  },
};

export const packSnapshot: FreezeStep = {
  id: 'pack',
  title: 'Packing the snapshot',
  weight: 30,
  async run(ctx, s) {
    // Packed beside the last good snapshot under a temporary name, so that the final rename is atomic.
    const staging = join(await s.store.ensureBottleDir(s.slug), `.incoming-${randomBytes(6).toString('hex')}`);
    await mkdir(staging);
    ctx.defer('remove the unfinished snapshot', () => rm(staging, { recursive: true, force: true }));
    s.stagedLauncher = join(staging, LAUNCHER_NAME);
    // The pack records cpus and mem; `create --from` keeps them unless its own flags differ from 4 / 8192.
    const size = { cpus: s.machineSettings?.cpus, memoryMib: s.machineSettings?.memoryMib };
    await runTool(s.run, s.tools.smolvm.packCreate({ image: s.pullRef!, output: s.stagedLauncher, ...size }), { signal: ctx.signal, env: s.packEnv });
  },
};

export const keepSnapshot: FreezeStep = {
  id: 'keep',
  title: 'Keeping the snapshot',
  weight: 4,
  commits: true,
  async run(ctx, s) {
    const stagedSidecar = s.stagedLauncher! + SMOLMACHINE_SUFFIX;
    const sidecarBytes = await fileSize(stagedSidecar);
    if (sidecarBytes === undefined) throw new Error(`smolvm pack create did not write ${stagedSidecar}`);
    const sha256 = await sha256File(stagedSidecar, ctx.signal);
    if (ctx.signal.aborted) throw new CancelledError();
    const listing = await stageListing(s, dirname(s.stagedLauncher!));
    const record: SnapshotRecord = {
      version: 1,
      slug: s.slug,
      machine: s.machine,
      createdAt: new Date().toISOString(),
      sidecar: s.store.sidecarPath(s.slug),
      launcher: s.store.launcherPath(s.slug),
      sidecarBytes,
      sha256,
      archiveBytes: s.archiveBytes,
      imageBuilder: s.imageBuilder,
      compression: s.format,
      mountsLeftOut: mountsLeftOut(s),
      machineSettings: s.machineSettings,
      layers: listing ? s.layers?.map(({ digest, diffId, size, mediaType, role }) => ({ digest, diffId, size, mediaType, role })) : undefined,
      listing,
      tools: s.versions,
      steps: [...ctx.timings],
    };
    await s.store.replaceSnapshot(record, { sidecar: stagedSidecar, launcher: s.stagedLauncher! });
  },
};

export interface ArchiveSelection {
  archive: string;
  format: ArchiveFormat;
  /** Only the paths this NUL-separated list names, each without what is below it (the list names that too). */
  filesFrom?: string;
  /** What a full archive leaves out, as tar patterns (`./proc`); the listing that chose `filesFrom` left it out already. */
  excludes?: readonly string[];
  root?: string;
}

/**
 * The tar that archives the root filesystem, or only the paths an incremental freeze found changed.
 * A listed path deleted before tar reaches it is passed over: the next freeze's listing deletes it.
 */
export function archiveCommand(what: ArchiveSelection): string[] {
  const gzip = { gzip: ['--gzip'], zstd: ['--use-compress-program=zstd -T0'], none: [] }[what.format];
  const file = `--file=${what.archive}`;
  const directory = `--directory=${what.root ?? '/'}`;
  if (what.filesFrom)
    return ['tar', '--create', ...gzip, file, directory, '--null', '--verbatim-files-from', '--no-recursion', '--ignore-failed-read', `--files-from=${what.filesFrom}`];
  return ['tar', '--create', ...gzip, ...(what.excludes ?? ARCHIVE_EXCLUDES).map((dir) => `--exclude=${dir}`), file, directory, '.'];
}

/**
 * The native path copies the archive into the layer store's file system, so that keeping it as a
 * layer is a rename; a store whose path has ":" (machine cp would misread it) gets the temp folder.
 */
async function archiveFolder(ctx: StepContext, s: FreezeState): Promise<string> {
  if (s.imageBuilder !== 'native' || s.layerStore.dir.includes(':')) return ensureWorkDir(ctx, s);
  const incoming = await s.layerStore.makeIncoming();
  ctx.defer('remove the incoming layer folder', () => rm(incoming, { recursive: true, force: true }));
  return incoming;
}

/** Runs after cancel too: no signal, but a time limit. A machine that is gone has no archive left. */
async function removeVmArchive(s: FreezeState): Promise<void> {
  await runTool(s.run, s.tools.smolvm.exec(s.machine, ['rm', '-f', vmArchivePath(s.format)]), { timeoutMs: CLEANUP_TIMEOUT_MS });
}

/**
 * The size of a file in the VM, from `stat` (GNU and busybox both know `-c %s`); undefined, and
 * said in the log, when the bottle cannot tell: the copy then goes ahead as smolvm alone would.
 */
async function vmFileSize(s: FreezeState, path: string, ctx: StepContext): Promise<number | undefined> {
  const printed = await runTool(s.run, s.tools.smolvm.exec(s.machine, ['stat', '-c', '%s', path]), { signal: ctx.signal }).then(
    (stat) => stat.stdout.trim(),
    (error: unknown) => {
      if (!(error instanceof ToolError)) throw error;
      return error.reason || error.message;
    },
  );
  if (/^\d+$/.test(printed)) return Number(printed);
  ctx.log.warn(`  the archive's size is unknown (stat said ${JSON.stringify(printed.slice(0, 200))}): no check of the host's free space, and smolvm's 4 GiB transfer cap applies`);
  return undefined;
}

/** A share of the size when it is known; smolvm rounds what it has copied, so the share is capped at 1. */
function reportCopy(ctx: StepContext, line: string, size: number | undefined): void {
  const progress = parseCopyProgress(line);
  if (!progress) return;
  const copied = formatBytes(progress.bytes);
  if (size === undefined) return ctx.progress(0, `${copied} copied, ${progress.rate}`);
  const fraction = size === 0 ? 1 : Math.min(1, progress.bytes / size);
  ctx.progress(fraction, `${copied} of ${formatBytes(size)} (${Math.floor(fraction * 100)}%), ${progress.rate}`);
}

function needTool<T>(tool: T | undefined, name: string): T {
  if (!tool) throw new Error(`${name} is needed for this step but was not found.`);
  return tool;
}
