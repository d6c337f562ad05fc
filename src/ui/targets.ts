/** What a command acts on: the tree node it was run from, a slug from other code, or the user's pick. */
import * as vscode from 'vscode';
import type { BotBottle, Bottle, Settings, Snapshot } from '../core/facade';
import type { BottlesModel } from './bottlesModel';
import type { TreeNode } from './bottlesTree';
import type { Logs } from './logs';
import type { Operations } from './operations';

export interface CommandDeps {
  model: BottlesModel;
  logs: Logs;
  operations: Operations;
  core(): BotBottle;
  settings(): Settings;
  /** The rows selected in the Bottles view, for keybindings (which pass no row). */
  selection?(): readonly TreeNode[];
}

export type Target = TreeNode | string | undefined;

export interface Want {
  fits(bottle: Bottle): boolean;
  placeHolder: string;
  /** Said when no bottle fits, instead of an empty pick. */
  none: string;
}

/** The bottle a command is for: from its argument, or picked from those that fit. */
export async function resolveBottle(deps: CommandDeps, target: Target, want: Want): Promise<Bottle | undefined> {
  if (typeof target === 'object' && target.kind !== 'error') return target.bottle;
  if (typeof target === 'string') {
    return deps.model.find(target) ?? { slug: target, machineName: deps.core().machineName(target) };
  }
  const candidates = deps.model.bottles.filter(want.fits);
  if (candidates.length === 0) {
    void vscode.window.showInformationMessage(want.none);
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    candidates.map((bottle) => ({ label: bottle.slug, description: bottle.machine?.state ?? vscode.l10n.t('snapshot only'), detail: bottle.machineName, bottle })),
    { placeHolder: want.placeHolder },
  );
  return picked?.bottle;
}

export const hasSnapshot = (bottle: Bottle): boolean => bottle.snapshot !== undefined;

/** The snapshot a command is for (a snapshot row's own, else the bottle's newest); says so when the chosen bottle has none. */
export async function resolveSnapshot(deps: CommandDeps, target: Target, placeHolder: string): Promise<Snapshot | undefined> {
  if (typeof target === 'object' && target.kind === 'snapshot') return target.snapshot;
  const bottle = await resolveBottle(deps, target, { fits: hasSnapshot, placeHolder, none: vscode.l10n.t('No bottle has a snapshot yet.') });
  if (!bottle) return undefined;
  if (!bottle.snapshot) void vscode.window.showInformationMessage(vscode.l10n.t('Bottle {0} has no snapshot.', bottle.slug));
  return bottle.snapshot;
}
