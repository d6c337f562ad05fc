/**
 * A bottle's history: every freeze keeps the snapshot it replaces, in `history/<id>/` of the
 * bottle's state folder (see state.ts and install.ts), and `botBottle.snapshots.keep` prunes the
 * oldest after a freeze. The rules for what goes live here.
 */
import { randomBytes } from 'node:crypto';
import type { Snapshot, StateStore } from './state';

/** A history entry being removed: renamed to this first, so that a crash leaves it whole or gone. */
export const REMOVING_PREFIX = '.removing-';

/** `20261129T182700Z-a1b2c3`: sorts by the snapshot's time, and two of one second differ. */
export function newHistoryId(createdAt: Date): string {
  const time = Number.isNaN(createdAt.getTime()) ? new Date() : createdAt;
  const stamp = time.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function isPinned(snapshot: Snapshot): boolean {
  return snapshot.record?.pinned === true;
}

/**
 * The history entries to remove so that at most `keep` snapshots stay, the newest counted: oldest
 * first, never the newest (it is not in the history) and never a pinned one, so pinned snapshots
 * can leave more than `keep`. `keep` 0 keeps all.
 */
export function snapshotsToPrune(history: readonly Snapshot[], keep: number): Snapshot[] {
  if (!(keep > 0)) return [];
  const oldestFirst = [...history].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  let excess = history.length + 1 - Math.floor(keep);
  const prune: Snapshot[] = [];
  for (const entry of oldestFirst) {
    if (excess <= 0) break;
    if (isPinned(entry)) continue;
    prune.push(entry);
    excess--;
  }
  return prune;
}

/** Prunes the bottle's history down to `keep`; returns the entries removed. The caller holds the lock. */
export async function pruneHistory(store: StateStore, slug: string, keep: number): Promise<Snapshot[]> {
  if (!(await store.readSnapshot(slug))) return [];
  const prune = snapshotsToPrune(await store.readHistory(slug), keep);
  for (const entry of prune) await store.deleteHistoryEntry(slug, entry.historyId!);
  return prune;
}
