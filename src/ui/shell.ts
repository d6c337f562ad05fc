/** Terminals running a command from the core: a login shell inside a bottle, or `bot-bottle resume`. */
import * as vscode from 'vscode';

export function openShell(argv: readonly string[], slug: string): vscode.Terminal {
  return openTerminal(argv, vscode.l10n.t('Bottle: {0}', slug), 'vm-running');
}

/** `bot-bottle resume <slug>` stays open after it ends: what it printed is the user's to read. */
export function openBotBottleTerminal(argv: readonly string[], slug: string): vscode.Terminal {
  return openTerminal(argv, vscode.l10n.t('bot-bottle: {0}', slug), 'debug-restart');
}

function openTerminal([bin, ...args]: readonly string[], name: string, icon: string): vscode.Terminal {
  const terminal = vscode.window.createTerminal({
    name,
    shellPath: bin,
    shellArgs: args,
    iconPath: new vscode.ThemeIcon(icon),
    isTransient: true,
  });
  terminal.show();
  return terminal;
}
