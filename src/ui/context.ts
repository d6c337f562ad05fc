/** Typed `setContext`: every context key the package.json `when` clauses read, defined once here. */
import * as vscode from 'vscode';
import type { BottleContextKeys } from './contextValues';
import type { SortOrder } from './bottleRows';

export type ViewStatus = 'loading' | 'ready' | 'smolvmMissing' | 'error';

export interface ContextKeys extends BottleContextKeys {
  'botBottle.status': ViewStatus;
  /** How the Bottles view orders its rows: its title bar offers the other order. */
  'botBottle.sortBy': SortOrder;
}

export function setContext<K extends keyof ContextKeys>(key: K, value: ContextKeys[K]): Thenable<unknown> {
  return vscode.commands.executeCommand('setContext', key, value);
}
