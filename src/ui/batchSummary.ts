/** One line for a command run on several bottles: how many it did, and which failed and why. */
import type { Translate } from './bottleRows';

export interface Outcome {
  slug: string;
  /** Why it failed, in the tool's words; undefined when it worked. */
  failure?: string;
  /** Cancelled by the user: neither done nor failed. */
  cancelled?: boolean;
}

/** `done(n)` says what was done to n bottles, e.g. "Froze 2 bottles". */
export function batchSummary(outcomes: readonly Outcome[], done: (count: number) => string, t: Translate): string {
  const failed = outcomes.filter((o) => o.failure !== undefined);
  const cancelled = outcomes.filter((o) => o.cancelled);
  const succeeded = outcomes.length - failed.length - cancelled.length;
  const parts = [done(succeeded)];
  if (failed.length) parts.push(t('{0} failed: {1}', failed.length, failed.map((o) => `${o.slug} (${o.failure})`).join('; ')));
  if (cancelled.length) parts.push(t('{0} cancelled: {1}', cancelled.length, cancelled.map((o) => o.slug).join(', ')));
  return `${parts.join('; ')}.`;
}

/** "1 bottle", "2 bottles". */
export function bottleCount(count: number, t: Translate): string {
  return count === 1 ? t('1 bottle') : t('{0} bottles', count);
}
