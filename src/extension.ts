/** Builds the core and the UI around it, and owns every disposable. */
import * as vscode from 'vscode';
import { BotBottle, DEFAULT_SETTINGS, endAllTools, type Bottle, type Settings } from './core/facade';
import { errorMessage } from './core/errors';
import { AgentLogProvider } from './ui/agentLog';
import { BottlesModel } from './ui/bottlesModel';
import { BottlesTree, VIEW_ID } from './ui/bottlesTree';
import { registerCommands } from './ui/commands';
import { Logs } from './ui/logs';
import { Operations } from './ui/operations';
import { declaredSettingKeys, SettingsSource } from './ui/settingsSource';
import { FreezeStatusBar } from './ui/statusBar';

/** What the extension offers other extensions (and its own tests). */
export interface BotBottleApi {
  bottles(): readonly Bottle[];
  refresh(): Promise<readonly Bottle[]>;
}

export function activate(context: vscode.ExtensionContext): BotBottleApi {
  const logs = new Logs();
  const operations = new Operations();
  const settingsSource = new SettingsSource(logs.main, declaredSettingKeys(context.extension.packageJSON));
  let settings = settingsSource.settings;
  let core = buildCore(settings, logs);
  const model = new BottlesModel(core, settings.refreshInterval, logs, context.globalState);
  const tree = new BottlesTree(model, operations);
  const view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: tree, showCollapseAll: true, canSelectMany: true });
  const statusBar = new FreezeStatusBar(operations, settings.statusBarEnabled);
  model.setVisible(view.visible);

  // Commands ask for these on every run: the settings are re-read first, and a change rebuilds `core`.
  const settingsForCommand = () => settingsSource.recheck('a command');
  const coreForCommand = () => {
    settingsForCommand();
    return core;
  };
  context.subscriptions.push(
    logs,
    operations,
    model,
    tree,
    view,
    statusBar,
    settingsSource,
    view.onDidChangeVisibility((event) => {
      if (event.visible) settingsSource.recheck('showing the Bottles view');
      model.setVisible(event.visible);
    }),
    model.onDidChange(() => statusBar.setBottles(model.bottles)),
    ...registerCommands({ model, logs, operations, core: coreForCommand, settings: settingsForCommand, selection: () => view.selection }),
    new AgentLogProvider(),
    settingsSource.onDidChange((next) => {
      settings = next;
      core = buildCore(settings, logs);
      statusBar.setEnabled(settings.statusBarEnabled);
      void model.reconfigure(core, settings.refreshInterval);
    }),
  );
  logs.main.info(`Bot Bottle ${context.extension.packageJSON.version} started; state folder ${core.stateRoot}`);
  void recoverThenRefresh(core, logs, model);

  return {
    bottles: () => model.bottles,
    refresh: async () => {
      await model.refresh();
      return model.bottles;
    },
  };
}

/** Work a crashed window left half done is cleaned up once, and said once, before the first list. */
async function recoverThenRefresh(core: BotBottle, logs: Logs, model: BottlesModel): Promise<void> {
  try {
    const done = await core.recoverInterruptedWork();
    if (done.length) logs.main.warn(`Cleaned up after interrupted work:\n  ${done.join('\n  ')}`);
  } catch (error) {
    logs.main.warn(`Could not clean up after interrupted work: ${errorMessage(error)}`);
  }
  await model.refresh();
}

/** A bad machine prefix must not stop the extension: fall back to the default and say so. */
function buildCore(settings: Settings, logs: Logs): BotBottle {
  try {
    return new BotBottle(settings, logs);
  } catch (error) {
    const message = errorMessage(error);
    logs.main.error(message);
    void vscode.window.showErrorMessage(message);
    return new BotBottle({ ...settings, machinePrefix: DEFAULT_SETTINGS.machinePrefix }, logs);
  }
}

/** Every disposable is owned by context.subscriptions; the tools still running are ended here. */
export function deactivate(): Promise<void> {
  return endAllTools();
}
