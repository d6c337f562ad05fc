/** Freeze Bottle: from the tree, the palette (a pick of running bottles) or the status bar. */
import * as vscode from 'vscode';
import { isRunning, type CommittedImage, type Snapshot } from '../core/facade';
import { errorMessage, isCancelled } from '../core/errors';
import { formatBytes } from '../core/format';
import type { Outcome } from './batchSummary';
import { withOperationProgress } from './progress';
import { reportFailure } from './report';
import { exportSnapshotCommand, revealSnapshot } from './snapshotCommands';
import { resolveBottle, type CommandDeps, type Target } from './targets';

export interface FreezeOptions {
  /** Part of several: no message of its own, the caller sums up. */
  quiet?: boolean;
  /** Told why it failed (when quiet). */
  onFailure?: (outcome: Outcome) => void;
  /** Freeze Bottle (Full): one full layer even when the last snapshot would allow a delta. */
  full?: boolean;
}

export async function freezeCommand(deps: CommandDeps, target: Target, options: FreezeOptions = {}): Promise<Snapshot | CommittedImage | undefined> {
  const bottle = await resolveBottle(deps, target, {
    fits: isRunning,
    placeHolder: vscode.l10n.t('Choose a running bottle to freeze'),
    none: vscode.l10n.t('No bottle is running, so there is nothing to freeze.'),
  });
  if (!bottle) return undefined;
  const { slug } = bottle;
  const what = vscode.l10n.t('Freezing {0}', slug);
  try {
    const frozen = await withOperationProgress(deps.operations, slug, 'freeze', what, (signal, onProgress) =>
      deps.core().freeze(bottle, { signal, onProgress, full: options.full }),
    );
    if (options.quiet) deps.logs.main.info(`Froze ${slug}.`);
    else if ('tag' in frozen) announceCommitted(frozen);
    else announceFrozen(deps, frozen);
    return frozen;
  } catch (error) {
    if (!options.quiet) reportFailure(deps.logs, what, error);
    else {
      deps.logs.main.error(`${what} failed: ${errorMessage(error)}`);
      options.onFailure?.(isCancelled(error) ? { slug, cancelled: true } : { slug, failure: errorMessage(error) });
    }
    return undefined;
  } finally {
    void deps.model.refresh();
  }
}

function announceFrozen(deps: CommandDeps, snapshot: Snapshot): void {
  const reveal = vscode.l10n.t('Reveal');
  const exportLabel = vscode.l10n.t('Export…');
  const froze = vscode.l10n.t('Froze {0}: a {1} snapshot.', snapshot.slug, formatBytes(snapshot.sizeBytes));
  const leftOut = (snapshot.record?.mountsLeftOut ?? []).map((path) => vscode.l10n.t('{0} (a host folder)', path));
  const message = leftOut.length > 0 ? `${froze} ${vscode.l10n.t('Left out: {0}.', leftOut.join(', '))}` : froze;
  void vscode.window.showInformationMessage(message, reveal, exportLabel).then((choice) => {
    if (choice === reveal) void revealSnapshot(snapshot);
    if (choice === exportLabel) void exportSnapshotCommand(deps, snapshot.slug);
  });
}

function announceCommitted(image: CommittedImage): void {
  const resume = vscode.l10n.t('Resume with bot-bottle');
  const message = vscode.l10n.t('Froze {0} into the image {1}; bot-bottle resume {0} boots it.', image.slug, image.tag);
  void vscode.window.showInformationMessage(message, resume).then((choice) => {
    if (choice === resume) void vscode.commands.executeCommand('botBottle.resumeWithBotBottle', image.slug);
  });
}
