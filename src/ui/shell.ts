/** A terminal running a login shell inside a bottle through `smolvm machine exec -i -t`. */
import * as vscode from 'vscode';
import type { Bottle } from '../core/bottles';
import type { SmolvmCli } from '../core/tools/smolvm';

/**
 * The guest's `sh` picks the configured shell when the VM has it, else /bin/sh. The shell's path
 * is passed as an argument, never spliced into the script.
 */
const PICK_SHELL = 'if [ -x "$1" ]; then exec "$1" -l; fi; echo "$1 is not in this bottle; using /bin/sh" >&2; exec /bin/sh -l';

export function openShell(smolvm: SmolvmCli, bottle: Bottle, shell: string): vscode.Terminal {
  const [bin, ...args] = smolvm.execArgv(bottle.machineName, ['sh', '-c', PICK_SHELL, 'sh', shell], { interactive: true, tty: true, env: { TERM: 'xterm-256color' } });
  const terminal = vscode.window.createTerminal({
    name: vscode.l10n.t('Bottle: {0}', bottle.slug),
    shellPath: bin,
    shellArgs: args,
    iconPath: new vscode.ThemeIcon('vm-running'),
    isTransient: true,
  });
  terminal.show();
  return terminal;
}
