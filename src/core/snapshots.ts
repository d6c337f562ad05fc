/** Snapshots as files: export and import (launcher + sidecar together, as smolvm expects them), delete. */
import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream, type Stats } from 'node:fs';
import { copyFile, lstat, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { refuseCaseTwin } from './caseClash';
import { describeFsError, UserError } from './errors';
import { exists } from './fsutil';
import { InstallUnfinishedError } from './install';
import { dropLayersOf } from './layerStore';
import { validateSlug } from './names';
import { LAUNCHER_NAME, SIDECAR_NAME, type Snapshot, type SnapshotLabels, type SnapshotRecord, type StateStore } from './state';
import { SMOLMACHINE_SUFFIX } from './tools/smolvm';

export interface ExportedFiles {
  launcher?: string;
  sidecar: string;
}

export interface ExportOptions {
  /** Replace files already at the target (the user confirmed it). */
  overwrite?: boolean;
}

/** The export would replace files that exist; nothing was written. */
export class ExportTargetExistsError extends UserError {
  constructor(readonly files: readonly string[]) {
    const what = files.length === 1 ? `${files[0]} already exists` : `${files.join(' and ')} already exist`;
    super(`${what}. Export under another name, or replace ${files.length === 1 ? 'it' : 'them'}. Nothing was exported.`);
    this.name = 'ExportTargetExistsError';
  }
}

/** The pair of paths an export to `target` writes: `<name>` and `<name>.smolmachine`. */
export function exportPaths(target: string): { launcher: string; sidecar: string } {
  const launcher = target.endsWith(SMOLMACHINE_SUFFIX) ? target.slice(0, -SMOLMACHINE_SUFFIX.length) : target;
  if (!launcher || launcher.endsWith('/')) throw new UserError(`"${target}" does not name a file to export to.`);
  return { launcher, sidecar: launcher + SMOLMACHINE_SUFFIX };
}

/**
 * Copies the sidecar (and the launcher, when there is one) beside each other; all or nothing. Files
 * already there are replaced only with `overwrite`, and then only once both copies are complete.
 */
export async function exportSnapshot(snapshot: Snapshot, target: string, options: ExportOptions = {}): Promise<ExportedFiles> {
  const paths = exportPaths(target);
  // Copying a file onto itself, then cleaning up after a failure, would delete the snapshot.
  if (resolve(paths.sidecar) === resolve(snapshot.sidecar) || resolve(paths.launcher) === resolve(snapshot.launcher))
    throw new UserError(`${paths.sidecar} is the snapshot of ${snapshot.slug} itself: choose another place to export to. Nothing was exported.`);
  const hasLauncher = await exists(snapshot.launcher);
  const copies: Array<[string, string]> = [[snapshot.sidecar, paths.sidecar]];
  if (hasLauncher) copies.push([snapshot.launcher, paths.launcher]);
  const existing = await Promise.all(copies.map(([, to]) => lstat(to).then((info) => ({ to, info }), () => undefined)));
  const taken = existing.filter((e) => e !== undefined);
  const folder = taken.find((e) => e.info.isDirectory());
  if (folder) throw new UserError(`${folder.to} is a folder: choose another name to export to. Nothing was exported.`);
  if (taken.length > 0 && !options.overwrite) throw new ExportTargetExistsError(taken.map((e) => e.to));
  await copyAllOrNothing(copies).catch((error: unknown) => {
    throw new UserError(`Could not export the snapshot of ${snapshot.slug} to ${paths.sidecar}: ${describeFsError(error)}. Nothing was exported.`);
  });
  return { sidecar: paths.sidecar, launcher: hasLauncher ? paths.launcher : undefined };
}

/** Copies each pair to a temporary name beside its target, then renames them all into place. */
async function copyAllOrNothing(copies: ReadonlyArray<[string, string]>): Promise<void> {
  const temps = copies.map(([, to]) => join(dirname(to), `.${basename(to)}.${randomBytes(4).toString('hex')}.part`));
  const placed: string[] = [];
  try {
    for (const [i, [from]] of copies.entries()) await copyFile(from, temps[i], constants.COPYFILE_EXCL);
    for (const [i, [, to]] of copies.entries()) {
      await rename(temps[i], to);
      placed.push(to);
    }
  } catch (error) {
    for (const path of [...temps, ...placed]) await rm(path, { force: true });
    throw error;
  }
}

/** A .smolmachine ends in a 64-byte footer that begins with this magic. */
const SMOLPACK_MAGIC = 'SMOLPACK';
const FOOTER_SIZE = 64;

/** What a path that is not a regular file is, for a message; undefined for a regular file. */
function notARegularFile(info: Stats): string | undefined {
  if (info.isFile()) return undefined;
  if (info.isDirectory()) return 'is a folder';
  if (info.isFIFO()) return 'is a named pipe (FIFO)';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'is a device';
  if (info.isSocket()) return 'is a socket';
  return 'is not a regular file';
}

/**
 * Opens a regular file for reading, or says why not. Checked before opening, and opened without
 * blocking (a FIFO swapped in meanwhile would block a plain open forever), then checked again.
 */
async function openRegularFile(path: string, what: string): Promise<FileHandle | { problem: string }> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { problem: 'does not exist' };
    return { problem: `cannot be read: ${describeFsError(error)}` };
  }
  const kind = notARegularFile(info);
  if (kind) return { problem: `${kind}, not ${what}` };
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    return { problem: `cannot be read: ${describeFsError(error)}` };
  }
  const opened = notARegularFile(await handle.stat());
  if (!opened) return handle;
  await handle.close();
  return { problem: `${opened}, not ${what}` };
}

