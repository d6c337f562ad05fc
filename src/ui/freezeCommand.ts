/** Freeze Bottle: from the tree, the palette (a pick of running bottles) or the status bar. */
import * as vscode from 'vscode';
import { isRunning, type CommittedImage, type Snapshot } from '../core/facade';
import { formatBytes } from '../core/format';
import { withOperationProgress } from './progress';
import { reportFailure } from './report';
import { exportSnapshotCommand, revealSnapshot } from './snapshotCommands';
import { resolveBottle, type CommandDeps, type Target } from './targets';

/** `full`: Freeze Bottle (Full), which archives everything even when the last snapshot would allow a delta. */
export async function freezeCommand(deps: CommandDeps, target: Target, full = false): Promise<Snapshot | CommittedImage | undefined> {
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
      deps.core().freeze(bottle, { signal, onProgress, full }),
    );
    if ('tag' in frozen) announceCommitted(frozen);
    else announceFrozen(deps, frozen);
    return frozen;
  } catch (error) {
    reportFailure(deps.logs, what, error);
    return undefined;
  } finally {
    void deps.model.refresh();
  }
}

function announceFrozen(deps: CommandDeps, snapshot: Snapshot): void {
  const reveal = vscode.l10n.t('Reveal');
  const exportLabel = vscode.l10n.t('Export…');
  const message = vscode.l10n.t('Froze {0}: a {1} snapshot in {2}.', snapshot.slug, formatBytes(snapshot.sizeBytes), snapshot.sidecar);
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
