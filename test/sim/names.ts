import { SimError } from './errors';

const MAX_NAME_LENGTH = 128;

/** smolvm's machine-name rule: 1-128 of A-Z a-z 0-9 _ -, first a letter or digit, no trailing or double hyphen. */
export function nameProblem(name: string): string | undefined {
  const label = 'machine name';
  if (name.length === 0) return `${label} cannot be empty`;
  if (name.length > MAX_NAME_LENGTH) return `${label} too long: ${name.length} characters (max ${MAX_NAME_LENGTH})`;
  if (!/^[A-Za-z0-9]/.test(name)) return `${label} must start with a letter or digit (got: ${JSON.stringify(name)})`;
  if (name.endsWith('-')) return `${label} cannot end with a hyphen (got: ${JSON.stringify(name)})`;
  if (name.includes('--')) return `${label} cannot contain consecutive hyphens`;
  const bad = /[^A-Za-z0-9_-]/.exec(name);
  if (bad) return `${label} contains invalid character ${JSON.stringify(bad[0])} (allowed: letters, digits, '-' and '_')`;
  return undefined;
}

export function validateName(name: string): string {
  const problem = nameProblem(name);
  if (problem) throw new SimError(`invalid machine name: ${problem}`);
  return name;
}
