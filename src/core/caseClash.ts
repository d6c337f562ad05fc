/**
 * Bottle names that differ only in case are refused: docker image names are lower case, so their
 * committed images would share one tag, and on a case-insensitive file system (macOS's default)
 * their state folders would be one folder.
 */
import { isCancelled, UserError } from './errors';
import { slugOf } from './names';
import type { Services } from './services';
import type { StateStore } from './state';
import { runTool } from './run';

/** A name among `existing` that is `slug` in another case, or undefined. */
export function caseTwin(slug: string, existing: Iterable<string>): string | undefined {
  const folded = slug.toLowerCase();
  for (const name of existing) if (name !== slug && name.toLowerCase() === folded) return name;
  return undefined;
}

/** Refuses `slug` when a bottle with a state folder, or one of `otherSlugs`, has its name in another case. */
export async function refuseCaseTwin(store: StateStore, slug: string, otherSlugs: Iterable<string> = []): Promise<void> {
  const twin = caseTwin(slug, [...(await store.listSlugs()), ...otherSlugs]);
  if (twin === undefined) return;
  throw new UserError(
    `Bottle "${slug}" differs from bottle "${twin}" only in case. Their snapshots would share a state folder on a case-insensitive file system and one docker image name, so "${slug}" cannot be used here: choose a name that differs in more than case.`,
  );
}

/**
 * Slugs of every bottle machine smolvm lists. A smolvm that cannot list counts as listing none:
 * the operation's own first smolvm step then says what is wrong, in its own words.
 */
export async function machineSlugs(services: Services, signal: AbortSignal): Promise<string[]> {
  try {
    const machines = await runTool(services.run, services.smolvm().list(), { signal });
    return machines.flatMap((m) => slugOf(m.name, services.prefix) ?? []);
  } catch (error) {
    if (isCancelled(error)) throw error;
    return [];
  }
}
