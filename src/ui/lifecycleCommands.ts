/**
 * A bottle's life from the view: Start, Stop, Restart and Delete Bottle, and Freeze on several
 * bottles at once (a multi-selection, or every running bottle). Each bottle gets its own progress;
 * several end in one summary, and a failure in it offers the log that holds the reasons.
 */
import * as vscode from 'vscode';
import { backendOf, isRunning, type Bottle, type LifecycleAction } from '../core/facade';
import { errorMessage, isCancelled } from '../core/errors';
import { formatTime } from '../core/format';
import { batchSummary, bottleCount, type Outcome } from './batchSummary';
import type { TreeNode } from './bottlesTree';
import { freezeCommand } from './freezeCommand';
import { operationTitle } from './operations';
import { withOperationProgress } from './progress';
import { reportFailure } from './report';
import { resolveBottle, type CommandDeps, type Target, type Want } from './targets';

/** What a keybinding passes: act on the rows selected in the Bottles view. */
export interface FromSelection {
  selection: true;
}

export type CommandTarget = Target | FromSelection;
export type Selected = readonly TreeNode[] | undefined;

const hasMachine = (bottle: Bottle): boolean => Boolean(bottle.machine ?? bottle.container);
const isIdle = (deps: CommandDeps) => (bottle: Bottle) => deps.operations.get(bottle.slug) === undefined;

/**
 * The bottles a command acts on. From a context menu VS Code passes the clicked row and every
 * selected row: when the clicked row is one of several selected, the command is for all of them
 * that fit. A keybinding passes {selection: true}. Otherwise, one bottle as resolveBottle finds it.
 */
export async function targetBottles(deps: CommandDeps, target: CommandTarget, selected: Selected, want: Want): Promise<Bottle[]> {
  if (isFromSelection(target)) return selectionBottles(deps, deps.selection?.() ?? [], want);
  if (selected && selected.length > 1 && selected.some((row) => row === target)) return selectionBottles(deps, selected, want);
  const one = await resolveBottle(deps, target, want);
  return one ? [one] : [];
}

/** Every selected bottle that fits; one selected row that does not fit (Freeze on a stopped bottle) asks among those that do. */
async function selectionBottles(deps: CommandDeps, rows: readonly TreeNode[], want: Want): Promise<Bottle[]> {
  const bottles = [...new Map(rows.flatMap((row) => (row.kind === 'error' ? [] : [[row.bottle.slug, row.bottle] as const]))).values()];
  if (bottles.length <= 1) {
    const one = await resolveBottle(deps, bottles[0] && want.fits(bottles[0]) ? bottles[0].slug : undefined, want);
    return one ? [one] : [];
  }
  const fitting = bottles.filter(want.fits);
  if (fitting.length === 0) void vscode.window.showInformationMessage(want.none);
  return fitting;
}

/**
 * For a command on one bottle: a keybinding's {selection: true} becomes the selected bottle when it
 * fits (else nothing, so the command asks among those that do); a row or a slug passes as it is.
 */
export function selectedOr(deps: CommandDeps, target: CommandTarget, fits: (bottle: Bottle) => boolean): Target {
  if (!isFromSelection(target)) return target;
  const [row] = deps.selection?.() ?? [];
  return row && row.kind !== 'error' && fits(row.bottle) ? row.bottle.slug : undefined;
}

function isFromSelection(target: CommandTarget): target is FromSelection {
  return typeof target === 'object' && 'selection' in target && target.selection === true;
}

/** One bottle: quiet on success (its row shows it), a message on failure. Several: one summary. */
export async function lifecycleCommand(deps: CommandDeps, action: LifecycleAction, target: CommandTarget, selected: Selected): Promise<Outcome[]> {
  const bottles = await targetBottles(deps, target, selected, wantFor(deps, action));
  if (bottles.length === 0) return [];
  if (action === 'delete') return deleteBottles(deps, bottles);
  return runOnEach(deps, bottles, action);
}

