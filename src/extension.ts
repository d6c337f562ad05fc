/** Builds the services, registers the UI, and owns every disposable. */
import * as vscode from 'vscode';
import type { Bottle } from './core/bottles';
import { errorMessage } from './core/errors';
import { recoverInterruptedWork } from './core/recovery';
import { killAllChildren } from './core/run';
import { Services } from './core/services';
import { BottlesTree, type TreeNode } from './ui/bottlesTree';
import { AgentLogProvider } from './ui/agentLog';
import { registerCommands } from './ui/commands';
import { onSettingsChanged, readSettings, type Settings } from './ui/config';
import { Logs } from './ui/logs';
import { Operations } from './ui/operations';
import { FreezeStatusBar } from './ui/statusBar';

/** What the extension offers other extensions (and its own tests). */
export interface BotBottleApi {
  bottles(): readonly Bottle[];
  refresh(): Promise<readonly Bottle[]>;
  /** The view's rows as the user sees them: the roots and their children. */
  viewItems(): Array<vscode.TreeItem & { children: vscode.TreeItem[] }>;
}

export function activate(context: vscode.ExtensionContext): BotBottleApi {
  const logs = new Logs();
  const operations = new Operations();
  let settings = readSettings();
  let services = buildServices(settings, logs);
  const tree = new BottlesTree(services, settings.refreshInterval, operations);
  const statusBar = new FreezeStatusBar(operations, settings.statusBarEnabled);

  context.subscriptions.push(
    logs,
    operations,
    tree,
    statusBar,
    tree.onDidChangeBottles((bottles) => statusBar.setBottles(bottles)),
    ...registerCommands({ tree, logs, operations, services: () => services, settings: () => settings }),
    new AgentLogProvider(),
    onSettingsChanged((next) => {
      settings = next;
      services = buildServices(settings, logs);
      logs.main.info('Settings changed: reloading.');
      statusBar.setEnabled(settings.statusBarEnabled);
      void tree.reconfigure(services, settings.refreshInterval);
    }),
  );
  logs.main.info(`Bot Bottle ${context.extension.packageJSON.version} started; state folder ${services.store.root}`);
  void recoverThenRefresh(services, logs, tree);

  return {
    bottles: () => tree.current,
    refresh: async () => {
      await tree.refresh();
      return tree.current;
    },
    viewItems: () =>
      tree.getChildren().map((node: TreeNode) => ({
        ...tree.getTreeItem(node),
        children: tree.getChildren(node).map((child) => tree.getTreeItem(child)),
      })),
  };
}

/** Work a crashed window left half done is cleaned up once, and said once, before the first list. */
async function recoverThenRefresh(services: Services, logs: Logs, tree: BottlesTree): Promise<void> {
  try {
    const done = await recoverInterruptedWork(services);
    if (done.length) logs.main.warn(`Cleaned up after interrupted work:\n  ${done.join('\n  ')}`);
  } catch (error) {
    logs.main.warn(`Could not clean up after interrupted work: ${errorMessage(error)}`);
  }
  await tree.refresh();
}

/** A bad machine prefix must not stop the extension: fall back to the default and say so. */
function buildServices(settings: Settings, logs: Logs): Services {
  try {
    return new Services(settings, logs);
  } catch (error) {
    const message = errorMessage(error);
    logs.main.error(message);
    void vscode.window.showErrorMessage(message);
    return new Services({ ...settings, machinePrefix: 'bot-bottle-' }, logs);
  }
}

/** Every disposable is owned by context.subscriptions; the tools still running are ended here. */
export function deactivate(): Promise<void> {
  return killAllChildren();
}
