/**
 * Resume with bot-bottle: `bot-bottle resume <slug>` in a terminal, for any bottle bot-bottle can
 * resume (a docker bottle has no other resume). bot-bottle rebuilds the whole session around what
 * its state folder names. Without a bot-bottle CLI, says so and offers the machine-only resume
 * where the bottle has a snapshot.
 */
import * as vscode from 'vscode';
import type { Bottle } from '../core/facade';
import { errorMessage } from '../core/errors';
import { openSetting } from './config';
import { openBotBottleTerminal } from './shell';
import { resolveBottle, type CommandDeps, type Target } from './targets';

const knownToBotBottle = (bottle: Bottle): boolean => bottle.botBottle !== undefined || bottle.container !== undefined || bottle.snapshot !== undefined;

export async function resumeWithBotBottleCommand(deps: CommandDeps, target: Target): Promise<vscode.Terminal | undefined> {
  const bottle = await resolveBottle(deps, target, {
    fits: knownToBotBottle,
    placeHolder: vscode.l10n.t('Choose a bottle to resume with bot-bottle'),
    none: vscode.l10n.t('No bottle has anything bot-bottle could resume.'),
  });
  if (!bottle) return undefined;
  let argv: string[];
  try {
    argv = deps.core().botBottleResumeArgv(bottle.slug);
  } catch (error) {
    await offerMachineResume(deps, bottle, errorMessage(error));
    return undefined;
  }
  deps.logs.main.info(`Running bot-bottle resume ${bottle.slug} in a terminal.`);
  return openBotBottleTerminal(argv, bottle.slug);
}

async function offerMachineResume(deps: CommandDeps, bottle: Bottle, why: string): Promise<void> {
  deps.logs.main.warn(why);
  const machineOnly = vscode.l10n.t('Resume the Machine Only');
  const setPath = vscode.l10n.t('Set bot-bottle Path…');
  const canResumeMachine = bottle.snapshot !== undefined;
  const detail = canResumeMachine
    ? vscode.l10n.t('{0} Resume the Machine Only starts {1} from its snapshot, without the egress proxy, git gate and agent bot-bottle builds around it.', why, bottle.slug)
    : why;
  const choice = await vscode.window.showWarningMessage(detail, ...(canResumeMachine ? [machineOnly, setPath] : [setPath]));
  if (choice === machineOnly) await vscode.commands.executeCommand('botBottle.resume', bottle.slug);
  if (choice === setPath) await openSetting('paths.botBottle');
}
