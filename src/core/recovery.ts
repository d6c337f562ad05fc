/**
 * After a crash (VS Code killed mid-freeze), the next start cleans what the interrupted work left:
 * the stale lock, staging and parked folders, the image tarball, temp folders and an orphaned
 * registry of a process that is gone, and the archive inside a VM that was being frozen. An install
 * of a snapshot that stopped is finished forward or back (see install.ts), so each bottle keeps
 * exactly its last good snapshot or the new one, whole.
 */
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from './errors';
import { exists, isProcessAlive, ownerOfTempDir } from './fsutil';
import { VM_ARCHIVES } from './freeze/context';
import { CLEANUP_TIMEOUT_MS } from './pipeline';
import { killProcessGroup, runTool } from './run';
import type { Services } from './services';
import { BottleLockedError, IMAGE_TARBALL_NAME } from './state';


/** Cleans up after interrupted work; returns one line per thing it did (empty when all was tidy). */
export async function recoverInterruptedWork(services: Services, tempRoot = tmpdir()): Promise<string[]> {
  const done: string[] = [];
  for (const slug of await services.store.listSlugs()) done.push(...(await recoverBottle(services, slug)));
  done.push(...(await stopOrphanedRegistries(services)));
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
