/**
 * The extension's own store of image layers, shared by every snapshot of every bottle under a state
 * root: `<stateRoot>/.layers/sha256/<hex>`, each file named by its digest, so that a layer two
 * snapshots share is kept once. Dot-named, so the Bottles view and the slug listing pass it over.
 * A layer goes in by rename from a folder on the same file system, never half-written.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeFsError, UserError } from './errors';
import type { SnapshotRecord, StateStore } from './state';

export const LAYER_STORE_DIR = '.layers';
const DIGEST = /^sha256:([0-9a-f]{64})$/;

export class LayerStore {
  readonly dir: string;

  constructor(readonly stateRoot: string) {
    this.dir = join(stateRoot, LAYER_STORE_DIR, 'sha256');
  }

  pathOf(digest: string): string {
    const match = DIGEST.exec(digest);
    if (!match) throw new Error(`${JSON.stringify(digest)} is not a sha256 digest`);
    return join(this.dir, match[1]);
  }

  /** Whether the store holds the layer, at the size recorded for it. */
  async has(digest: string, size: number): Promise<boolean> {
    const info = await stat(this.pathOf(digest)).catch(() => undefined);
    return info?.isFile() === true && info.size === size;
  }

  /** Moves `file` (whose digest the caller computed) into the store; a layer already there is kept. */
  async put(file: string, digest: string): Promise<string> {
    const target = this.pathOf(digest);
    await this.ensureDir();
    if (await stat(target).then(() => true, () => false)) {
      await rm(file, { force: true });
      return target;
    }
    const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await rename(file, temp).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EXDEV') throw error;
        await copyFile(file, temp);
        await rm(file, { force: true });
      });
      await chmod(temp, 0o600);
      await rename(temp, target);
    } catch (error) {
      throw new UserError(`Cannot keep the layer ${digest} in ${this.dir}: ${describeFsError(error)}. Nothing of the last good snapshot changed.`);
    } finally {
      await rm(temp, { force: true });
    }
    return target;
  }

  async putBytes(bytes: Buffer, digest: string): Promise<string> {
    await this.ensureDir();
    const temp = join(this.dir, `.new-${randomBytes(6).toString('hex')}`);
    await writeFile(temp, bytes, { mode: 0o600 });
    return this.put(temp, digest);
  }

  /**
   * A new folder inside the store, on its file system, for a layer to be written into and then put
   * in by rename (no second copy). The caller removes it.
   */
  async makeIncoming(): Promise<string> {
    await this.ensureDir();
    const dir = join(this.stateRoot, LAYER_STORE_DIR, `.incoming-${randomBytes(6).toString('hex')}`);
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  /**
   * Removes every layer no snapshot refers to (and leftovers of an interrupted put or copy); returns the
   * digests removed. A freeze running meanwhile may lose a layer it has not recorded yet, and then
   * fails (its bottle keeps its last good snapshot): run it when no freeze runs.
   */
  async prune(referenced: ReadonlySet<string>): Promise<string[]> {
    const storeRoot = join(this.stateRoot, LAYER_STORE_DIR);
    for (const name of await readdir(storeRoot).catch(() => [] as string[]))
      if (name.startsWith('.incoming-')) await rm(join(storeRoot, name), { recursive: true, force: true });
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const removed: string[] = [];
    for (const name of names) {
      const digest = `sha256:${name}`;
      if (DIGEST.test(digest) && referenced.has(digest)) continue;
      await rm(join(this.dir, name), { force: true });
      if (DIGEST.test(digest)) removed.push(digest);
    }
    return removed;
  }

  private async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }
}

/** The layers the given snapshot records refer to: what prune must keep. */
export function layersReferencedBy(records: readonly (SnapshotRecord | undefined)[]): Set<string> {
  return new Set(records.flatMap((record) => record?.layers?.map((layer) => layer.digest) ?? []));
}

/** Every snapshot record under the state root: each bottle's newest and its history. */
async function allRecords(store: StateStore): Promise<(SnapshotRecord | undefined)[]> {
  const records: (SnapshotRecord | undefined)[] = [];
  for (const slug of await store.listSlugs()) {
    records.push((await store.readSnapshot(slug))?.record);
    for (const entry of await store.readHistory(slug)) records.push(entry.record);
  }
  return records;
}

/**
 * Removes the layers of snapshots that are gone (`gone`: their records) once no snapshot left refers
 * to them. Only those: a layer a freeze running meanwhile has put but not yet recorded is never one.
 */
export async function dropLayersOf(store: StateStore, gone: readonly (SnapshotRecord | undefined)[]): Promise<string[]> {
  const candidates = layersReferencedBy(gone);
  if (candidates.size === 0) return [];
  const kept = layersReferencedBy(await allRecords(store));
  const layers = new LayerStore(store.root);
  const removed: string[] = [];
  for (const digest of candidates) {
    if (kept.has(digest)) continue;
    await rm(layers.pathOf(digest), { force: true });
    removed.push(digest);
  }
  return removed;
}
