/** Every command: resolve its target (a tree node, or a pick when run from the palette), call the core, report. */
import * as vscode from 'vscode';
import type { BottlesTree } from './bottlesTree';
import { openSetting } from './config';
import type { Logs } from './logs';

export interface CommandDeps {
  tree: BottlesTree;
  logs: Logs;
}

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const { tree, logs } = deps;
  const commands: Record<string, (...args: never[]) => unknown> = {
    'botBottle.refresh': () => tree.refresh(),
    'botBottle.showLog': () => logs.showMain(),
    'botBottle.showToolLog': () => logs.showTools(),
    'botBottle.setSmolvmPath': () => openSetting('paths.smolvm'),
  };
  return Object.entries(commands).map(([id, handler]) => vscode.commands.registerCommand(id, handler));
}
