/** The command line of an interactive login shell inside a bottle, for a terminal to run. */
import type { SmolvmCli } from './tools/smolvm';

/**
 * The guest's `sh` picks the configured shell when the VM has it, else /bin/sh. The shell's path
 * is passed as an argument, never spliced into the script.
 */
const PICK_SHELL = 'if [ -x "$1" ]; then exec "$1" -l; fi; echo "$1 is not in this bottle; using /bin/sh" >&2; exec /bin/sh -l';

const TERM = 'xterm-256color';

export function shellArgv(smolvm: SmolvmCli, machine: string, shell: string): string[] {
  return smolvm.execArgv(machine, ['sh', '-c', PICK_SHELL, 'sh', shell], { interactive: true, tty: true, env: { TERM } });
}

/** The same shell in a container of bot-bottle's docker backend. */
export function containerShellArgv(dockerBin: string, container: string, shell: string): string[] {
  return [dockerBin, 'exec', '--interactive', '--tty', '--env', `TERM=${TERM}`, container, 'sh', '-c', PICK_SHELL, 'sh', shell];
}