async function footerProblem(file: FileHandle): Promise<string | undefined> {
  const { size } = await file.stat();
  if (size < FOOTER_SIZE) return 'is too small to be a .smolmachine file';
  const magic = Buffer.alloc(SMOLPACK_MAGIC.length);
  await file.read(magic, 0, magic.length, size - FOOTER_SIZE);
  return magic.toString('latin1') === SMOLPACK_MAGIC ? undefined : 'is not a .smolmachine file (its footer has no SMOLPACK magic)';
}

/** Whether the file is a regular file ending in a smolmachine footer; says why not, for the user. */
export async function smolmachineProblem(path: string): Promise<string | undefined> {
  const file = await openRegularFile(path, 'a .smolmachine file');
  if ('problem' in file) return file.problem;
  try {
    return await footerProblem(file);
  } finally {
    await file.close();
  }
}

/** The files an import reads, opened once and checked: what is copied is what was checked. */
interface ImportSources {
  sidecar: FileHandle;
  /** The launcher beside the sidecar, when there is one. */
  launcher?: { path: string; file: FileHandle };
  close(): Promise<void>;
}

async function openImportSources(source: string): Promise<ImportSources> {
  const sidecar = await openRegularFile(source, 'a .smolmachine file');
  if ('problem' in sidecar) throw new UserError(`${source} ${sidecar.problem}. Nothing was imported.`);
  const sources: ImportSources = { sidecar, close: async () => {
    await sidecar.close();
    await sources.launcher?.file.close();
  } };
  try {
    const problem = await footerProblem(sidecar);
    if (problem) throw new UserError(`${source} ${problem}. Nothing was imported.`);
    const launcherPath = source.endsWith(SMOLMACHINE_SUFFIX) ? source.slice(0, -SMOLMACHINE_SUFFIX.length) : undefined;
    if (launcherPath && (await lstat(launcherPath).then(() => true, () => false))) {
      const launcher = await openRegularFile(launcherPath, 'a launcher file');
      if ('problem' in launcher) throw new UserError(`The launcher beside ${source}, ${launcherPath}, ${launcher.problem}. Nothing was imported.`);
      sources.launcher = { path: launcherPath, file: launcher };
    }
    return sources;
  } catch (error) {
    await sources.close();
    throw error;
  }
}

/**
 * Makes a frozen bottle of a `.smolmachine` file (and the launcher beside it, when there is one),
 * with a record so that resume can check it. Refuses to overwrite a snapshot unless told to. The
 * files are staged and installed as one unit: a failure leaves the last good snapshot as it was.
 */
