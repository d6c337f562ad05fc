/**
 * What a bottle's row says, worked out without VS Code so that it can be tested: its state, when it
 * was last active ("2 h ago"), and its image, in that order; the same for a screen reader; and the
 * order of the rows. The caller passes its translation function.
 */
import { backendOf, isFreezePullReference, type Bottle } from '../core/facade';
import { formatTime } from '../core/format';

export type Translate = (message: string, ...args: Array<string | number>) => string;

export const SORT_ORDERS = ['name', 'activity'] as const;
export type SortOrder = (typeof SORT_ORDERS)[number];

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * The last thing known to have happened to the bottle: its machine started (uptime, as of
 * `listedAt`, when the list was read), was created, its container started, or it was frozen.
 */
export function lastActivity(bottle: Bottle, listedAt: number): Date | undefined {
  const machine = bottle.machine;
  const times = [
    machine?.uptimeSeconds !== undefined ? listedAt - machine.uptimeSeconds * 1000 : undefined,
    machine?.createdAt?.getTime(),
    bottle.container?.startedAt?.getTime(),
    bottle.snapshot?.createdAt.getTime(),
  ].filter((time): time is number => time !== undefined && Number.isFinite(time));
  return times.length ? new Date(Math.max(...times)) : undefined;
}

/** "just now", "5 min ago", "2 h ago", "3 d ago". */
export function relativeTime(then: Date, now: number, t: Translate): string {
  const ago = Math.max(0, now - then.getTime());
  if (ago < MINUTE) return t('just now');
  if (ago < HOUR) return t('{0} min ago', Math.floor(ago / MINUTE));
  if (ago < DAY) return t('{0} h ago', Math.floor(ago / HOUR));
  return t('{0} d ago', Math.floor(ago / DAY));
}

/** The machine's state as smolvm or docker says it; a bottle with no machine is a snapshot. */
export function stateText(bottle: Bottle, t: Translate): string {
  // Not smolvm's word "frozen": for smolvm that is a machine fork base (src/config.rs:57-65), not a snapshot.
  return (bottle.machine ?? bottle.container)?.state ?? t('snapshot');
}

/**
 * The image the machine runs. A resumed machine's image, as smolvm records it, is the address a
 * freeze served the image at for the pack, gone since: it is named by the snapshot instead, the
 * bottle's snapshot when it is older than the machine (the one it was made from), else unnamed.
 */
export function imageText(bottle: Bottle, t: Translate): string | undefined {
  const image = (bottle.machine ?? bottle.container)?.image;
  if (!image || !isFreezePullReference(image)) return image;
  const made = bottle.machine?.createdAt;
  const snapshot = bottle.snapshot;
  if (made && snapshot && snapshot.createdAt.getTime() <= made.getTime()) return t('from snapshot {0}', formatTime(snapshot.createdAt));
  return t('from a snapshot');
}

/** State, then how long ago, then the image: what the row's description shows, in that order. */
export function rowParts(bottle: Bottle, now: number, listedAt: number, t: Translate): string[] {
  const active = lastActivity(bottle, listedAt);
  return [stateText(bottle, t), active && relativeTime(active, now, t), imageText(bottle, t)].filter((part): part is string => Boolean(part));
}

/** What bot-bottle calls the bottle (its label, else its agent) and on which backend it runs. */
export function knownAs(bottle: Bottle): string[] {
  const metadata = bottle.botBottle?.metadata;
  const backend = metadata?.backend ?? (backendOf(bottle) === 'docker' ? 'docker' : undefined);
  return [metadata?.label ?? metadata?.agentName, backend].filter((part): part is string => Boolean(part));
}

/** The row read aloud: its name, then every part of its description, in commas rather than dots. */
export function accessibleLabel(bottle: Bottle, parts: readonly string[]): string {
  return [bottle.slug, ...parts].join(', ');
}

/** By name, or the most recently active first (then by name); the list is never changed in place. */
export function sortBottles(bottles: readonly Bottle[], order: SortOrder, listedAt: number): Bottle[] {
  const byName = (a: Bottle, b: Bottle) => a.slug.localeCompare(b.slug);
  if (order === 'name') return [...bottles].sort(byName);
  const time = (bottle: Bottle) => lastActivity(bottle, listedAt)?.getTime() ?? -Infinity;
  return [...bottles].sort((a, b) => time(b) - time(a) || byName(a, b));
}
