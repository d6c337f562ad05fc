/** The rules smolvm itself puts on machine names and on `machine cp` paths, checked before it runs. */
import { UserError } from '../errors';

export const MAX_MACHINE_NAME_LENGTH = 128;
export const ALLOWED_IN_MACHINE_NAMES = 'letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--"';

/** Why smolvm would refuse this machine name, or undefined when it is fine. */
export function machineNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'Machine name is empty.';
  if (name.length > MAX_MACHINE_NAME_LENGTH)
    return `Machine name is ${name.length} characters long; smolvm allows at most ${MAX_MACHINE_NAME_LENGTH}.`;
  const bad = [...name].find((c) => !/[A-Za-z0-9_-]/.test(c));
  if (bad !== undefined) return `Machine name "${name}" contains ${describeChar(bad)}; smolvm allows only ${ALLOWED_IN_MACHINE_NAMES}.`;
  if (!/^[A-Za-z0-9]/.test(name)) return `Machine name "${name}" must start with a letter or digit.`;
  if (name.endsWith('-')) return `Machine name "${name}" must not end in "-".`;
  if (name.includes('--')) return `Machine name "${name}" must not contain "--".`;
  return undefined;
}

export function validateMachineName(name: string): string {
  const problem = machineNameProblem(name);
  if (problem) throw new UserError(problem);
  return name;
}

/** `smolvm machine cp` reads the side with ":" as the machine side, so host paths must not have one. */
export function hostPathForCopy(path: string): string {
  if (path.includes(':'))
    throw new UserError(`The path "${path}" contains ":", which smolvm machine cp would read as a machine name. Choose a folder without ":".`);
  return path;
}

function describeChar(c: string): string {
  if (c === ' ') return 'a space';
  const code = c.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f) return `a control character (U+${code.toString(16).padStart(4, '0').toUpperCase()})`;
  return `"${c}"`;
}
