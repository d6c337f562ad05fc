/** Snapshots as files: export and import (launcher + sidecar together, as smolvm expects them), delete. */
import { copyFile, open, rename, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { refuseCaseTwin } from './caseClash';
import { describeFsError, UserError } from './errors';
import { exists } from './fsutil';
import { validateSlug } from './names';
import { sha256File, type Snapshot, type StateStore } from './state';
import { SMOLMACHINE_SUFFIX } from './tools/smolvm';

export interface ExportedFiles {
  launcher?: string;
  sidecar: string;
}

/** The pair of paths an export to `target` writes: `<name>` and `<name>.smolmachine`. */
export function exportPaths(target: string): { launcher: string; sidecar: string } {
  const launcher = target.endsWith(SMOLMACHINE_SUFFIX) ? target.slice(0, -SMOLMACHINE_SUFFIX.length) : target;
  if (!launcher || launcher.endsWith('/')) throw new UserError(`"${target}" does not name a file to export to.`);
  return { launcher, sidecar: launcher + SMOLMACHINE_SUFFIX };
}

/** Copies the sidecar (and the launcher, when there is one) beside each other; all or nothing. */
export async function exportSnapshot(snapshot: Snapshot, target: string): Promise<ExportedFiles> {
  const paths = exportPaths(target);
  // Copying a file onto itself, then cleaning up after a failure, would delete the snapshot.
  if (resolve(paths.sidecar) === resolve(snapshot.sidecar) || resolve(paths.launcher) === resolve(snapshot.launcher))
    throw new UserError(`${paths.sidecar} is the snapshot of ${snapshot.slug} itself: choose another place to export to. Nothing was exported.`);
  const hasLauncher = await exists(snapshot.launcher);
  let copyingLauncher = false;
  try {
    await copyFile(snapshot.sidecar, paths.sidecar);
    copyingLauncher = hasLauncher;
    if (hasLauncher) await copyFile(snapshot.launcher, paths.launcher);
  } catch (error) {
    await rm(paths.sidecar, { force: true });
    if (copyingLauncher) await rm(paths.launcher, { force: true });
    throw new UserError(`Could not export the snapshot of ${snapshot.slug} to ${paths.sidecar}: ${describeFsError(error)}. Nothing was exported.`);
  }
  return { sidecar: paths.sidecar, launcher: hasLauncher ? paths.launcher : undefined };
}

/** A .smolmachine ends in a 64-byte footer that begins with this magic. */
const SMOLPACK_MAGIC = 'SMOLPACK';
const FOOTER_SIZE = 64;

/** Whether the file ends in a smolmachine footer; says why not, for the user. */
export async function smolmachineProblem(path: string): Promise<string | undefined> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'does not exist';
    return `cannot be read: ${describeFsError(error)}`;
  }
  try {
    const info = await file.stat();
    if (info.isDirectory()) return 'is a folder, not a .smolmachine file';
    if (!info.isFile()) return 'is not a regular file';
    const { size } = info;
    if (size < FOOTER_SIZE) return 'is too small to be a .smolmachine file';
    const magic = Buffer.alloc(SMOLPACK_MAGIC.length);
    await file.read(magic, 0, magic.length, size - FOOTER_SIZE);
    return magic.toString('latin1') === SMOLPACK_MAGIC ? undefined : 'is not a .smolmachine file (its footer has no SMOLPACK magic)';
  } finally {
    await file.close();
  }
}

/**
 * Makes a frozen bottle of a `.smolmachine` file (and the launcher beside it, when there is one),
 * with a record so that resume can check it. Refuses to overwrite a snapshot unless told to.
 */
export async function importSnapshot(store: StateStore, source: string, slug: string, overwrite = false): Promise<Snapshot> {
  validateSlug(slug);
  await refuseCaseTwin(store, slug);
  const problem = await smolmachineProblem(source);
  if (problem) throw new UserError(`${source} ${problem}. Nothing was imported.`);
  const lock = await store.lock(slug, 'import');
  try {
    if (!overwrite && (await store.readSnapshot(slug))) throw new SnapshotExistsError(slug);
    const launcher = source.endsWith(SMOLMACHINE_SUFFIX) ? source.slice(0, -SMOLMACHINE_SUFFIX.length) : undefined;
    const staged = `${store.sidecarPath(slug)}.importing`;
    try {
      await copyFile(source, staged).catch((error: unknown) => {
        throw new UserError(`Could not import ${source}: ${describeFsError(error)}. Nothing was imported.`);
      });
      const sha256 = await sha256File(staged);
      await rm(store.recordPath(slug), { force: true });
      await rename(staged, store.sidecarPath(slug));
      if (launcher && (await exists(launcher))) await copyFile(launcher, store.launcherPath(slug));
      const sidecarBytes = (await stat(store.sidecarPath(slug))).size;
      await store.writeRecord({
        version: 1, slug, machine: '', createdAt: new Date().toISOString(), sidecar: store.sidecarPath(slug),
        launcher: store.launcherPath(slug), sidecarBytes, sha256, importedFrom: source, tools: {}, steps: [],
      });
    } finally {
      await rm(staged, { force: true });
    }
    return (await store.readSnapshot(slug))!;
  } finally {
    await lock.release();
  }
}

export class SnapshotExistsError extends UserError {
  constructor(readonly slug: string) {
    super(`Bottle "${slug}" already has a snapshot, so nothing was imported. Import under another name, or replace that snapshot.`);
    this.name = 'SnapshotExistsError';
  }
}

/** Deletes a bottle's snapshot (sidecar, launcher, record) while holding its lock. */
export async function deleteSnapshot(store: StateStore, slug: string): Promise<void> {
  const lock = await store.lock(slug, 'delete');
  try {
    await store.deleteSnapshot(slug);
  } finally {
    await lock.release();
  }
}
