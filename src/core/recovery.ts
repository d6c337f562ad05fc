/**
 * After a crash (VS Code killed mid-freeze), the next start cleans what the interrupted work left.
 * First it ends the tools the dead process left running (`pack create`, `create --from`, the
 * registry), so that none writes into what is cleaned next: the stale lock, staging and parked
 * folders, the image tarball, temp folders, a machine a resume half created, the archive inside a
 * VM that was being frozen, and the docker path's registry container, network and image. An
 * install of a snapshot that stopped is finished forward or back (see install.ts), so each bottle
 * keeps exactly its last good snapshot or the new one, whole.
 */
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endOrphanedChildren } from './childRecord';
import { errorMessage } from './errors';
import { exists, isProcessAlive, ownerOfTempDir } from './fsutil';
import { findExecutable } from './executables';
import { VM_ARCHIVES } from './freeze/context';
import { slugProblem } from './names';
import { CLEANUP_TIMEOUT_MS } from './pipeline';
import { deleteHalfResumedMachine } from './resume';
import { abandonedResume } from './resumeMarker';
import { killProcessGroup, runTool } from './run';
import type { Services } from './services';
import { BottleLockedError, IMAGE_TARBALL_NAME } from './state';
import * as docker from './tools/docker';
import { removeContainer } from './tools/registry';


/** Cleans up after interrupted work; returns one line per thing it did (empty when all was tidy). */
export async function recoverInterruptedWork(services: Services, tempRoot = tmpdir()): Promise<string[]> {
  const done = await endOrphanedChildren(services.store.root, services.run);
  for (const slug of await services.store.listSlugs()) done.push(...(await recoverBottle(services, slug)));
  done.push(...(await stopOrphanedRegistries(services)));
  done.push(...(await removeDockerLeftovers(services)));
  done.push(...(await removeOrphanedTempDirs(tempRoot)));
  return done;
}

async function recoverBottle(services: Services, slug: string): Promise<string[]> {
  // Work in progress in another window holds the lock: its staging files are not debris. Holding the
  // lock while cleaning keeps another window from starting work here meanwhile.
  const lock = await services.store.lock(slug, 'recovery').catch((error: unknown) => {
    if (error instanceof BottleLockedError) return undefined;
    throw error;
  });
  if (!lock) return [];
  try {
    const done: string[] = [];
    const stale = lock.tookOverFrom;
    if (stale) {
      done.push(`${slug}: removed the lock of an interrupted ${stale.operation} (process ${stale.pid}, since ${stale.since})`);
      if (stale.operation === 'freeze') done.push(...(await removeVmArchives(services, slug)));
    }
    done.push(...(await removeHalfResumedMachine(services, slug)));
    done.push(...(await services.store.recoverSnapshotFiles(slug)).map((line) => `${slug}: ${line}`));
    const tarball = join(services.store.bottleDir(slug), IMAGE_TARBALL_NAME);
    if (await exists(tarball)) {
      await rm(tarball, { force: true });
      done.push(`${slug}: removed ${IMAGE_TARBALL_NAME}`);
    }
    return done;
  } finally {
    await lock.release();
  }
}

async function removeVmArchives(services: Services, slug: string): Promise<string[]> {
  const machine = services.prefix + slug;
  try {
    const smolvm = services.smolvm();
    const machines = await runTool(services.run, smolvm.list());
    if (!machines.some((m) => m.name === machine && m.state === 'running')) return [];
    await runTool(services.run, smolvm.exec(machine, ['rm', '-f', ...VM_ARCHIVES]), { timeoutMs: CLEANUP_TIMEOUT_MS });
    return [`${slug}: removed the freeze archive inside ${machine}`];
  } catch (error) {
    return [`${slug}: could not remove the freeze archive inside ${machine}: ${errorMessage(error)}`];
  }
}

async function removeOrphanedTempDirs(tempRoot: string): Promise<string[]> {
  const done: string[] = [];
  for (const name of await readdir(tempRoot).catch(() => [])) {
    const owner = ownerOfTempDir(name);
    if (owner === undefined || isProcessAlive(owner)) continue;
    await rm(join(tempRoot, name), { recursive: true, force: true });
    done.push(`removed the temp folder ${join(tempRoot, name)} of process ${owner}`);
  }
  return done;
}

