/**
 * The Bottles view's rows: running bottles and frozen-only ones, each snapshot under its bottle,
 * or the reason the list failed. It only draws what the model holds (and which bottles are busy);
 * the model decides when to refresh.
 */
import * as vscode from 'vscode';
import { formatBytes, formatDuration, formatTime } from '../core/format';
import type { Bottle, Snapshot } from '../core/facade';
import type { BottlesModel } from './bottlesModel';
import { bottleContextValue, snapshotContextValue } from './contextValues';
import type { Operations } from './operations';

export const VIEW_ID = 'botBottle.bottles';

export type BottleNode = { kind: 'bottle'; bottle: Bottle };
export type SnapshotNode = { kind: 'snapshot'; bottle: Bottle; snapshot: Snapshot };
export type MessageNode = { kind: 'error'; message: string };
export type TreeNode = BottleNode | SnapshotNode | MessageNode;

/** What the tree draws from: the model, or (in tests) anything shaped like it. */
export type BottlesSource = Pick<BottlesModel, 'bottles' | 'failure' | 'onDidChange'>;

export class BottlesTree implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly source: BottlesSource,
    private readonly operations: Pick<Operations, 'get' | 'onDidChange'>,
  ) {
    this.disposables = [
      this.changed,
      source.onDidChange(() => this.changed.fire(undefined)),
      operations.onDidChange(() => this.changed.fire(undefined)),
    ];
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (!node) {
      if (this.source.failure) return [{ kind: 'error', message: this.source.failure }];
      return this.source.bottles.map((bottle) => ({ kind: 'bottle', bottle }));
    }
    if (node.kind === 'bottle' && node.bottle.snapshot) return [{ kind: 'snapshot', bottle: node.bottle, snapshot: node.bottle.snapshot }];
    return [];
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    switch (node.kind) {
      case 'bottle':
        return this.bottleItem(node.bottle);
      case 'snapshot':
        return snapshotItem(node.snapshot);
      case 'error':
        return errorItem(node.message);
    }
  }

  getParent(node: TreeNode): TreeNode | undefined {
    return node.kind === 'snapshot' ? { kind: 'bottle', bottle: node.bottle } : undefined;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  private bottleItem(bottle: Bottle): vscode.TreeItem {
    const operation = this.operations.get(bottle.slug);
    const item = new vscode.TreeItem(bottle.slug, bottle.snapshot ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.id = `bottle:${bottle.slug}`;
    item.description = operation ? operation.step : bottleDescription(bottle);
    item.tooltip = bottleTooltip(bottle);
    item.iconPath = operation ? new vscode.ThemeIcon('loading~spin') : bottleIcon(bottle);
    item.contextValue = bottleContextValue(bottle, Boolean(operation));
    return item;
  }
}

function bottleDescription(bottle: Bottle): string {
  const machine = bottle.machine;
  // Not smolvm's word "frozen": for smolvm that is a machine fork base (src/config.rs:57-65), not a snapshot.
  if (!machine) return vscode.l10n.t('snapshot · {0}', formatTime(bottle.snapshot!.createdAt));
  const parts = [machine.state];
  if (machine.image) parts.push(machine.image);
  if (machine.uptimeSeconds !== undefined) parts.push(vscode.l10n.t('up {0}', formatDuration(machine.uptimeSeconds * 1000)));
  return parts.join(' · ');
}

function bottleTooltip(bottle: Bottle): vscode.MarkdownString {
  const lines = [`**${bottle.slug}** — \`${bottle.machineName}\``, ''];
  const m = bottle.machine;
  if (m) {
    lines.push(vscode.l10n.t('State: {0}', m.state));
    if (m.image) lines.push(vscode.l10n.t('Image: {0}', m.image));
    if (m.pid) lines.push(vscode.l10n.t('PID: {0}', m.pid));
    if (m.cpus) lines.push(vscode.l10n.t('CPUs: {0}', m.cpus));
    if (m.memoryMib) lines.push(vscode.l10n.t('Memory: {0} MiB', m.memoryMib));
    if (m.createdAt) lines.push(vscode.l10n.t('Created: {0}', formatTime(m.createdAt)));
    if (m.uptimeSeconds !== undefined) lines.push(vscode.l10n.t('Up: {0}', formatDuration(m.uptimeSeconds * 1000)));
  } else {
    lines.push(vscode.l10n.t('No machine: this bottle exists only as a frozen snapshot.'));
  }
  if (bottle.snapshot) lines.push(vscode.l10n.t('Snapshot: {0}, {1}', formatTime(bottle.snapshot.createdAt), formatBytes(bottle.snapshot.sizeBytes)));
  const markdown = new vscode.MarkdownString(lines.join('  \n'));
  markdown.supportThemeIcons = false;
  return markdown;
}

function bottleIcon(bottle: Bottle): vscode.ThemeIcon {
  switch (bottle.machine?.state) {
    case undefined:
      return new vscode.ThemeIcon('archive');
    case 'running':
      return new vscode.ThemeIcon('vm-running', new vscode.ThemeColor('testing.iconPassed'));
    case 'failed':
      return new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
    case 'unreachable':
      return new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'));
    default:
      return new vscode.ThemeIcon('vm-outline');
  }
}

function snapshotItem(snapshot: Snapshot): vscode.TreeItem {
  const item = new vscode.TreeItem(formatTime(snapshot.createdAt), vscode.TreeItemCollapsibleState.None);
  item.id = `snapshot:${snapshot.slug}:${snapshot.sidecar}`;
  item.description = formatBytes(snapshot.sizeBytes);
  item.iconPath = new vscode.ThemeIcon('archive');
  item.resourceUri = vscode.Uri.file(snapshot.sidecar);
  item.contextValue = snapshotContextValue(Boolean(snapshot.record));
  const lines = [vscode.l10n.t('Snapshot of {0}', snapshot.slug), snapshot.sidecar, formatBytes(snapshot.sizeBytes)];
  if (snapshot.record) lines.push(`sha256 ${snapshot.record.sha256}`);
  item.tooltip = lines.join('\n');
  item.accessibilityInformation = { label: vscode.l10n.t('Snapshot of {0}, {1}, {2}', snapshot.slug, formatTime(snapshot.createdAt), formatBytes(snapshot.sizeBytes)) };
  return item;
}

function errorItem(message: string): vscode.TreeItem {
  const item = new vscode.TreeItem(message, vscode.TreeItemCollapsibleState.None);
  item.id = 'error';
  item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
  item.tooltip = vscode.l10n.t('{0}\n\nClick to show the log.', message);
  item.contextValue = 'error';
  item.command = { command: 'botBottle.showLog', title: vscode.l10n.t('Show Log') };
  return item;
}
