/** Typed `setContext`: every context key the package.json `when` clauses read. */
import * as vscode from 'vscode';

export type ViewStatus = 'loading' | 'ready' | 'smolvmMissing' | 'error';

interface ContextKeys {
  'botBottle.status': ViewStatus;
  'botBottle.hasBottles': boolean;
  'botBottle.anyRunning': boolean;
}

export function setContext<K extends keyof ContextKeys>(key: K, value: ContextKeys[K]): Thenable<unknown> {
  return vscode.commands.executeCommand('setContext', key, value);
}