function wantFor(deps: CommandDeps, action: LifecycleAction): Want {
  const idle = isIdle(deps);
  switch (action) {
    case 'start':
      return { fits: (b) => hasMachine(b) && !isRunning(b) && idle(b), placeHolder: vscode.l10n.t('Choose a bottle to start'), none: vscode.l10n.t('No bottle is stopped.') };
    case 'stop':
      return { fits: (b) => isRunning(b) && idle(b), placeHolder: vscode.l10n.t('Choose a running bottle to stop'), none: vscode.l10n.t('No bottle is running.') };
    case 'restart':
      return { fits: (b) => isRunning(b) && idle(b), placeHolder: vscode.l10n.t('Choose a running bottle to restart'), none: vscode.l10n.t('No bottle is running.') };
    case 'delete':
      return { fits: (b) => hasMachine(b) && idle(b), placeHolder: vscode.l10n.t('Choose a bottle to delete'), none: vscode.l10n.t('No bottle has a machine to delete.') };
  }
}

async function runOnEach(deps: CommandDeps, bottles: readonly Bottle[], action: LifecycleAction): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  try {
    for (const bottle of bottles) outcomes.push(await changeOne(deps, bottle, action, bottles.length === 1));
  } finally {
    void deps.model.refresh();
  }
  if (bottles.length > 1) announceBatch(deps, outcomes, (n) => doneText(action, n));
  return outcomes;
}

async function changeOne(deps: CommandDeps, bottle: Bottle, action: LifecycleAction, alone: boolean): Promise<Outcome> {
  const what = operationTitle(action, bottle.slug);
  try {
    await withOperationProgress(deps.operations, bottle.slug, action, what, (signal) => deps.core().changeBottle(bottle, action, signal));
    return { slug: bottle.slug };
  } catch (error) {
    if (alone) reportFailure(deps.logs, what, error);
    else deps.logs.main.error(`${what} failed: ${errorMessage(error)}`);
    return isCancelled(error) ? { slug: bottle.slug, cancelled: true } : { slug: bottle.slug, failure: errorMessage(error) };
  }
}

/** Asks first (modal), naming what goes and what stays; the safe choice, Freeze First, is the primary button. */
async function deleteBottles(deps: CommandDeps, bottles: readonly Bottle[]): Promise<Outcome[]> {
  const freezeFirst = vscode.l10n.t('Freeze First');
  const deleteLabel = bottles.length === 1 ? vscode.l10n.t('Delete {0}', machineWord(bottles[0])) : vscode.l10n.t('Delete {0} Machines', bottles.length);
  const choice = await vscode.window.showWarningMessage(deleteQuestion(bottles), { modal: true, detail: deleteDetail(bottles) }, freezeFirst, deleteLabel);
  if (choice === undefined) return [];
  const toDelete = choice === freezeFirst ? await freezeBeforeDelete(deps, bottles) : bottles;
  const skipped = bottles.filter((b) => !toDelete.includes(b)).map((b) => ({ slug: b.slug, failure: vscode.l10n.t('not frozen, so not deleted') }));
  const outcomes: Outcome[] = [...skipped];
  try {
    for (const bottle of toDelete) outcomes.push(await changeOne(deps, bottle, 'delete', bottles.length === 1));
  } finally {
    void deps.model.refresh();
  }
  if (bottles.length > 1 || skipped.length) announceBatch(deps, outcomes, (n) => doneText('delete', n));
  return outcomes;
}

/** The bottles whose freeze worked (a stopped one is started first: a freeze reads a running machine). */
async function freezeBeforeDelete(deps: CommandDeps, bottles: readonly Bottle[]): Promise<Bottle[]> {
  const frozen: Bottle[] = [];
  for (const bottle of bottles) {
    if (!isRunning(bottle) && !worked(await changeOne(deps, bottle, 'start', bottles.length === 1))) continue;
    if (await freezeCommand(deps, bottle.slug, { quiet: bottles.length > 1 })) frozen.push(bottle);
  }
  return frozen;
}

function worked(outcome: Outcome): boolean {
  return outcome.failure === undefined && !outcome.cancelled;
}

function deleteQuestion(bottles: readonly Bottle[]): string {
  if (bottles.length > 1) return vscode.l10n.t('Delete the machines of {0}?', bottleCount(bottles.length, vscode.l10n.t));
  const [bottle] = bottles;
  return backendOf(bottle) === 'docker'
    ? vscode.l10n.t('Delete the container {0}?', bottle.machineName)
    : vscode.l10n.t('Delete the machine {0}?', bottle.machineName);
}

