/** Names of everything a bottle owns (machine, image, registry tag), checked before any tool runs, with a message that says what is allowed. */
import { UserError } from './errors';
import { ALLOWED_IN_MACHINE_NAMES, machineNameProblem, MAX_MACHINE_NAME_LENGTH } from './tools/smolvmRules';

export const DEFAULT_MACHINE_PREFIX = 'bot-bottle-';
/** Repository the ephemeral registry holds committed images under (the seed's name). */
export const COMMITTED_REPOSITORY = 'bot-bottle-committed';

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
    throw new UserError(`Machine prefix "${prefix}" is not usable: use ${ALLOWED_IN_MACHINE_NAMES}.`);
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

/**
 * The tag bot-bottle's docker commit gives a container's image, and its `resume` looks for: the
 * slug as it is (bot-bottle's own slugs are lower case; docker refuses any other, and says so).
 */
export function botBottleCommitTag(slug: string): string {
  return `${COMMITTED_REPOSITORY}-${slug}:latest`;
}

/** The registry tag of a committed image: the first 16 hex digits of its id. */
export function committedTag(imageId: string): string {
  const hex = imageId.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{16,}$/.test(hex)) throw new UserError(`"${imageId}" is not an image id.`);
  return hex.slice(0, 16);
}
