/**
 * The step of Resume Bottle before anything is created: a dialog that says what the machine comes
 * back with and what it cannot get back, and lets the user change its size (CPUs, memory, disks)
 * in a few input boxes. Escape anywhere cancels the resume.
 */
import * as vscode from 'vscode';
import { parseSizeText, SIZE_LIMITS, sizeAmount, type MachineSize, type SizeField, type Snapshot } from '../core/facade';
import type { CommandDeps } from './targets';

export interface ResumeChoice {
  /** The size the user chose; undefined keeps the recorded one. */
  size?: MachineSize;
}

const SIZE_FIELDS = Object.keys(SIZE_LIMITS) as SizeField[];

/** Resolves to what to resume with, or undefined when the user cancelled. */
export async function confirmResume(deps: CommandDeps, snapshot: Snapshot, slug: string): Promise<ResumeChoice | undefined> {
  let size: MachineSize | undefined;
  for (;;) {
    const choice = await askToResume(deps, snapshot, slug, size);
    if (choice === 'resume') return { size };
    if (choice !== 'changeSize') return undefined;
    const changed = await askForSize(deps, snapshot, slug, deps.core().resumePreview(snapshot, size).size);
    if (!changed) return undefined;
    size = changed;
  }
}

async function askToResume(deps: CommandDeps, snapshot: Snapshot, slug: string, size: MachineSize | undefined): Promise<'resume' | 'changeSize' | undefined> {
  const preview = deps.core().resumePreview(snapshot, size);
  const machine = deps.core().machineName(slug);
  const lines = [
    preview.carried
      ? vscode.l10n.t('{0} will be created from the snapshot with: {1}.', machine, preview.carried)
      : vscode.l10n.t('{0} will be created from the snapshot.', machine),
  ];
  if (preview.notCarried.length > 0) lines.push('', vscode.l10n.t('Not carried over (set these again after resuming):'), ...preview.notCarried.map((lost) => `• ${lost}`));
  const resume = vscode.l10n.t('Resume');
  const changeSize = vscode.l10n.t('Change Size…');
  const question = vscode.l10n.t('Resume {0}?', slug);
  const options = { modal: true, detail: lines.join('\n') };
  // A setting that does not come back (an egress allow-list above all) is worth a warning.
  const choice = preview.notCarried.length > 0
    ? await vscode.window.showWarningMessage(question, options, resume, changeSize)
    : await vscode.window.showInformationMessage(question, options, resume, changeSize);
  return choice === resume ? 'resume' : choice === changeSize ? 'changeSize' : undefined;
}

/** One input box per field, with Back; resolves to the whole size, or undefined on Escape. */
async function askForSize(deps: CommandDeps, snapshot: Snapshot, slug: string, start: MachineSize): Promise<MachineSize | undefined> {
  const texts = SIZE_FIELDS.map((field) => (start[field] === undefined ? '' : String(start[field])));
  for (let step = 0; step < SIZE_FIELDS.length; ) {
    const field = SIZE_FIELDS[step];
    const answer = await askSizeField(deps, snapshot, field, texts[step], {
      title: vscode.l10n.t('Size of the resumed {0}', slug),
      step: step + 1,
      canGoBack: step > 0,
      recorded: deps.core().resumePreview(snapshot).size[field],
    });
    if (answer === undefined) return undefined;
    if (answer === BACK) {
      step--;
      continue;
    }
    texts[step++] = answer;
  }
  return Object.fromEntries(SIZE_FIELDS.map((field, i) => [field, parseSizeText(texts[i])]));
}

const BACK = Symbol('back');

interface FieldStep {
  title: string;
  step: number;
  canGoBack: boolean;
  recorded?: number;
}

function askSizeField(deps: CommandDeps, snapshot: Snapshot, field: SizeField, value: string, at: FieldStep): Promise<string | typeof BACK | undefined> {
  const input = vscode.window.createInputBox();
  input.title = at.title;
  input.step = at.step;
  input.totalSteps = SIZE_FIELDS.length;
  input.value = value;
  input.prompt = fieldPrompt(field, at.recorded);
  input.ignoreFocusOut = true;
  input.buttons = at.canGoBack ? [vscode.QuickInputButtons.Back] : [];
  const problem = (text: string) => deps.core().resumeSizeProblem(snapshot, field, text);
  input.validationMessage = problem(value);
  return new Promise((resolve) => {
    let answered = false;
    const finish = (answer: string | typeof BACK | undefined) => {
      answered = true;
      resolve(answer);
      input.hide();
    };
    const subscriptions = [
      input.onDidChangeValue((text) => (input.validationMessage = problem(text))),
      input.onDidAccept(() => problem(input.value) === undefined && finish(input.value)),
      input.onDidTriggerButton((button) => button === vscode.QuickInputButtons.Back && finish(BACK)),
      input.onDidHide(() => {
        if (!answered) resolve(undefined);
        for (const subscription of subscriptions) subscription.dispose();
        input.dispose();
      }),
    ];
    input.show();
  });
}

function fieldPrompt(field: SizeField, recorded: number | undefined): string {
  const limit = SIZE_LIMITS[field];
  const frozen = recorded === undefined ? '' : ` ${vscode.l10n.t('Frozen with {0}.', sizeAmount(field, recorded))}`;
  switch (field) {
    case 'cpus':
      return vscode.l10n.t('Virtual CPUs, {0} to {1}. Empty: the snapshot’s own.', limit.min, limit.max) + frozen;
    case 'memoryMib':
      return vscode.l10n.t('Memory in MiB, at least {0}; a ceiling, the host gives only what the bottle uses. Empty: the snapshot’s own.', limit.min) + frozen;
    case 'storageGb':
      return vscode.l10n.t('Storage disk in GiB, for the bottle’s data. Empty: smolvm’s default, {0} GiB.', limit.smolvmDefault) + frozen;
    case 'overlayGb':
      return vscode.l10n.t('Overlay disk in GiB, for changes to the root file system. Empty: smolvm’s default, {0} GiB.', limit.smolvmDefault) + frozen;
  }
}
