/** Commands on a bottle's machine: open a shell, show the agent's log, copy its name. */
import * as vscode from 'vscode';
import { isRunning } from '../core/facade';
import { showAgentLog } from './agentLog';
import { reportFailure } from './report';
import { openShell } from './shell';
import { resolveBottle, type CommandDeps, type Target } from './targets';

export async function openShellCommand(deps: CommandDeps, target: Target): Promise<vscode.Terminal | undefined> {
  const bottle = await resolveBottle(deps, target, {
    fits: isRunning,
    placeHolder: vscode.l10n.t('Choose a running bottle'),
    none: vscode.l10n.t('No bottle is running.'),
  });
  if (!bottle) return undefined;
  try {
    return openShell(deps.core().shellArgv(bottle, deps.settings().shell), bottle.slug);
  } catch (error) {
    reportFailure(deps.logs, vscode.l10n.t('Opening a shell in {0}', bottle.slug), error);
    return undefined;
  }
}

export async function showAgentLogCommand(deps: CommandDeps, target: Target): Promise<void> {
  const bottle = await resolveBottle(deps, target, {
    fits: (b) => b.machine !== undefined,
    placeHolder: vscode.l10n.t('Choose a bottle'),
    none: vscode.l10n.t('No bottle has a machine.'),
  });
  if (!bottle) return;
  try {
    await showAgentLog(bottle.slug, await deps.core().agentLogPath(bottle));
  } catch (error) {
    reportFailure(deps.logs, vscode.l10n.t('Showing the agent log of {0}', bottle.slug), error);
  }
}

export async function copyMachineNameCommand(deps: CommandDeps, target: Target): Promise<void> {
  const bottle = await resolveBottle(deps, target, { fits: () => true, placeHolder: vscode.l10n.t('Choose a bottle'), none: vscode.l10n.t('There are no bottles.') });
  if (!bottle) return;
  await vscode.env.clipboard.writeText(bottle.machineName);
  void vscode.window.showInformationMessage(vscode.l10n.t('Copied the machine name {0}.', bottle.machineName));
}
