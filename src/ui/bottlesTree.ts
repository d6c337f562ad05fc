/**
 * The Bottles view's rows: running bottles and frozen-only ones, each snapshot under its bottle,
 * or the reason the list failed. It only draws what the model holds (and which bottles are busy);
 * the model decides when to refresh.
 */
import * as vscode from 'vscode';
import { formatBytes, formatDuration, formatTime } from '../core/format';
import { isFreezePullReference, isPinned, type Bottle, type Snapshot } from '../core/facade';
import { accessibleLabel, knownAs, relativeTime, rowParts, sortBottles } from './bottleRows';
import type { BottlesModel } from './bottlesModel';
import { bottleContextValue, snapshotContextValue } from './contextValues';
import type { Operations } from './operations';

export const VIEW_ID = 'botBottle.bottles';

export type BottleNode = { kind: 'bottle'; bottle: Bottle };
export type SnapshotNode = { kind: 'snapshot'; bottle: Bottle; snapshot: Snapshot };
export type MessageNode = { kind: 'error'; message: string };
export type TreeNode = BottleNode | SnapshotNode | MessageNode;

/** What the tree draws from: the model, or (in tests) anything shaped like it. */
export type BottlesSource = Pick<BottlesModel, 'bottles' | 'failure' | 'onDidChange'> & Partial<Pick<BottlesModel, 'listedAt' | 'sortOrder'>>;

export class BottlesTree implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[];
  private roots: TreeNode[] = [];
  /** What each bottle's row showed when it was last drawn. */
  private readonly drawn = new Map<string, string>();

  constructor(
    private readonly source: BottlesSource,
    private readonly operations: Pick<Operations, 'get' | 'onDidChange'>,
  ) {
    this.sync();
    this.disposables = [this.changed, source.onDidChange(() => this.sync()), operations.onDidChange(() => this.sync())];
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (!node) return this.roots;
    if (node.kind === 'bottle') return snapshotsOf(node.bottle).map((snapshot) => ({ kind: 'snapshot', bottle: node.bottle, snapshot }));
    return [];
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    switch (node.kind) {
      case 'bottle':
        return this.bottleItem(node.bottle);
      case 'snapshot':
        return snapshotItem(node.snapshot, node.snapshot === node.bottle.botBottle?.committed);
      case 'error':
        return errorItem(node.message);
    }
  }

  getParent(node: TreeNode): TreeNode | undefined {
    if (node.kind !== 'snapshot') return undefined;
    return this.roots.find((root) => root.kind === 'bottle' && root.bottle.slug === node.bottle.slug);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  /**
   * Tells VS Code what changed since the last draw. While the same bottles are listed, only the
   * rows that look different are redrawn, and each row stays the same object: a whole-tree
   * refresh makes VS Code forget every row until it asks again, and a menu clicked in that moment
   * would reach its command without the row.
   */
  private sync(): void {
    const previous = this.roots;
    this.roots = this.rootsNow(previous);
    const redrawn: BottleNode[] = [];
    for (const node of this.roots) {
      if (node.kind !== 'bottle') continue;
      const looks = this.looks(node.bottle);
      if (this.drawn.get(node.bottle.slug) === looks) continue;
      this.drawn.set(node.bottle.slug, looks);
      redrawn.push(node);
    }
    const sameRows = this.roots.length === previous.length && this.roots.every((node, i) => node === previous[i]);
    if (!sameRows) this.changed.fire(undefined);
    else for (const node of redrawn) this.changed.fire(node);
  }

  /** The rows now, reusing the previous object of every bottle still listed. */
  private rootsNow(previous: readonly TreeNode[]): TreeNode[] {
    const failure = this.source.failure;
    if (failure) return previous[0]?.kind === 'error' && previous[0].message === failure ? [previous[0]] : [{ kind: 'error', message: failure }];
    const kept = new Map(previous.flatMap((node) => (node.kind === 'bottle' ? [[node.bottle.slug, node] as const] : [])));
    return sortBottles(this.source.bottles, this.source.sortOrder ?? 'name', this.listedAt()).map((bottle) => {
      const node = kept.get(bottle.slug);
      if (!node) return { kind: 'bottle', bottle };
      node.bottle = bottle;
      return node;
    });
  }

  /** The row's text is part of its look: "2 min ago" becoming "3 min ago" is a change to draw. */
  private looks(bottle: Bottle): string {
    return JSON.stringify({ bottle, parts: this.descriptionParts(bottle), ages: snapshotsOf(bottle).map((snapshot) => snapshotAge(snapshot)) });
  }

  /** What bot-bottle calls it, then the running step, or its state, how long ago and its image. */
  private descriptionParts(bottle: Bottle): string[] {
    const operation = this.operations.get(bottle.slug);
    const now = operation ? [operation.step] : rowParts(bottle, Date.now(), this.listedAt(), vscode.l10n.t);
    return [...knownAs(bottle), ...now];
  }

  private listedAt(): number {
    return this.source.listedAt ?? Date.now();
  }

  private bottleItem(bottle: Bottle): vscode.TreeItem {
    const operation = this.operations.get(bottle.slug);
    const parts = this.descriptionParts(bottle);
    const item = new vscode.TreeItem(bottle.slug, snapshotsOf(bottle).length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.id = `bottle:${bottle.slug}`;
    item.description = parts.join(' · ');
    item.accessibilityInformation = { label: accessibleLabel(bottle, parts) };
    item.tooltip = bottleTooltip(bottle);
    item.iconPath = operation ? new vscode.ThemeIcon('loading~spin') : bottleIcon(bottle);
    item.contextValue = bottleContextValue(bottle, Boolean(operation));
    return item;
  }
}

/** What bot-bottle's files say, as tooltip lines; their text is anyone's, so none of it is read as Markdown. */
function botBottleLines(bottle: Bottle): string[] {
  const known = bottle.botBottle;
  if (!known) return [];
  const m = known.metadata;
  const lines: string[] = [];
  const add = (template: string, value: string | undefined) => value && lines.push(vscode.l10n.t(template, escapeMarkdown(value)));
  add('Label: {0}', m.label);
  add('Agent: {0}', m.agentName);
  add('Backend: {0}', m.backend);
  add('Working folder: {0}', m.cwd);
  add('Started: {0}', m.startedAt && formatTime(m.startedAt));
  add('Committed image: {0}', known.committedTag);
  for (const problem of known.problems) add('Passed over: {0}', problem);
  return lines.length ? ['', ...lines] : [];
}

function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~&]/g, '\\$&');
}

