/** A terminal running a login shell inside a bottle (`smolvm machine exec -i -t`, argv from the core). */
import * as vscode from 'vscode';

export function openShell([bin, ...args]: readonly string[], slug: string): vscode.Terminal {
  const terminal = vscode.window.createTerminal({
    name: vscode.l10n.t('Bottle: {0}', slug),
    shellPath: bin,
    shellArgs: args,
    iconPath: new vscode.ThemeIcon('vm-running'),
    isTransient: true,
  });
  terminal.show();
  return terminal;
}
