/**
 * Names of everything a bottle owns, and the rules smolvm puts on them. Validation happens here,
 * before any tool runs, with a message that says what is allowed.
 */
import { UserError } from './errors';

export const DEFAULT_MACHINE_PREFIX = 'bot-bottle-';
export const MAX_MACHINE_NAME_LENGTH = 128;
/** Repository the ephemeral registry holds committed images under (the seed's name). */
export const COMMITTED_REPOSITORY = 'bot-bottle-committed';

const ALLOWED = 'letters, digits, "_" and "-", starting with a letter or digit, not ending in "-", without "--"';

/** Why smolvm would refuse this machine name, or undefined when it is fine. */
export function machineNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'Machine name is empty.';
  if (name.length > MAX_MACHINE_NAME_LENGTH)
    return `Machine name is ${name.length} characters long; smolvm allows at most ${MAX_MACHINE_NAME_LENGTH}.`;
  const bad = [...name].find((c) => !/[A-Za-z0-9_-]/.test(c));
  if (bad !== undefined) return `Machine name "${name}" contains ${describeChar(bad)}; smolvm allows only ${ALLOWED}.`;
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

/** Why this slug cannot name a bottle under the prefix, or undefined when it can. */
export function slugProblem(slug: string, prefix = DEFAULT_MACHINE_PREFIX): string | undefined {
  if (slug.length === 0) return 'Bottle name is empty.';
  const length = prefix.length + slug.length;
  if (length > MAX_MACHINE_NAME_LENGTH)
    return `Bottle name "${slug}" is too long: with the prefix "${prefix}" the machine name would be ${length} characters long, and smolvm allows at most ${MAX_MACHINE_NAME_LENGTH}. Use at most ${MAX_MACHINE_NAME_LENGTH - prefix.length} characters.`;
  const problem = machineNameProblem(prefix + slug);
  return problem && `Bottle name "${slug}" cannot be used: ${problem}`;
}

export function validateSlug(slug: string, prefix = DEFAULT_MACHINE_PREFIX): string {
  const problem = slugProblem(slug, prefix);
  if (problem) throw new UserError(problem);
  return slug;
}

export function validatePrefix(prefix: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(prefix) || prefix.includes('--'))
    throw new UserError(`Machine prefix "${prefix}" is not usable: use ${ALLOWED}.`);
  return prefix;
}

export function machineName(slug: string, prefix = DEFAULT_MACHINE_PREFIX): string {
  return prefix + validateSlug(slug, prefix);
}

/** The slug of a bottle machine, or undefined for machines that are not bottles. */
export function slugOf(name: string, prefix = DEFAULT_MACHINE_PREFIX): string | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const slug = name.slice(prefix.length);
  return slugProblem(slug, prefix) ? undefined : slug;
}

/**
 * The image a freeze builds. Docker repository names must be lower case, so the slug is folded;
 * two bottles whose slugs differ only by case share this tag (the per-bottle lock is by slug).
 */
export function committedImageRef(slug: string): string {
  return `bot-bottle-committed-${slug.toLowerCase()}:latest`;
}

/** The registry tag of a committed image: the first 16 hex digits of its id. */
export function committedTag(imageId: string): string {
  const hex = imageId.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{16,}$/.test(hex)) throw new UserError(`"${imageId}" is not an image id.`);
  return hex.slice(0, 16);
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