function bottleTooltip(bottle: Bottle): vscode.MarkdownString {
  const lines = [`**${bottle.slug}** — \`${bottle.machineName}\``, ''];
  const m = bottle.machine;
  if (m) {
    lines.push(vscode.l10n.t('State: {0}', m.state));
    if (m.image) lines.push(vscode.l10n.t('Image: {0}', isFreezePullReference(m.image) ? vscode.l10n.t('made from a snapshot (smolvm records {0}, served only while the freeze packed it)', m.image) : m.image));
    if (m.pid) lines.push(vscode.l10n.t('PID: {0}', m.pid));
    if (m.cpus) lines.push(vscode.l10n.t('CPUs: {0}', m.cpus));
    if (m.memoryMib) lines.push(vscode.l10n.t('Memory: {0} MiB', m.memoryMib));
    if (m.createdAt) lines.push(vscode.l10n.t('Created: {0}', formatTime(m.createdAt)));
    if (m.uptimeSeconds !== undefined) lines.push(vscode.l10n.t('Up: {0}', formatDuration(m.uptimeSeconds * 1000)));
  } else if (bottle.container) {
    const c = bottle.container;
    lines.push(vscode.l10n.t('Docker container: {0}', c.state));
    if (c.image) lines.push(vscode.l10n.t('Image: {0}', escapeMarkdown(c.image)));
    if (c.startedAt) lines.push(vscode.l10n.t('Started: {0}', formatTime(c.startedAt)));
    if (c.uptimeSeconds !== undefined) lines.push(vscode.l10n.t('Up: {0}', formatDuration(c.uptimeSeconds * 1000)));
  } else {
    lines.push(vscode.l10n.t('No machine: this bottle exists only as a frozen snapshot.'));
  }
  if (bottle.snapshot) lines.push(vscode.l10n.t('Snapshot: {0}, {1}', formatTime(bottle.snapshot.createdAt), formatBytes(bottle.snapshot.sizeBytes)));
  if (bottle.snapshotBytes !== undefined) lines.push(vscode.l10n.t('Snapshots: {0} on disk ({1} kept)', formatBytes(bottle.snapshotBytes), snapshotsOf(bottle).length));
  lines.push(...botBottleLines(bottle));
  const markdown = new vscode.MarkdownString(lines.join('  \n'));
  markdown.supportThemeIcons = false;
  return markdown;
}

