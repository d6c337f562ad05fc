/**
 * A bottle is a running (or stopped) smolvm machine named `<prefix><slug>`, a docker container of
 * that name (bot-bottle's docker backend), a frozen snapshot in its state folder, or some of these.
 * Discovery merges the sources, and adds what bot-bottle's own state folder knows of each (a
 * snapshot its commit left counts as frozen when we have none).
 */
import type { BotBottleEntry } from './botBottleState';
import { slugOf } from './names';
import type { StateStore, Snapshot } from './state';
import type { DockerContainer } from './tools/docker';
import type { Machine } from './tools/smolvm';

export interface Bottle {
  slug: string;
  machineName: string;
  machine?: Machine;
  /** The container of bot-bottle's docker backend, named like the machine would be. */
  container?: DockerContainer;
  /** The newest snapshot (ours at the seed's paths, else what bot-bottle's commit left). */
  snapshot?: Snapshot;
  /** Our older snapshots of the bottle, newest first. */
  history?: Snapshot[];
  /** The bytes our snapshots of the bottle take on disk, the history's included. */
  snapshotBytes?: number;
  /** What bot-bottle's `~/.bot-bottle/state/<slug>/` says, when it has that folder. */
  botBottle?: BotBottleEntry;
}

export type Backend = 'smolmachines' | 'docker';

/** A smolvm machine wins when both backends have one of the bottle's name: its freeze is the snapshot. */
export function backendOf(bottle: Bottle): Backend {
  return bottle.container && !bottle.machine ? 'docker' : 'smolmachines';
}

export function isRunning(bottle: Bottle): boolean {
  return (backendOf(bottle) === 'docker' ? bottle.container?.state : bottle.machine?.state) === 'running';
}

/** Bottles from machines, containers and snapshots, one per slug, sorted by slug. */
export function mergeBottles(
  machines: readonly Machine[],
  snapshots: readonly Snapshot[],
  prefix: string,
  botBottles: readonly BotBottleEntry[] = [],
  containers: readonly DockerContainer[] = [],
  histories: readonly BottleHistory[] = [],
): Bottle[] {
  const bySlug = new Map<string, Bottle>();
  const entry = (slug: string) => {
    let bottle = bySlug.get(slug);
    if (!bottle) bySlug.set(slug, (bottle = { slug, machineName: prefix + slug }));
    return bottle;
  };
  for (const machine of machines) {
    const slug = slugOf(machine.name, prefix);
    if (slug !== undefined) entry(slug).machine = machine;
  }
  for (const container of containers) {
    const slug = slugOf(container.name, prefix);
    if (slug !== undefined) entry(slug).container = container;
  }
  for (const snapshot of snapshots) entry(snapshot.slug).snapshot = snapshot;
  for (const { slug, history, bytes } of histories) {
    if (history.length === 0 && bytes === 0) continue;
    const bottle = entry(slug);
    bottle.history = history;
    bottle.snapshotBytes = bytes;
  }
  for (const known of botBottles) {
    // A folder with nothing to resume and no machine is no bottle: bot-bottle keeps one per session.
    const bottle = bySlug.get(known.slug) ?? (known.committed ? entry(known.slug) : undefined);
    if (!bottle) continue;
    bottle.botBottle = known;
    bottle.snapshot ??= known.committed;
  }
  return [...bySlug.values()].sort((a, b) => a.slug.localeCompare(b.slug));
}

/** A bottle's history as discovery reads it from its state folder. */
export interface BottleHistory {
  slug: string;
  history: Snapshot[];
  bytes: number;
}

export interface DiscoveryDeps {
  listMachines(): Promise<Machine[]>;
  store: StateStore;
  prefix: string;
  /** What bot-bottle's own state folders hold; never fails (a bad folder is reported, not thrown). */
  listBotBottles?(): Promise<BotBottleEntry[]>;
  /** bot-bottle's docker containers; never fails (no docker means none). */
  listContainers?(): Promise<DockerContainer[]>;
}

export async function discoverBottles(deps: DiscoveryDeps): Promise<Bottle[]> {
  const [machines, snapshots, botBottles, containers, histories] = await Promise.all([
    deps.listMachines(),
    readSnapshots(deps.store),
    deps.listBotBottles?.() ?? [],
    deps.listContainers?.() ?? [],
    readHistories(deps.store),
  ]);
  return mergeBottles(machines, snapshots, deps.prefix, botBottles, containers, histories);
}

async function readHistories(store: StateStore): Promise<BottleHistory[]> {
  const slugs = await store.listSlugs();
  return Promise.all(slugs.map(async (slug) => ({ slug, history: await store.readHistory(slug), bytes: await store.diskUsage(slug) })));
}

async function readSnapshots(store: StateStore): Promise<Snapshot[]> {
  const slugs = await store.listSlugs();
  const snapshots = await Promise.all(slugs.map((slug) => store.readSnapshot(slug)));
  return snapshots.filter((s): s is Snapshot => s !== undefined);
}

/**
 * Serialises discovery: `machine ls` pings every agent and can take seconds, so a refresh asked for
 * while one runs joins it (or the one queued after it) instead of starting a second list.
 */
export class BottleCatalog {
  private running?: Promise<Bottle[]>;
  private queued?: Promise<Bottle[]>;

  constructor(private readonly discover: () => Promise<Bottle[]>) {}

  refresh(): Promise<Bottle[]> {
    if (!this.running) return this.start();
    this.queued ??= this.running.catch(() => undefined).then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<Bottle[]> {
    const current = this.discover().finally(() => {
      if (this.running === current) this.running = undefined;
    });
    this.running = current;
    return current;
  }
}
