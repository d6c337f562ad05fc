/** Registers every command; each handler lives in the file named for what it does. */
import * as vscode from 'vscode';
import { isRunning } from '../core/facade';
import { resumeWithBotBottleCommand } from './botBottleResumeCommand';
import { copyMachineNameCommand, openShellCommand, showAgentLogCommand } from './bottleCommands';
import { openSetting } from './config';
import { editSnapshotNoteCommand, renameSnapshotCommand, resumeFromSnapshotCommand, setSnapshotPinnedCommand } from './historyCommands';
import type { TreeNode } from './bottlesTree';
import { freezeAllRunningCommand, freezeTargetsCommand, lifecycleCommand, selectedOr } from './lifecycleCommands';
import { freezeCommand } from './freezeCommand';
import { resumeCommand } from './resumeCommand';
import {
  copySnapshotPathCommand,
  deleteSnapshotCommand,
  exportSnapshotCommand,
  importSnapshotCommand,
  revealSnapshotCommand,
} from './snapshotCommands';
import type { CommandDeps, Target } from './targets';

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const commands: Record<string, (target?: Target, selected?: readonly TreeNode[]) => unknown> = {
    'botBottle.refresh': () => deps.model.refresh(),
    'botBottle.freeze': (target, selected) => freezeTargetsCommand(deps, target, selected),
    'botBottle.freezeFull': (target) => freezeCommand(deps, target, { full: true }),
    'botBottle.freezeAllRunning': () => freezeAllRunningCommand(deps),
    'botBottle.startBottle': (target, selected) => lifecycleCommand(deps, 'start', target, selected),
    'botBottle.stopBottle': (target, selected) => lifecycleCommand(deps, 'stop', target, selected),
    'botBottle.restartBottle': (target, selected) => lifecycleCommand(deps, 'restart', target, selected),
    'botBottle.deleteBottle': (target, selected) => lifecycleCommand(deps, 'delete', target, selected),
    'botBottle.sortByName': () => deps.model.setSortOrder('name'),
    'botBottle.sortByActivity': () => deps.model.setSortOrder('activity'),
    'botBottle.resume': (target) => resumeCommand(deps, target),
    'botBottle.resumeWithBotBottle': (target) => resumeWithBotBottleCommand(deps, target),
    'botBottle.openShell': (target) => openShellCommand(deps, selectedOr(deps, target, isRunning)),
    'botBottle.showAgentLog': (target) => showAgentLogCommand(deps, target),
    'botBottle.exportSnapshot': (target) => exportSnapshotCommand(deps, target),
    'botBottle.importSnapshot': () => importSnapshotCommand(deps),
    'botBottle.deleteSnapshot': (target) => deleteSnapshotCommand(deps, target),
    'botBottle.revealSnapshot': (target) => revealSnapshotCommand(deps, target),
    'botBottle.copySnapshotPath': (target) => copySnapshotPathCommand(deps, target),
    'botBottle.copyMachineName': (target) => copyMachineNameCommand(deps, target),
    'botBottle.showLog': () => deps.logs.showMain(),
    'botBottle.showToolLog': () => deps.logs.showTools(),
    'botBottle.setSmolvmPath': () => openSetting('paths.smolvm'),
    'botBottle.resumeFromSnapshot': () => resumeFromSnapshotCommand(deps),
    'botBottle.renameSnapshot': (target) => renameSnapshotCommand(deps, target),
    'botBottle.editSnapshotNote': (target) => editSnapshotNoteCommand(deps, target),
    'botBottle.pinSnapshot': (target) => setSnapshotPinnedCommand(deps, target, true),
    'botBottle.unpinSnapshot': (target) => setSnapshotPinnedCommand(deps, target, false),
  };
  return Object.entries(commands).map(([id, handler]) => vscode.commands.registerCommand(id, handler));
}
