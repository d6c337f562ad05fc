/**
 * The bottles as the window knows them: one list, refreshed on demand, after each operation, on a
 * timer while the view is visible, and when a state folder changes (debounced). It fires a change
 * event; the tree, the status bar and the commands read it. A failed list is kept as a status (a
 * missing smolvm, or an error) for the view to show in place of the rows, never as a pop-up.
 */
import * as vscode from 'vscode';
import { SmolvmMissingError, type BotBottle, type Bottle } from '../core/facade';
import { errorMessage } from '../core/errors';
import { SORT_ORDERS, type SortOrder } from './bottleRows';
import { setContext, type ViewStatus } from './context';
import { bottleContextKeys, type BottleContextKeys } from './contextValues';
import type { Logs } from './logs';

const WATCH_DEBOUNCE_MS = 500;
/** How often "2 min ago" is brought up to date while the view is visible (no new list is read). */
const CLOCK_TICK_MS = 30_000;
const SORT_ORDER_KEY = 'botBottle.sortBy';

/** Where the chosen row order is remembered (the extension's global state). */
export type OrderMemory = Pick<vscode.Memento, 'get' | 'update'>;

export class BottlesModel implements vscode.Disposable {
  private list: Bottle[] = [];
  private currentStatus: ViewStatus = 'loading';
  private failureMessage?: string;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private visible = false;
  private timer?: ReturnType<typeof setInterval>;
  private watchers: vscode.FileSystemWatcher[] = [];
  private debounce?: ReturnType<typeof setTimeout>;
  private clock?: ReturnType<typeof setInterval>;
  private listTime = Date.now();
  private order: SortOrder;

  constructor(
    private core: BotBottle,
    private refreshIntervalSeconds: number,
    private readonly logs: Logs,
    private readonly memory?: OrderMemory,
  ) {
    const remembered = memory?.get<string>(SORT_ORDER_KEY);
    this.order = SORT_ORDERS.find((order) => order === remembered) ?? 'name';
    void setContext('botBottle.status', 'loading');
    void setContext('botBottle.sortBy', this.order);
    this.watchStateFolders();
  }

  /** When the list was last read: uptimes are as of then. */
  get listedAt(): number {
    return this.listTime;
  }

  get sortOrder(): SortOrder {
    return this.order;
  }

  /** Rows by name or by last activity, remembered across windows and restarts. */
  async setSortOrder(order: SortOrder): Promise<void> {
    this.order = order;
    await Promise.all([this.memory?.update(SORT_ORDER_KEY, order), setContext('botBottle.sortBy', order)]);
    this.changed.fire();
  }

  get bottles(): readonly Bottle[] {
    return this.list;
  }

  get status(): ViewStatus {
    return this.currentStatus;
  }

  /** Why the last list failed, when it failed for another reason than a missing smolvm. */
  get failure(): string | undefined {
    return this.failureMessage;
  }

  find(slug: string): Bottle | undefined {
    return this.list.find((bottle) => bottle.slug === slug);
  }

  /** The timer runs only while someone can see the rows. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    this.scheduleTimer();
  }

  /** New settings: a new core, timer and watcher, then a fresh list. */
  reconfigure(core: BotBottle, refreshIntervalSeconds: number): Promise<void> {
    this.core = core;
    this.refreshIntervalSeconds = refreshIntervalSeconds;
    this.watchStateFolders();
    this.scheduleTimer();
    return this.refresh();
  }

  async refresh(): Promise<void> {
    try {
      this.list = await this.core.listBottles();
      this.listTime = Date.now();
      this.currentStatus = 'ready';
      this.failureMessage = undefined;
    } catch (error) {
      this.list = [];
      this.currentStatus = error instanceof SmolvmMissingError ? 'smolvmMissing' : 'error';
      this.failureMessage = this.currentStatus === 'error' ? errorMessage(error) : undefined;
      this.logs.main.warn(`Listing bottles failed: ${errorMessage(error)}`);
    }
    const keys = Object.entries(bottleContextKeys(this.list)) as [keyof BottleContextKeys, boolean][];
    await Promise.all([setContext('botBottle.status', this.currentStatus), ...keys.map(([key, value]) => setContext(key, value))]);
    this.changed.fire();
  }

  dispose(): void {
    this.stopTimer();
    clearTimeout(this.debounce);
    for (const watcher of this.watchers) watcher.dispose();
    this.changed.dispose();
  }

  private scheduleTimer(): void {
    this.stopTimer();
    if (!this.visible) return;
    this.clock = setInterval(() => this.changed.fire(), CLOCK_TICK_MS);
    if (this.refreshIntervalSeconds <= 0) return;
    this.timer = setInterval(() => void this.refresh(), this.refreshIntervalSeconds * 1000);
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    clearInterval(this.clock);
    this.timer = undefined;
    this.clock = undefined;
  }

  /** Snapshots written by a freeze, by bot-bottle itself or by hand show up without a refresh. */
  private watchStateFolders(): void {
    for (const watcher of this.watchers) watcher.dispose();
    const onChange = (uri: vscode.Uri) => {
      if (isBookkeeping(uri)) return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.refresh(), WATCH_DEBOUNCE_MS);
    };
    this.watchers = [this.core.stateRoot, this.core.botBottleStateRoot].map((root) => {
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '*/*'));
      watcher.onDidCreate(onChange);
      watcher.onDidDelete(onChange);
      watcher.onDidChange(onChange);
      return watcher;
    });
  }
}

/**
 * The extension's own bookkeeping under a state root (the list of running tools, locks, staging and
 * parked folders, the install journal) has names that start with a dot. A change there is no new
 * snapshot, and reacting to it would loop: every refresh runs tools, and running tools rewrites
 * that list.
 */
function isBookkeeping(uri: vscode.Uri): boolean {
  return uri.path.split('/').slice(-2).some((segment) => segment.startsWith('.'));
}
