/** Snapshot files: export, import, delete, reveal, copy path. */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { ExportTargetExistsError, SMOLMACHINE_SUFFIX, SnapshotExistsError, type Snapshot } from '../core/facade';
import { snapshotName } from './historyCommands';
import { reportFailure } from './report';
import { resolveSnapshot, type CommandDeps, type Target } from './targets';

export async function exportSnapshotCommand(deps: CommandDeps, target: Target): Promise<boolean> {
  const snapshot = await resolveSnapshot(deps, target, vscode.l10n.t('Choose a snapshot to export'));
  if (!snapshot) return false;
  const destination = await vscode.window.showSaveDialog({
    title: vscode.l10n.t('Export the snapshot of {0}', snapshot.slug),
    defaultUri: vscode.Uri.file(`${defaultFolder()}/${snapshot.slug}${snapshot.historyId === undefined ? '' : `-${snapshot.historyId}`}`),
    saveLabel: vscode.l10n.t('Export'),
  });
  if (!destination) return false;
  try {
    const core = deps.core();
    const files = await core.exportSnapshot(snapshot, destination.fsPath).catch(async (error: unknown) => {
      if (!(error instanceof ExportTargetExistsError) || !(await confirm(error.message, vscode.l10n.t('Replace')))) throw error;
      return core.exportSnapshot(snapshot, destination.fsPath, true);
    });
    deps.logs.main.info(`Exported the snapshot of ${snapshot.slug} to ${files.sidecar}${files.launcher ? ` and ${files.launcher}` : ''}`);
    const reveal = vscode.l10n.t('Reveal');
    void vscode.window.showInformationMessage(vscode.l10n.t('Exported the snapshot of {0} as {1}.', snapshot.slug, basename(files.sidecar)), reveal).then((choice) => {
      if (choice === reveal) void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(files.sidecar));
    });
    return true;
  } catch (error) {
    reportFailure(deps.logs, vscode.l10n.t('Exporting the snapshot of {0}', snapshot.slug), error);
    return false;
  }
}

export async function importSnapshotCommand(deps: CommandDeps): Promise<Snapshot | undefined> {
  const [file] = (await vscode.window.showOpenDialog({
    title: vscode.l10n.t('Import a frozen bottle'),
    filters: { [vscode.l10n.t('smolvm machine')]: ['smolmachine'] },
    canSelectMany: false,
    openLabel: vscode.l10n.t('Import'),
  })) ?? [];
  if (!file) return undefined;
  const core = deps.core();
  const slug = await vscode.window.showInputBox({
    title: vscode.l10n.t('Name the imported bottle'),
    value: suggestedSlug(file.fsPath),
    validateInput: (value) => core.slugProblem(value),
  });
  if (!slug) return undefined;
  const what = vscode.l10n.t('Importing {0}', basename(file.fsPath));
  try {
    const imported = await core.importSnapshot(file.fsPath, slug).catch(async (error) => {
      if (!(error instanceof SnapshotExistsError) || !(await confirm(vscode.l10n.t('Bottle {0} already has a snapshot. Make the imported one its newest?', slug), vscode.l10n.t('Import'), vscode.l10n.t('The snapshot it has now is kept in its history.')))) throw error;
      return core.importSnapshot(file.fsPath, slug, true);
    });
    announceImported(imported, basename(file.fsPath));
    return imported;
  } catch (error) {
    reportFailure(deps.logs, what, error);
    return undefined;
  } finally {
    void deps.model.refresh();
  }
}

export async function deleteSnapshotCommand(deps: CommandDeps, target: Target): Promise<boolean> {
  const snapshot = await resolveSnapshot(deps, target, vscode.l10n.t('Choose a snapshot to delete'));
  if (!snapshot) return false;
  const name = snapshotName(snapshot);
  const question = vscode.l10n.t('Delete the snapshot of {0}?', snapshot.slug);
  // The safe choice is the primary button, never the destructive one.
  const exportFirst = vscode.l10n.t('Export First…');
  const deleteLabel = vscode.l10n.t('Delete');
  const choice = await vscode.window.showWarningMessage(question, { modal: true, detail: deleteDetail(deps, snapshot, name) }, exportFirst, deleteLabel);
  const exportTarget = typeof target === 'object' && target.kind === 'snapshot' ? target : snapshot.slug;
  if (choice === undefined || (choice === exportFirst && !(await exportSnapshotCommand(deps, exportTarget)))) return false;
  try {
    await deps.core().deleteSnapshot(snapshot);
    deps.logs.main.info(`Deleted the snapshot ${name} of ${snapshot.slug} (${snapshot.sidecar})`);
    return true;
  } catch (error) {
    reportFailure(deps.logs, vscode.l10n.t('Deleting the snapshot of {0}', snapshot.slug), error);
    return false;
  } finally {
    void deps.model.refresh();
  }
}

/** What goes, and for the newest, which snapshot takes its place. */
function deleteDetail(deps: CommandDeps, snapshot: Snapshot, name: string): string {
  const gone = vscode.l10n.t('The snapshot {0} and its launcher will be deleted. This cannot be undone.', name);
  if (snapshot.historyId !== undefined) return gone;
  const next = deps.model.find(snapshot.slug)?.history?.[0];
  return next ? `${gone} ${vscode.l10n.t('The snapshot {0} becomes the newest.', snapshotName(next))}` : gone;
}

export async function revealSnapshotCommand(deps: CommandDeps, target: Target): Promise<void> {
  const snapshot = await resolveSnapshot(deps, target, vscode.l10n.t('Choose a snapshot to reveal'));
  if (snapshot) await revealSnapshot(snapshot);
}

export async function copySnapshotPathCommand(deps: CommandDeps, target: Target): Promise<void> {
  const snapshot = await resolveSnapshot(deps, target, vscode.l10n.t('Choose a snapshot'));
  if (!snapshot) return;
  await vscode.env.clipboard.writeText(snapshot.sidecar);
  void vscode.window.showInformationMessage(vscode.l10n.t('Copied the path of the snapshot of {0}.', snapshot.slug));
}

export function revealSnapshot(snapshot: Snapshot): Thenable<unknown> {
  return vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(snapshot.sidecar));
}

function announceImported(snapshot: Snapshot, file: string): void {
  const resume = vscode.l10n.t('Resume');
  void vscode.window.showInformationMessage(vscode.l10n.t('Imported {0} as bottle {1}.', file, snapshot.slug), resume).then((choice) => {
    if (choice === resume) void vscode.commands.executeCommand('botBottle.resume', snapshot.slug);
  });
}

async function confirm(question: string, action: string, detail?: string): Promise<boolean> {
  return (await vscode.window.showWarningMessage(question, { modal: true, detail }, action)) === action;
}

function suggestedSlug(path: string): string {
  return basename(path, SMOLMACHINE_SUFFIX).replace(/^committed-smolmachine$/, 'imported').replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[-_]+|-+$/g, '') || 'imported';
}

function defaultFolder(): string {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? (process.env.HOME || '/');
}