function bottleIcon(bottle: Bottle): vscode.ThemeIcon {
  switch ((bottle.machine ?? bottle.container)?.state) {
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

/** `smolvm 1.9.3, docker 28.2.2`: a version that already names its tool (smolvm's own line) is shown as it is. */
function toolsText(tools: Record<string, string>): string {
  return Object.entries(tools).map(([tool, version]) => (version.startsWith(tool) ? version : `${tool} ${version}`)).join(', ');
}

/** How long ago the snapshot was made, in the words the bottle rows use. */
function snapshotAge(snapshot: Snapshot, now = Date.now()): string {
  return relativeTime(snapshot.createdAt, now, (message, ...args) => vscode.l10n.t(message, ...args));
}

/** The bottle's snapshots as its rows show them: the newest, then the history, newest first. */
function snapshotsOf(bottle: Bottle): Snapshot[] {
  return [...(bottle.snapshot ? [bottle.snapshot] : []), ...(bottle.history ?? [])];
}

/** A snapshot's row: its name (else its time), how long ago and its size, a pin when pinned, its note in the tooltip. */
function snapshotItem(snapshot: Snapshot, committedByBotBottle: boolean, now = Date.now()): vscode.TreeItem {
  const record = snapshot.record;
  const time = formatTime(snapshot.createdAt);
  const label = record?.name ?? time;
  const ago = snapshotAge(snapshot, now);
  const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
  item.id = `snapshot:${snapshot.slug}:${snapshot.sidecar}`;
  item.description = [ago, formatBytes(snapshot.sizeBytes)].join(' · ');
  item.iconPath = new vscode.ThemeIcon(isPinned(snapshot) ? 'pinned' : 'archive');
  item.resourceUri = vscode.Uri.file(snapshot.sidecar);
  item.contextValue = snapshotContextValue(snapshot);
  const lines = [snapshot.historyId === undefined ? vscode.l10n.t('Newest snapshot of {0}', snapshot.slug) : vscode.l10n.t('Older snapshot of {0}', snapshot.slug)];
  if (record?.name) lines.push(record.name);
  lines.push(time, snapshot.sidecar, formatBytes(snapshot.sizeBytes));
  if (record?.note) lines.push('', vscode.l10n.t('Note: {0}', record.note), '');
  if (isPinned(snapshot)) lines.push(vscode.l10n.t('Pinned: never pruned'));
  if (record && Object.keys(record.tools).length) lines.push(vscode.l10n.t('Tools: {0}', toolsText(record.tools)));
  if (committedByBotBottle) lines.push(vscode.l10n.t('Made by bot-bottle commit'));
  if (record) lines.push(`sha256 ${record.sha256}`);
  item.tooltip = lines.join('\n');
  const pinned = isPinned(snapshot) ? vscode.l10n.t(', pinned') : '';
  item.accessibilityInformation = { label: vscode.l10n.t('Snapshot of {0}, {1}, {2}{3}', snapshot.slug, label, formatBytes(snapshot.sizeBytes), pinned) };
  return item;
}

function errorItem(message: string): vscode.TreeItem {
  const item = new vscode.TreeItem(message, vscode.TreeItemCollapsibleState.None);
  item.id = 'error';
  item.accessibilityInformation = { label: vscode.l10n.t('Listing bottles failed: {0}', message) };
  item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground'));
  item.tooltip = vscode.l10n.t('{0}\n\nClick to show the log.', message);
  item.contextValue = 'error';
  item.command = { command: 'botBottle.showLog', title: vscode.l10n.t('Show Log') };
  return item;
}
