/** Resume Bottle: recreate the machine from its snapshot, asking first when the name is taken and confirming what comes back. */
import * as vscode from 'vscode';
import { StepFailedError } from '../core/errors';
import { MachineExistsError, UnverifiedSnapshotError } from '../core/facade';
import { withOperationProgress } from './progress';
import { reportFailure } from './report';
import { confirmResume } from './resumeSize';
import { resolveSnapshot, type CommandDeps, type Target } from './targets';

interface Placement {
  replace: boolean;
  asSlug?: string;
}

export async function resumeCommand(deps: CommandDeps, target: Target): Promise<string | undefined> {
  const snapshot = await resolveSnapshot(deps, target, vscode.l10n.t('Choose a frozen bottle to resume'));
  if (!snapshot) return undefined;
  const taken = deps.model.find(snapshot.slug)?.machine !== undefined;
  const placement = taken ? await askForPlacement(deps, snapshot.slug) : { replace: false };
  if (!placement) return undefined;
  const slug = placement.asSlug ?? snapshot.slug;
  const choice = await confirmResume(deps, snapshot, slug);
  if (!choice) return undefined;
  const what = vscode.l10n.t('Resuming {0}', slug);
  try {
    const resume = (allowUnverified: boolean) =>
      withOperationProgress(deps.operations, slug, 'resume', what, (signal, onProgress) =>
        deps.core().resume(snapshot, { signal, onProgress, ...placement, ...choice, allowUnverified }),
      );
    const { machine, notCarried } = await resume(false).catch(async (error: unknown) => {
      const unverified = unverifiedSnapshot(error);
      if (!(unverified && (await confirmUnverified(unverified)))) throw error;
      return resume(true);
    });
    announceResumed(machine, slug, notCarried);
    return machine;
  } catch (error) {
    if (error instanceof MachineExistsError) return resumeCommandAfterClash(deps, error);
    reportFailure(deps.logs, what, error);
    return undefined;
  } finally {
    void deps.model.refresh();
  }
}

/** What smolvm could not be told again (an egress allow-list, env) is named, as a warning. */
function announceResumed(machine: string, slug: string, notCarried: readonly string[]): void {
  const openShell = vscode.l10n.t('Open Shell');
  const shown = notCarried.length
    ? vscode.window.showWarningMessage(vscode.l10n.t('{0} is running again. Not carried over from the frozen bottle: {1}.', machine, notCarried.join('; ')), openShell)
    : vscode.window.showInformationMessage(vscode.l10n.t('{0} is running again.', machine), openShell);
  void shown.then((choice) => {
    if (choice === openShell) void vscode.commands.executeCommand('botBottle.openShell', slug);
  });
}

/** A snapshot with no record (imported, or written by another tool) cannot be checked: resume it only if the user trusts it. */
function unverifiedSnapshot(error: unknown): UnverifiedSnapshotError | undefined {
  return error instanceof StepFailedError && error.cause instanceof UnverifiedSnapshotError ? error.cause : undefined;
}

async function confirmUnverified(error: UnverifiedSnapshotError): Promise<boolean> {
  const resumeAnyway = vscode.l10n.t('Resume Anyway');
  return (await vscode.window.showWarningMessage(vscode.l10n.t('This snapshot cannot be checked.'), { modal: true, detail: error.message }, resumeAnyway)) === resumeAnyway;
}

/** The machine appeared after the tree last looked: refresh and ask again. */
async function resumeCommandAfterClash(deps: CommandDeps, error: MachineExistsError): Promise<undefined> {
  deps.logs.main.info(error.message);
  await deps.model.refresh();
  void vscode.window.showWarningMessage(error.message);
  return undefined;
}

async function askForPlacement(deps: CommandDeps, slug: string): Promise<Placement | undefined> {
  const machine = deps.core().machineName(slug);
  const replace = vscode.l10n.t('Replace');
  const rename = vscode.l10n.t('Resume Under a New Name…');
  const choice = await vscode.window.showWarningMessage(
    vscode.l10n.t('A machine named {0} already exists.', machine),
    { modal: true, detail: vscode.l10n.t('Replace stops and deletes it, with everything in it that is not in the snapshot.') },
    replace,
    rename,
  );
  if (choice === replace) return { replace: true };
  if (choice !== rename) return undefined;
  const asSlug = await vscode.window.showInputBox({
    title: vscode.l10n.t('Resume {0} as', slug),
    value: `${slug}-2`,
    prompt: vscode.l10n.t('The new bottle’s name; its machine will be {0}<name>.', deps.core().machinePrefix),
    validateInput: (value) => deps.core().slugProblem(value) ?? (deps.model.find(value)?.machine ? vscode.l10n.t('A machine of that name exists.') : undefined),
  });
  return asSlug ? { replace: false, asSlug } : undefined;
}