/** A registry whose extension host was killed lives on (its own process group); it serves nobody now. */
async function stopOrphanedRegistries(services: Services): Promise<string[]> {
  const listing = await runTool(services.run, { argv: ['ps', '-eo', 'pid=,args='], quietStdout: true, parse: (r) => r.stdout }, { routine: true }).catch(() => '');
  const done: string[] = [];
  for (const line of listing.split('\n')) {
    const match = /^\s*(\d+)\s.*\bserve\s+\S*\bbot-bottle-registry\.(\d+)\.[^/\s]+\/config\.yml/.exec(line);
    if (!match || isProcessAlive(Number(match[2]))) continue;
    killProcessGroup(Number(match[1]));
    done.push(`stopped the registry (process ${match[1]}) of process ${match[2]}, which is gone`);
  }
  return done;
}

/** A resume killed between `machine create --from` and the machine being ready left a machine nobody can use. */
async function removeHalfResumedMachine(services: Services, slug: string): Promise<string[]> {
  const marker = await abandonedResume(services.store, slug);
  if (!marker) return [];
  try {
    await deleteHalfResumedMachine(services, slug, marker.machine);
    return [`${slug}: deleted ${marker.machine}, which an interrupted resume (process ${marker.pid}) had half created`];
  } catch (error) {
    return [`${slug}: could not delete ${marker.machine}, which an interrupted resume had half created: ${errorMessage(error)}`];
  }
}

// ---------------------------------------------------------------------------------------------
// The docker path's leftovers, found by their labels: a registry container and its network whose
// owner process is gone, and committed images of bottles no freeze is working on.

const DOCKER_TIMEOUT_MS = 30_000;

async function removeDockerLeftovers(services: Services): Promise<string[]> {
  try {
    const dockerBin = findExecutable('docker', services.settings.paths.docker);
    if (!dockerBin) return [];
    return [...(await removeOrphanedRegistryContainers(services, dockerBin)), ...(await removeOrphanedCommittedImages(services, dockerBin))];
  } catch (error) {
    // Most often no engine is running (Docker Desktop stopped): the next start looks again.
    services.logs.main.debug(`Did not look for docker leftovers: ${errorMessage(error)}`);
    return [];
  }
}

async function removeOrphanedRegistryContainers(services: Services, dockerBin: string): Promise<string[]> {
  const done: string[] = [];
  const query = { routine: true, timeoutMs: DOCKER_TIMEOUT_MS };
  const orphaned = (owner: string) => {
    const pid = docker.ownerOnThisHost(owner);
    return pid !== undefined && pid !== process.pid && !isProcessAlive(pid);
  };
  for (const container of await runTool(services.run, docker.labelledContainers(dockerBin, docker.REGISTRY_LABEL, docker.OWNER_LABEL), query)) {
    if (!orphaned(container.value)) continue;
    await runTool(services.run, removeContainer(dockerBin, container.id), { timeoutMs: DOCKER_TIMEOUT_MS });
    done.push(`removed the registry container ${container.id} of process ${docker.ownerOnThisHost(container.value)}, which is gone`);
  }
  for (const network of await runTool(services.run, docker.labelledNetworks(dockerBin, docker.REGISTRY_LABEL, docker.OWNER_LABEL), query)) {
    if (!orphaned(network.value)) continue;
    await runTool(services.run, docker.removeNetwork(dockerBin, network.id), { timeoutMs: DOCKER_TIMEOUT_MS });
    done.push(`removed the registry network ${network.id} of process ${docker.ownerOnThisHost(network.value)}, which is gone`);
  }
  return done;
}

/** A freeze removes its image when it ends; one whose bottle no live process is freezing was left by a crash. */
async function removeOrphanedCommittedImages(services: Services, dockerBin: string): Promise<string[]> {
  const query = { routine: true, timeoutMs: DOCKER_TIMEOUT_MS };
  const ids = await runTool(services.run, docker.labelledImageIds(dockerBin, docker.COMMITTED_LABEL), query);
  if (ids.length === 0) return [];
  const done: string[] = [];
  for (const image of await runTool(services.run, docker.imageLabel(dockerBin, ids, docker.COMMITTED_LABEL), query)) {
    if (slugProblem(image.value, services.prefix) || (await services.store.lockOwner(image.value))) continue;
    await runTool(services.run, docker.removeImageById(dockerBin, image.id), { timeoutMs: DOCKER_TIMEOUT_MS });
    done.push(`removed the image ${image.id.replace(/^sha256:/, '').slice(0, 12)} of an interrupted freeze of ${image.value || 'a bottle'}`);
  }
  return done;
}
