/** Moving snapshots around: export (launcher + sidecar together, as smolvm expects them). */
import { copyFile, rm } from 'node:fs/promises';
import { UserError } from './errors';
import { exists } from './fsutil';
import type { Snapshot } from './state';
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
  const hasLauncher = await exists(snapshot.launcher);
  try {
    await copyFile(snapshot.sidecar, paths.sidecar);
    if (hasLauncher) await copyFile(snapshot.launcher, paths.launcher);
  } catch (error) {
    await rm(paths.sidecar, { force: true });
    throw new UserError(`Could not export the snapshot of ${snapshot.slug} to ${paths.sidecar}: ${(error as Error).message}`);
  }
  return { sidecar: paths.sidecar, launcher: hasLauncher ? paths.launcher : undefined };
}
