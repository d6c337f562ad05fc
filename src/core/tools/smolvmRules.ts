/**
 * The rules smolvm itself puts on machine names and on `machine cp` paths, checked before it runs,
 * and the shapes of what it prints: its progress lines and its own error line.
 */
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

const SIZE = String.raw`\d+(?:\.\d+)? (?:B|KB|MB|GB)`;
/**
 * The end of a `machine cp` progress line, after its label: `X / Y (P%, R/s)` with a known total,
 * else `X (R/s)` (src/cli/mod.rs:146-169). Groups: copied, total, rate.
 */
export const PROGRESS_TAIL = String.raw`: (${SIZE})(?: / (${SIZE}) \(\d+(?:\.\d+)?%, | \()(${SIZE}/s)\)`;
const PROGRESS_THEN_ERROR = new RegExp(PROGRESS_TAIL + '(Error: .*)$');

/**
 * smolvm's own `Error: ...` line, or undefined when its stderr does not end in one. `main` prints
 * it last and exits 1 (src/main.rs:211-216), so only the last line counts: an `Error:` line a
 * child tool printed earlier (a guest command's stderr, src/cli/vm_common.rs:192-209) is not
 * smolvm's. After `machine cp` progress there is no newline, so that line may hold `\r` redraws
 * and end in `...: 1.0 MB (5.0 MB/s)Error: ...` (src/cli/mod.rs:114-144).
 */
export function smolvmErrorLine(stderr: string): string | undefined {
  const last = stderr.trimEnd().split('\n').at(-1) ?? '';
  const shown = last.slice(last.lastIndexOf('\r') + 1).trim();
  const afterProgress = PROGRESS_THEN_ERROR.exec(shown);
  if (afterProgress) return afterProgress[4];
  return shown.startsWith('Error: ') ? shown : undefined;
}
