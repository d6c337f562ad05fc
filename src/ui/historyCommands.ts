/** A bottle's history: rename, note, pin and unpin a snapshot, and resume from any snapshot picked from the palette. */
import * as vscode from 'vscode';
import { formatBytes, formatTime } from '../core/format';
import { isPinned, type Bottle, type Snapshot, type SnapshotLabels } from '../core/facade';
import { reportFailure } from './report';
import { resumeCommand } from './resumeCommand';
import type { SnapshotNode } from './bottlesTree';
import type { CommandDeps, Target } from './targets';

export async function renameSnapshotCommand(deps: CommandDeps, target: Target): Promise<void> {
  const snapshot = await snapshotFor(deps, target, vscode.l10n.t('Choose a snapshot to rename'));
  if (!snapshot) return;
  const name = await vscode.window.showInputBox({
    title: vscode.l10n.t('Rename the snapshot of {0}', snapshot.slug),
    value: snapshot.record?.name ?? '',
    placeHolder: formatTime(snapshot.createdAt),
    prompt: vscode.l10n.t('Leave it empty to name the snapshot by its time.'),
  });
  if (name !== undefined) await label(deps, snapshot, { name }, vscode.l10n.t('Renaming the snapshot of {0}', snapshot.slug));
}

export async function editSnapshotNoteCommand(deps: CommandDeps, target: Target): Promise<void> {
  const snapshot = await snapshotFor(deps, target, vscode.l10n.t('Choose a snapshot to note'));
  if (!snapshot) return;
  const note = await vscode.window.showInputBox({
    title: vscode.l10n.t('Note on the snapshot {0}', snapshotName(snapshot)),
    value: snapshot.record?.note ?? '',
    prompt: vscode.l10n.t('Shown in the snapshot’s tooltip. Leave it empty to remove the note.'),
  });
  if (note !== undefined) await label(deps, snapshot, { note }, vscode.l10n.t('Noting the snapshot of {0}', snapshot.slug));
}

export async function setSnapshotPinnedCommand(deps: CommandDeps, target: Target, pinned: boolean): Promise<void> {
  const snapshot = await snapshotFor(deps, target, pinned ? vscode.l10n.t('Choose a snapshot to pin') : vscode.l10n.t('Choose a snapshot to unpin'));
  if (snapshot) await label(deps, snapshot, { pinned }, vscode.l10n.t('Pinning the snapshot of {0}', snapshot.slug));
}

/** Resume Bottle from Snapshot…: any snapshot of any bottle, picked from a list. */
export async function resumeFromSnapshotCommand(deps: CommandDeps): Promise<string | undefined> {
  const picked = await pickSnapshot(deps, vscode.l10n.t('Choose a snapshot to resume'));
  if (!picked) return undefined;
  const node: SnapshotNode = { kind: 'snapshot', ...picked };
  return resumeCommand(deps, node);
}

/** Every snapshot of every bottle, grouped by bottle, newest first. */
export async function pickSnapshot(deps: CommandDeps, placeHolder: string): Promise<{ bottle: Bottle; snapshot: Snapshot } | undefined> {
  type Item = vscode.QuickPickItem & { pick?: { bottle: Bottle; snapshot: Snapshot } };
  const items: Item[] = deps.model.bottles.flatMap((bottle) => {
    const snapshots = [...(bottle.snapshot ? [bottle.snapshot] : []), ...(bottle.history ?? [])];
    if (snapshots.length === 0) return [];
    return [
      { label: bottle.slug, kind: vscode.QuickPickItemKind.Separator },
      ...snapshots.map((snapshot): Item => ({
        label: `${isPinned(snapshot) ? '$(pinned) ' : ''}${snapshotName(snapshot)}`,
        description: [snapshot.historyId === undefined ? vscode.l10n.t('newest') : '', snapshot.record?.name ? formatTime(snapshot.createdAt) : '', formatBytes(snapshot.sizeBytes)].filter(Boolean).join(' · '),
        detail: snapshot.record?.note,
        pick: { bottle, snapshot },
      })),
    ];
  });
  if (items.length === 0) {
    void vscode.window.showInformationMessage(vscode.l10n.t('No bottle has a snapshot yet.'));
    return undefined;
  }
  return (await vscode.window.showQuickPick(items, { placeHolder, matchOnDescription: true, matchOnDetail: true }))?.pick;
}

export function snapshotName(snapshot: Snapshot): string {
  return snapshot.record?.name ?? formatTime(snapshot.createdAt);
}

/** A snapshot row's own snapshot, else one picked from every bottle's. */
async function snapshotFor(deps: CommandDeps, target: Target, placeHolder: string): Promise<Snapshot | undefined> {
  if (typeof target === 'object' && target.kind === 'snapshot') return target.snapshot;
  return (await pickSnapshot(deps, placeHolder))?.snapshot;
}

async function label(deps: CommandDeps, snapshot: Snapshot, labels: SnapshotLabels, what: string): Promise<void> {
  try {
    await deps.core().labelSnapshot(snapshot, labels);
    deps.logs.main.info(`${what}: ${JSON.stringify(labels)} (${snapshot.sidecar})`);
  } catch (error) {
    reportFailure(deps.logs, what, error);
  } finally {
    await deps.model.refresh();
  }
}