/** What goes (the machine and its disk) and what stays (the snapshots), in a few words. */
function deleteDetail(bottles: readonly Bottle[]): string {
  const names = bottles.map((b) => b.machineName).join(', ');
  const goes =
    bottles.length === 1
      ? vscode.l10n.t('Its disk goes with it: whatever changed since the last freeze is lost.')
      : vscode.l10n.t('{0} go, with their disks: whatever changed since their last freeze is lost.', names);
  return `${goes}\n${snapshotsStay(bottles)}\n${vscode.l10n.t('Freeze First takes a snapshot, then deletes.')}`;
}

function snapshotsStay(bottles: readonly Bottle[]): string {
  const frozen = bottles.filter((b) => b.snapshot);
  if (frozen.length === 0) return bottles.length === 1 ? vscode.l10n.t('It has no snapshot to keep.') : vscode.l10n.t('None of them has a snapshot to keep.');
  if (bottles.length === 1) return vscode.l10n.t('Its snapshot of {0} stays.', formatTime(frozen[0].snapshot!.createdAt));
  return vscode.l10n.t('Their snapshots stay: {0}.', frozen.map((b) => vscode.l10n.t('{0} ({1})', b.slug, formatTime(b.snapshot!.createdAt))).join(', '));
}

function machineWord(bottle: Bottle): string {
  return backendOf(bottle) === 'docker' ? vscode.l10n.t('Container') : vscode.l10n.t('Machine');
}

/** Freeze on a multi-selection or a keybinding's selection; one bottle goes the usual way. */
export async function freezeTargetsCommand(deps: CommandDeps, target: CommandTarget, selected: Selected): Promise<Outcome[]> {
  const want: Want = {
    fits: (b) => isRunning(b) && isIdle(deps)(b),
    placeHolder: vscode.l10n.t('Choose a running bottle to freeze'),
    none: vscode.l10n.t('No bottle is running, so there is nothing to freeze.'),
  };
  const several = isFromSelection(target) ? (deps.selection?.().length ?? 0) > 1 : (selected?.length ?? 0) > 1;
  if (!several) {
    const frozen = await freezeCommand(deps, selectedOr(deps, target, want.fits));
    return frozen ? [{ slug: frozen.slug }] : [];
  }
  return freezeMany(deps, await targetBottles(deps, target, selected, want));
}

export async function freezeAllRunningCommand(deps: CommandDeps): Promise<Outcome[]> {
  const running = deps.model.bottles.filter((b) => isRunning(b) && isIdle(deps)(b));
  if (running.length === 0) {
    void vscode.window.showInformationMessage(vscode.l10n.t('No bottle is running, so there is nothing to freeze.'));
    return [];
  }
  return freezeMany(deps, running);
}

/** One after another (each freeze works the disk hard), each with its own progress; then one summary. */
async function freezeMany(deps: CommandDeps, bottles: readonly Bottle[]): Promise<Outcome[]> {
  if (bottles.length === 0) return [];
  const outcomes: Outcome[] = [];
  for (const bottle of bottles) {
    const frozen = await freezeCommand(deps, { kind: 'bottle', bottle }, { quiet: true, onFailure: (failure) => outcomes.push(failure) });
    if (frozen) outcomes.push({ slug: bottle.slug });
  }
  announceBatch(deps, outcomes, (n) => doneText('freeze', n));
  return outcomes;
}

function announceBatch(deps: CommandDeps, outcomes: readonly Outcome[], done: (count: number) => string): void {
  const summary = batchSummary(outcomes, done, vscode.l10n.t);
  deps.logs.main.info(summary);
  if (!outcomes.some((o) => o.failure !== undefined)) {
    void vscode.window.showInformationMessage(summary);
    return;
  }
  const showLog = vscode.l10n.t('Show Log');
  void vscode.window.showErrorMessage(summary, showLog).then((choice) => {
    if (choice === showLog) deps.logs.showMain();
  });
}

function doneText(action: LifecycleAction | 'freeze', count: number): string {
  const bottles = bottleCount(count, vscode.l10n.t);
  switch (action) {
    case 'freeze':
      return vscode.l10n.t('Froze {0}', bottles);
    case 'start':
      return vscode.l10n.t('Started {0}', bottles);
    case 'stop':
      return vscode.l10n.t('Stopped {0}', bottles);
    case 'restart':
      return vscode.l10n.t('Restarted {0}', bottles);
    case 'delete':
      return vscode.l10n.t('Deleted the machines of {0}', bottles);
  }
}
