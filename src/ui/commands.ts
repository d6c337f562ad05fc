/** Every command: resolve its target (a tree node, or a pick when run from the palette), call the core, report. */
import * as vscode from 'vscode';
import { isRunning, type Bottle } from '../core/bottles';
import { formatBytes } from '../core/format';
import { freezeBottle } from '../core/freeze/smolmachines';
import type { Services } from '../core/services';
import { exportSnapshot } from '../core/snapshots';
import type { Snapshot } from '../core/state';
import type { BottlesTree, TreeNode } from './bottlesTree';
import { openSetting } from './config';
import type { Logs } from './logs';
import type { Operations } from './operations';
import { withOperationProgress } from './progress';
import { reportFailure } from './report';

export interface CommandDeps {
  tree: BottlesTree;
  logs: Logs;
  operations: Operations;
  services(): Services;
}

/** A command's argument: a tree node when run from the view, a slug from other code, nothing from the palette. */
type Target = TreeNode | string | undefined;

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const { tree, logs } = deps;
  const commands: Record<string, (target?: Target) => unknown> = {
    'botBottle.refresh': () => tree.refresh(),
    'botBottle.showLog': () => logs.showMain(),
    'botBottle.showToolLog': () => logs.showTools(),
    'botBottle.setSmolvmPath': () => openSetting('paths.smolvm'),
    'botBottle.freeze': (target) => freeze(deps, target),
    'botBottle.exportSnapshot': (target) => exportCommand(deps, target),
    'botBottle.revealSnapshot': (target) => withSnapshot(deps, target, (s) => revealSnapshot(s)),
    'botBottle.copySnapshotPath': (target) => withSnapshot(deps, target, (s) => vscode.env.clipboard.writeText(s.sidecar)),
    'botBottle.copyMachineName': (target) => withBottle(deps, target, () => true, (b) => vscode.env.clipboard.writeText(b.machineName)),
  };
  return Object.entries(commands).map(([id, handler]) => vscode.commands.registerCommand(id, handler));
}

async function freeze(deps: CommandDeps, target: Target): Promise<Snapshot | undefined> {
  const bottle = await resolveBottle(deps, target, isRunning, vscode.l10n.t('Choose a running bottle to freeze'), vscode.l10n.t('No bottle is running, so there is nothing to freeze.'));
  if (!bottle) return undefined;
  const { slug } = bottle;
  try {
    const snapshot = await withOperationProgress(deps.operations, slug, 'freeze', vscode.l10n.t('Freezing {0}', slug), (signal, onProgress) =>
      freezeBottle(deps.services(), slug, { signal, onProgress }),
    );
    void deps.tree.refresh();
    announceFrozen(deps, snapshot);
    return snapshot;
  } catch (error) {
    reportFailure(deps.logs, vscode.l10n.t('Freezing {0}', slug), error);
    void deps.tree.refresh();
    return undefined;
  }
}

function announceFrozen(deps: CommandDeps, snapshot: Snapshot): void {
  const reveal = vscode.l10n.t('Reveal');
  const exportLabel = vscode.l10n.t('Export…');
  const message = vscode.l10n.t('Froze {0}: a {1} snapshot in {2}.', snapshot.slug, formatBytes(snapshot.sizeBytes), snapshot.sidecar);
  void vscode.window.showInformationMessage(message, reveal, exportLabel).then((choice) => {
    if (choice === reveal) void revealSnapshot(snapshot);
    if (choice === exportLabel) void exportCommand(deps, snapshot.slug);
  });
}

async function exportCommand(deps: CommandDeps, target: Target): Promise<void> {
  await withSnapshot(deps, target, async (snapshot) => {
    const destination = await vscode.window.showSaveDialog({
      title: vscode.l10n.t('Export the snapshot of {0}', snapshot.slug),
      defaultUri: vscode.Uri.file(`${defaultExportFolder()}/${snapshot.slug}`),
      saveLabel: vscode.l10n.t('Export'),
    });
    if (!destination) return;
    try {
      const files = await exportSnapshot(snapshot, destination.fsPath);
      deps.logs.main.info(`Exported the snapshot of ${snapshot.slug} to ${files.sidecar}${files.launcher ? ` and ${files.launcher}` : ''}`);
      void vscode.window.showInformationMessage(vscode.l10n.t('Exported the snapshot of {0} to {1}.', snapshot.slug, files.sidecar));
    } catch (error) {
      reportFailure(deps.logs, vscode.l10n.t('Exporting the snapshot of {0}', snapshot.slug), error);
    }
  });
}

function revealSnapshot(snapshot: Snapshot): Thenable<unknown> {
  return vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(snapshot.sidecar));
}

function defaultExportFolder(): string {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? (process.env.HOME || '/');
}

async function withSnapshot(deps: CommandDeps, target: Target, action: (snapshot: Snapshot) => unknown): Promise<void> {
  const hasSnapshot = (b: Bottle) => b.snapshot !== undefined;
  await withBottle(deps, target, hasSnapshot, (bottle) => {
    if (bottle.snapshot) return action(bottle.snapshot);
    void vscode.window.showInformationMessage(vscode.l10n.t('Bottle {0} has no snapshot.', bottle.slug));
  }, vscode.l10n.t('No bottle has a snapshot yet.'));
}

async function withBottle(deps: CommandDeps, target: Target, fits: (b: Bottle) => boolean, action: (bottle: Bottle) => unknown, noneMessage?: string): Promise<void> {
  const bottle = await resolveBottle(deps, target, fits, vscode.l10n.t('Choose a bottle'), noneMessage ?? vscode.l10n.t('There are no bottles.'));
  if (bottle) await action(bottle);
}

/** The bottle a command is for: from its argument, or picked from those that fit. */
async function resolveBottle(deps: CommandDeps, target: Target, fits: (b: Bottle) => boolean, placeHolder: string, noneMessage: string): Promise<Bottle | undefined> {
  if (typeof target === 'object' && target.kind !== 'error') return target.bottle;
  if (typeof target === 'string') {
    const known = deps.tree.current.find((b) => b.slug === target);
    return known ?? { slug: target, machineName: deps.services().prefix + target };
  }
  const candidates = deps.tree.current.filter(fits);
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(noneMessage);
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    candidates.map((bottle) => ({ label: bottle.slug, description: bottle.machine?.state ?? vscode.l10n.t('frozen'), detail: bottle.machineName, bottle })),
    { placeHolder },
  );
  return picked?.bottle;
}
