/**
 * The host folders mounted into a bottle (`machine create -v`). smolvm mounts each as virtiofs
 * (crates/smolvm-agent/src/storage.rs:3389-3450) and binds it into the workload at its guest path
 * (crates/smolvm-agent/src/main.rs:3588-3595), so the guest's own mount table lists it with the
 * type `virtiofs`. smolvm's JSON gives only how many there are (src/cli/vm_common.rs:2469-2520),
 * and its `ls -v` text cuts names to 18 characters (:2590), so the paths are read in the guest:
 * the same view tar has. tar would archive a mount's files; a freeze leaves them out unless the
 * user asks for them.
 */
import { UserError } from '../errors';
import { runTool } from '../run';
import { ARCHIVE_EXCLUDES, type FreezeState } from './context';

export interface GuestMount {
  /** Where the guest sees it. */
  path: string;
  /** The virtiofs tag smolvm gave it: `smolvm0`, `smolvm1`, ... (src/data/storage.rs:210-212). */
  tag: string;
}

export const MOUNT_TABLE = '/proc/self/mounts';

/** The virtiofs mounts in a `/proc/self/mounts` table; the kernel writes space, tab, newline and `\` as octal escapes. */
export function parseVirtiofsMounts(table: string): GuestMount[] {
  return table
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields.length >= 3 && fields[2] === 'virtiofs')
    .map(([tag, path]) => ({ tag: unescapeMountField(tag), path: unescapeMountField(path) }));
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Reads the bottle's mounts before anything is archived, unless smolvm counts none (which spares
 * every freeze of a bottle without `-v` an exec). smolvm counts only `-v` mounts; if the guest
 * shows fewer, the freeze cannot know what to leave out, so it refuses rather than archive a host
 * folder unasked.
 */
export async function findMounts(s: FreezeState, mountCount: number | undefined, signal: AbortSignal): Promise<GuestMount[]> {
  if (mountCount === 0) return [];
  const read = await runTool(s.run, s.tools.smolvm.exec(s.machine, ['cat', MOUNT_TABLE]), { signal });
  const mounts = parseVirtiofsMounts(read.stdout);
  if (!s.includeMounts && mountCount !== undefined && mounts.length < mountCount) {
    throw new UserError(
      `smolvm reports ${mountCount} mount(s) for ${s.machine}, but its ${MOUNT_TABLE} shows ${mounts.length} virtiofs mount(s), so the freeze cannot tell which host folders to leave out. ` +
        'Nothing was archived. Restart the bottle, or set botBottle.freeze.includeMounts to true to archive the mounted folders too.',
    );
  }
  return mounts;
}

/** The guest paths a freeze leaves out of the archive: every mount unless they are included, never `/`, and none already left out. */
export function mountsLeftOut(s: Pick<FreezeState, 'mounts' | 'includeMounts'>): string[] {
  if (s.includeMounts) return [];
  const alreadyOut = ARCHIVE_EXCLUDES.map((dir) => dir.slice(1));
  const inside = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);
  const paths = (s.mounts ?? []).map((m) => m.path.replace(/\/+$/, '')).filter((path) => path !== '' && !alreadyOut.some((dir) => inside(path, dir)));
  return [...new Set(paths)];
}

/**
 * What tar leaves out, as its `--exclude` patterns (`./proc`); du takes the same without the dot,
 * so the space check counts what tar archives. Both read `*`, `?`, `[` and `\` as wildcards.
 */
export function archiveExcludes(s: Pick<FreezeState, 'mounts' | 'includeMounts'>): string[] {
  return [...ARCHIVE_EXCLUDES, ...mountsLeftOut(s).map((path) => `.${path.replace(/[*?[\\]/g, '\\$&')}`)];
}

/** How the log and the freeze's message name what was left out. */
export function describeLeftOut(paths: readonly string[]): string {
  return paths.map((path) => `${path} (a host folder)`).join(', ');
}
