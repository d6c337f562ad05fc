/** How the outcome of an operation reaches the user: a message with the actions that help next. */
import * as vscode from 'vscode';
import { errorMessage, isCancelled, StepFailedError } from '../core/errors';
import type { Logs } from './logs';

/**
 * A failure names what failed and why (the tool's own words), with "Show Log", which opens the
 * log this wrote the failure to. A cancel says what it had already changed, or that nothing was.
 */
export function reportFailure(logs: Logs, what: string, error: unknown): void {
  if (isCancelled(error)) {
    logs.main.info(`${what}: ${errorMessage(error)}${error.aftermath ? ` ${error.aftermath}` : ''}`);
    const message = error.aftermath
      ? vscode.l10n.t('{0} was cancelled. {1}', what, error.aftermath)
      : vscode.l10n.t('{0} was cancelled. Nothing was changed.', what);
    void (error.aftermath ? vscode.window.showWarningMessage(message) : vscode.window.showInformationMessage(message));
    return;
  }
  logs.main.error(`${what} failed: ${errorMessage(error)}`);
  const message =
    error instanceof StepFailedError
      ? vscode.l10n.t('{0} failed at "{1}": {2}', what, error.stepTitle, errorMessage(error.cause))
      : vscode.l10n.t('{0} failed: {1}', what, errorMessage(error));
  const showLog = vscode.l10n.t('Show Log');
  void vscode.window.showErrorMessage(message, showLog).then((choice) => {
    if (choice === showLog) logs.showMain();
  });
}
