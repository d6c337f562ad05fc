/** Small file-system helpers the state store and the pipelines share. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** Writes through a temp file in the same folder and renames it over, so readers never see half a file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(temp, data, mode === undefined ? undefined : { mode });
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A temp folder named after this process (`bot-bottle-<label>.<pid>.XXXXXX`), so that after a
 * crash the next start can tell the folders whose owner is gone.
 */
export function makeOwnedTempDir(label: string, root = tmpdir()): Promise<string> {
  return mkdtemp(join(root, `bot-bottle-${label}.${process.pid}.`));
}

/** The pid that made an owned temp folder, or undefined for any other name. */
export function ownerOfTempDir(name: string): number | undefined {
  const match = /^bot-bottle-[a-z-]+\.(\d+)\.[^.]+$/.exec(name);
  return match ? Number(match[1]) : undefined;
}