export async function importSnapshot(store: StateStore, source: string, slug: string, overwrite = false): Promise<Snapshot> {
  validateSlug(slug);
  await refuseCaseTwin(store, slug);
  const sources = await openImportSources(source);
  try {
    await store.withLock(slug, 'import', async () => {
      if (!overwrite && (await store.readSnapshot(slug))) throw new SnapshotExistsError(slug);
      const staging = await store.makeStaging(slug);
      try {
        await stageImport(store, staging, sources, source, slug);
        await store.installStaged(slug, staging).catch((error: unknown) => {
          if (error instanceof InstallUnfinishedError) throw error;
          throw new UserError(`Could not import ${source}: ${describeFsError(error)}. Nothing was imported.`);
        });
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    });
  } finally {
    await sources.close();
  }
  return (await store.readSnapshot(slug))!;
}

async function stageImport(store: StateStore, staging: string, sources: ImportSources, source: string, slug: string): Promise<void> {
  const copied = await copyOut(sources.sidecar, join(staging, SIDECAR_NAME), source);
  if (sources.launcher) await copyOut(sources.launcher.file, join(staging, LAUNCHER_NAME), sources.launcher.path);
  const record: SnapshotRecord = {
    version: 1, slug, machine: '', createdAt: new Date().toISOString(), sidecar: store.sidecarPath(slug),
    launcher: store.launcherPath(slug), sidecarBytes: copied.bytes, sha256: copied.sha256, importedFrom: source, tools: {}, steps: [],
  };
  await store.writeStagedRecord(staging, record);
}

/** Copies an open file to a new file, hashing it on the way. */
async function copyOut(file: FileHandle, to: string, from: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    await pipeline(
      file.createReadStream({ start: 0, autoClose: false }),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          bytes += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(to, { flags: 'wx', mode: 0o600 }),
    );
  } catch (error) {
    throw new UserError(`Could not import ${from}: ${describeFsError(error)}. Nothing was imported.`);
  }
  return { bytes, sha256: hash.digest('hex') };
}

export class SnapshotExistsError extends UserError {
  constructor(readonly slug: string) {
    super(`Bottle "${slug}" already has a snapshot, so nothing was imported. Import under another name, or replace that snapshot.`);
    this.name = 'SnapshotExistsError';
  }
}

/**
 * Deletes one snapshot (sidecar, launcher, record) as one unit while holding its bottle's lock: an
 * entry of the history, or the newest, whose place the newest of the history then takes. Resolves
 * to the newest snapshot once the newest was deleted (undefined when none is left).
 */
export async function deleteSnapshot(store: StateStore, target: string | Snapshot): Promise<{ newest?: Snapshot; promoted: boolean }> {
  const slug = typeof target === 'string' ? target : target.slug;
  const historyId = typeof target === 'string' ? undefined : target.historyId;
  return store.withLock(slug, 'delete', async () => {
    const gone = typeof target === 'string' ? (await store.readSnapshot(slug))?.record : target.record;
    let result: { newest?: Snapshot; promoted: boolean };
    if (historyId !== undefined) {
      await store.deleteHistoryEntry(slug, historyId).catch((error: unknown) => {
        throw new UserError(`Could not delete that snapshot of ${slug}: ${describeFsError(error)}.`);
      });
      result = { promoted: false };
    } else {
      const newest = await store.deleteSnapshot(slug);
      result = { newest, promoted: newest !== undefined };
    }
    // The snapshot is gone either way: a layer left behind only costs disk until the next prune.
    await dropLayersOf(store, [gone]).catch(() => undefined);
    return result;
  });
}

/** Renames a snapshot, sets its note, pins or unpins it, holding its bottle's lock. */
export async function labelSnapshot(store: StateStore, snapshot: Snapshot, labels: SnapshotLabels): Promise<Snapshot> {
  return store.withLock(snapshot.slug, 'label', () => store.labelSnapshot(snapshot.slug, snapshot.historyId, labels));
}
