import { configError, vmNotFound } from './errors';

const MAX_NAME_LENGTH = 128;
const LABEL = 'machine name';

/** `validate_vm_name` (src/data/mod.rs:55-103): 1-128 of A-Z a-z 0-9 _ -, first a letter or digit, no trailing or double hyphen. */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return `${LABEL} cannot be empty`;
  if (Buffer.byteLength(name) > MAX_NAME_LENGTH) return `${LABEL} too long: ${Buffer.byteLength(name)} characters (max ${MAX_NAME_LENGTH})`;
  if (!/^[A-Za-z0-9]/.test(name)) return `${LABEL} must start with a letter or digit (got: ${JSON.stringify(name)})`;
  if (name.endsWith('-')) return `${LABEL} cannot end with a hyphen (got: ${JSON.stringify(name)})`;
  for (const [index, char] of [...name].entries()) {
    if (char === '-' && name[index - 1] === '-') return `${LABEL} cannot contain consecutive hyphens`;
    if (/[^A-Za-z0-9_-]/.test(char)) return char === '/' || char === '\\' ? `${LABEL} cannot contain path separators` : `${LABEL} contains invalid character: '${char}'`;
  }
  return undefined;
}

/** `create` checks the name first (src/cli/vm_common.rs:586-587). */
export function validateNewName(name: string): string {
  const problem = nameProblem(name);
  if (problem) throw configError('create machine', problem);
  return name;
}

/** Every other command looks the name up, so a name no machine can have is simply not found. */
export function validateName(name: string): string {
  if (nameProblem(name)) throw vmNotFound(name);
  return name;
}
