/**
 * The Bottles view: running bottles and frozen-only ones, each snapshot under its bottle. Refreshes
 * on demand, on a timer only while visible, and when a state folder changes (debounced). Errors and
 * a missing smolvm show in the view itself, never as pop-ups.
 */
import * as vscode from 'vscode';
import { isRunning, type Bottle } from '../core/bottles';
import { errorMessage } from '../core/errors';
import { formatBytes, formatDuration, formatTime } from '../core/format';
import { SmolvmMissingError, type Services } from '../core/services';
import type { Snapshot } from '../core/state';
import { setContext, type ViewStatus } from './context';
import type { Operations } from './operations';

export const VIEW_ID = 'botBottle.bottles';
const WATCH_DEBOUNCE_MS = 500;

export type BottleNode = { kind: 'bottle'; bottle: Bottle };
export type SnapshotNode = { kind: 'snapshot'; bottle: Bottle; snapshot: Snapshot };
export type MessageNode = { kind: 'error'; message: string };
export type TreeNode = BottleNode | SnapshotNode | MessageNode;

export class BottlesTree implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private bottles: Bottle[] = [];
  private failure?: string;
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly bottlesChanged = new vscode.EventEmitter<readonly Bottle[]>();
  /** Fires after every refresh with the bottles found. */
  readonly onDidChangeBottles = this.bottlesChanged.event;
  readonly view: vscode.TreeView<TreeNode>;
  private readonly disposables: vscode.Disposable[] = [];
  private timer?: ReturnType<typeof setInterval>;
  private watcher?: vscode.FileSystemWatcher;
  private debounce?: ReturnType<typeof setTimeout>;

  constructor(
    private services: Services,
    private refreshIntervalSeconds: number,
    private readonly operations: Operations,
  ) {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: true });
    this.disposables.push(
      this.view,
      this.changed,
      this.bottlesChanged,
      this.view.onDidChangeVisibility(() => this.scheduleTimer()),
      operations.onDidChange(() => this.changed.fire(undefined)),
    );
    void setContext('botBottle.status', 'loading');
    this.watchStateFolders();
    this.scheduleTimer();
  }

  get current(): readonly Bottle[] {
    return this.bottles;
  }

  /** New settings: new services, timer and watcher, then a fresh list. */
  reconfigure(services: Services, refreshIntervalSeconds: number): Promise<void> {
    this.services = services;
    this.refreshIntervalSeconds = refreshIntervalSeconds;
    this.watchStateFolders();
    this.scheduleTimer();
    return this.refresh();
  }

  async refresh(): Promise<void> {
    let status: ViewStatus = 'ready';
    try {
      this.bottles = await this.services.catalog.refresh();
      this.failure = undefined;
    } catch (error) {
      this.bottles = [];
      status = error instanceof SmolvmMissingError ? 'smolvmMissing' : 'error';
      this.failure = status === 'error' ? errorMessage(error) : undefined;
      this.services.logs.main.warn(`Listing bottles failed: ${errorMessage(error)}`);
    }
    await Promise.all([
      setContext('botBottle.status', status),
      setContext('botBottle.hasBottles', this.bottles.length > 0),
      setContext('botBottle.anyRunning', this.bottles.some(isRunning)),
    ]);
    this.changed.fire(undefined);
    this.bottlesChanged.fire(this.bottles);
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (!node) {
      if (this.failure) return [{ kind: 'error', message: this.failure }];
      return this.bottles.map((bottle) => ({ kind: 'bottle', bottle }));
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
    this.stopTimer();
    clearTimeout(this.debounce);
    this.watcher?.dispose();
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

  private scheduleTimer(): void {
    this.stopTimer();
    if (!this.view.visible || this.refreshIntervalSeconds <= 0) return;
    this.timer = setInterval(() => void this.refresh(), this.refreshIntervalSeconds * 1000);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Snapshots written by a freeze, by bot-bottle itself or by hand show up without a refresh. */
  private watchStateFolders(): void {
    this.watcher?.dispose();
    const root = vscode.Uri.file(this.services.store.root);
    this.watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(root, '*/*'));
    const onChange = () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.refresh(), WATCH_DEBOUNCE_MS);
    };
    this.watcher.onDidCreate(onChange);
    this.watcher.onDidDelete(onChange);
    this.watcher.onDidChange(onChange);
  }
}

/** Compound context value matched by regexes in package.json, e.g. `bottle+running+frozen`. */
export function bottleContextValue(bottle: Bottle, busy: boolean): string {
  const flags = ['bottle'];
  if (bottle.machine) flags.push(bottle.machine.state === 'running' ? 'running' : 'machine');
  if (bottle.snapshot) flags.push('frozen');
  if (busy) flags.push('busy');
  return flags.join('+');
}

function bottleDescription(bottle: Bottle): string {
  const machine = bottle.machine;
  if (!machine) return vscode.l10n.t('frozen · {0}', formatTime(bottle.snapshot!.createdAt));
  const parts = [machine.state];
  if (machine.image) parts.push(machine.image);
  if (machine.uptimeSeconds !== undefined) parts.push(vscode.l10n.t('up {0}', formatDuration(machine.uptimeSeconds)));
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
    if (m.uptimeSeconds !== undefined) lines.push(vscode.l10n.t('Up: {0}', formatDuration(m.uptimeSeconds)));
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
  item.contextValue = snapshot.record ? 'snapshot+recorded' : 'snapshot';
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
