/**
 * bot-bottle's own state folders, `~/.bot-bottle/state/<slug>/` (only HOME moves them): what
 * bot-bottle knows of a bottle (`metadata.json`), the snapshot its commit left (`committed-image`),
 * and leaving a snapshot of ours there the way its commit would, so that `bot-bottle resume <slug>`
 * boots it. This is the one module that reads or writes those folders. Everything read there is
 * bot-bottle's (or anyone's) to get wrong: a bad file is a problem to report, never a crash.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, link, lstat, mkdir, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { describeFsError, UserError } from './errors';
import { writeFileAtomic } from './fsutil';
import { slugProblem } from './names';
import { LAUNCHER_NAME, SIDECAR_NAME, type Snapshot } from './state';
import { SMOLMACHINE_SUFFIX } from './tools/smolvm';

export const METADATA_NAME = 'metadata.json';
export const COMMITTED_IMAGE_NAME = 'committed-image';
export const PRESERVE_NAME = '.preserve';
/** bot-bottle's metadata is a handful of short strings; anything this big is not its file. */
export const METADATA_MAX_BYTES = 64 * 1024;
/** One line naming a path or an image tag. */
const COMMITTED_IMAGE_MAX_BYTES = 4096;
const PRIVATE_DIR_MODE = 0o700;
const PRIVATE_FILE_MODE = 0o600;
/** The launcher smolvm writes is a program. */
const LAUNCHER_MODE = 0o700;

export type BotBottleBackend = 'docker' | 'smolmachines';

/** What bot-bottle's metadata.json says, each key only when it has the type bot-bottle writes. */
export interface BotBottleMetadata {
  backend?: BotBottleBackend;
  agentName?: string;
  label?: string;
  color?: string;
  cwd?: string;
  copyCwd?: boolean;
  startedAt?: Date;
  composeProject?: string;
  bottleNames?: string[];
}

export interface BotBottleEntry {
  slug: string;
  dir: string;
  metadata: BotBottleMetadata;
  /** The docker tag bot-bottle's docker commit left, when `committed-image` names one. */
  committedTag?: string;
  /** The `.smolmachine` bot-bottle's commit left, when `committed-image` names one that can be used. */
  committed?: Snapshot;
  /** Why something there was not used, one sentence each. */
  problems: string[];
}

export interface BotBottleListing {
  entries: BotBottleEntry[];
  /** Folders that are not bottles bot-bottle could have made, or cannot be read. */
  problems: string[];
}

/** `~/.bot-bottle/state`, from HOME as it is now. */
export function botBottleStateRoot(home = homedir()): string {
  return join(home, '.bot-bottle', 'state');
}

/** bot-bottle lower-cases a slug and collapses every run of other characters into one hyphen. */
const BOT_BOTTLE_SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Why bot-bottle would never name a bottle `slug`, or undefined when it could. */
export function botBottleSlugProblem(slug: string): string | undefined {
  if (!BOT_BOTTLE_SLUG.test(slug))
    return `"${slug}" is not a name bot-bottle gives a bottle: its names are lower-case letters and digits, in groups joined by single hyphens.`;
  return slugProblem(slug);
}

/** The keys bot-bottle writes, with their types; any other key or type is passed over. */
export function parseMetadata(value: Record<string, unknown>): BotBottleMetadata {
  const text = (key: string) => (typeof value[key] === 'string' ? (value[key] as string) : undefined);
  const metadata: BotBottleMetadata = {};
  const backend = value.backend;
  if (backend === 'smolmachines') metadata.backend = 'smolmachines';
  else if (backend === 'docker' || backend === '') metadata.backend = 'docker';
  metadata.agentName = text('agent_name');
  metadata.label = text('label');
  metadata.color = text('color');
  metadata.cwd = text('cwd');
  metadata.composeProject = text('compose_project');
  if (typeof value.copy_cwd === 'boolean') metadata.copyCwd = value.copy_cwd;
  const started = text('started_at');
  if (started && !Number.isNaN(Date.parse(started))) metadata.startedAt = new Date(started);
  if (Array.isArray(value.bottle_names)) metadata.bottleNames = value.bottle_names.filter((n): n is string => typeof n === 'string');
  for (const key of Object.keys(metadata) as (keyof BotBottleMetadata)[]) if (metadata[key] === undefined) delete metadata[key];
  return metadata;
}

export class BotBottleState {
  constructor(readonly root: string = botBottleStateRoot()) {}

  bottleDir(slug: string): string {
    return join(this.root, slug);
  }

  /** Every bottle bot-bottle keeps a folder for; none at all when it has never run here. */
  async list(): Promise<BotBottleListing> {
    let names: string[];
    try {
      names = (await readdir(this.root)).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], problems: [] };
      return { entries: [], problems: [`bot-bottle's state folder ${this.root} cannot be read: ${describeFsError(error)}.`] };
    }
    const listing: BotBottleListing = { entries: [], problems: [] };
    for (const name of names) {
      const slugIssue = botBottleSlugProblem(name);
      if (slugIssue) {
        listing.problems.push(`${join(this.root, name)} is passed over: ${slugIssue}`);
        continue;
      }
      const entry = await this.read(name).catch((error: unknown) => {
        listing.problems.push((error as Error).message);
        return undefined;
      });
      if (entry) listing.entries.push(entry);
    }
    return listing;
  }

  /** What bot-bottle knows of one bottle; throws a UserError when its folder cannot be bot-bottle's. */
  async read(slug: string): Promise<BotBottleEntry | undefined> {
    const dir = await this.checkedDir(slug);
    if (!dir) return undefined;
    const entry: BotBottleEntry = { slug, dir: this.bottleDir(slug), metadata: {}, problems: [] };
    const problem = (message: string) => void entry.problems.push(message);
    entry.metadata = await this.readMetadata(slug, problem);
    const committed = await readSmallFile(join(this.bottleDir(slug), COMMITTED_IMAGE_NAME), COMMITTED_IMAGE_MAX_BYTES, problem);
    const named = committed?.trim();
    if (named && isAbsolute(named)) entry.committed = await this.committedSnapshot(slug, dir, named, problem);
    else if (named) entry.committedTag = named;
    return entry;
  }

  /**
   * Leaves the snapshot where bot-bottle's commit leaves one, in its order: the launcher and the
   * sidecar (hard links when on one file system, else copies), then `committed-image` naming the
   * sidecar, then `.preserve`. Each is written atomically; nothing else in the folder is touched.
   * Resolves to the path `committed-image` names.
   */
  async leaveSnapshot(snapshot: Snapshot): Promise<string> {
    const slugIssue = botBottleSlugProblem(snapshot.slug);
    if (slugIssue) throw new UserError(slugIssue);
    const dir = (await this.checkedDir(snapshot.slug)) ?? (await this.createDir(snapshot.slug));
    const target = join(this.bottleDir(snapshot.slug), SIDECAR_NAME);
    if (target.includes('\n')) throw new UserError(`${target} has a line break in its path, so committed-image cannot name it.`);
    if (await isFile(snapshot.launcher)) await placeFile(snapshot.launcher, join(dir, LAUNCHER_NAME), LAUNCHER_MODE);
    await placeFile(snapshot.sidecar, join(dir, SIDECAR_NAME), PRIVATE_FILE_MODE);
    await writePrivateAtomic(join(dir, COMMITTED_IMAGE_NAME), target);
    await writePrivateAtomic(join(dir, PRESERVE_NAME), '');
    return target;
  }

  /**
   * Leaves a committed docker image where bot-bottle's docker commit leaves one: `committed-image`
   * naming its tag, then `.preserve`, each written atomically; nothing else in the folder is touched.
   */
  async leaveCommittedTag(slug: string, tag: string): Promise<void> {
    const slugIssue = botBottleSlugProblem(slug);
    if (slugIssue) throw new UserError(slugIssue);
    if (/[\s]/.test(tag) || isAbsolute(tag)) throw new UserError(`"${tag}" is not an image tag committed-image can name.`);
    const dir = (await this.checkedDir(slug)) ?? (await this.createDir(slug));
    await writePrivateAtomic(join(dir, COMMITTED_IMAGE_NAME), tag);
    await writePrivateAtomic(join(dir, PRESERVE_NAME), '');
  }

  /**
   * The bottle's folder as a real path, or undefined when there is none. A file in its place, or a
   * symbolic link leading out of `~/.bot-bottle`, is refused: bot-bottle would not have made it.
   */
  private async checkedDir(slug: string): Promise<string | undefined> {
    const dir = this.bottleDir(slug);
    let info;
    try {
      info = await lstat(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new UserError(`bot-bottle's folder for "${slug}", ${dir}, cannot be read: ${describeFsError(error)}.`);
    }
    const real = await realpath(dir).catch(() => dir);
    if (info.isSymbolicLink()) {
      const home = dirname(this.root);
      const realHome = await realpath(home).catch(() => home);
      if (!isInside(real, realHome)) throw new UserError(`bot-bottle's folder for "${slug}", ${dir}, is a symbolic link to ${real}, outside ${home}; it is not used.`);
      info = await stat(real).catch(() => undefined);
    }
    if (!info?.isDirectory()) throw new UserError(`bot-bottle's folder for "${slug}", ${dir}, is not a folder; it is not used.`);
    return real;
  }

  private async createDir(slug: string): Promise<string> {
    const dir = this.bottleDir(slug);
    try {
      await mkdir(this.root, { recursive: true, mode: PRIVATE_DIR_MODE });
      await mkdir(dir, { mode: PRIVATE_DIR_MODE });
    } catch (error) {
      throw new UserError(`Cannot create bot-bottle's folder ${dir}: ${describeFsError(error)}.`);
    }
    return dir;
  }

  private async readMetadata(slug: string, problem: (message: string) => void): Promise<BotBottleMetadata> {
    const path = join(this.bottleDir(slug), METADATA_NAME);
    const text = await readSmallFile(path, METADATA_MAX_BYTES, problem);
    if (text === undefined) return {};
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      problem(`${path} is not JSON; what it says is not shown.`);
      return {};
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problem(`${path} holds ${jsonKind(value)}, not an object; what it says is not shown.`);
      return {};
    }
    return parseMetadata(value as Record<string, unknown>);
  }

  /** The `.smolmachine` that committed-image names, when it is a file inside the bottle's folder. */
  private async committedSnapshot(slug: string, dir: string, named: string, problem: (message: string) => void): Promise<Snapshot | undefined> {
    const file = join(this.bottleDir(slug), COMMITTED_IMAGE_NAME);
    const outside = `${file} names ${named}, which is outside ${this.bottleDir(slug)}; bot-bottle's commit never writes there, so it is not offered for resume.`;
    if (!isInside(resolve(named), this.bottleDir(slug)) && !isInside(resolve(named), dir)) return void problem(outside);
    let real: string;
    try {
      real = await realpath(named);
    } catch {
      return void problem(`${file} names ${named}, which does not exist.`);
    }
    if (!isInside(real, dir)) return void problem(outside);
    const info = await stat(real);
    if (!info.isFile()) return void problem(`${file} names ${named}, which is not a file.`);
    const launcher = named.endsWith(SMOLMACHINE_SUFFIX) ? named.slice(0, -SMOLMACHINE_SUFFIX.length) : named;
    return { slug, sidecar: named, launcher, sizeBytes: info.size, createdAt: info.mtime };
  }
}

/** A small file's text; undefined (with the reason, unless it is simply absent) when it cannot be used. */
async function readSmallFile(path: string, maxBytes: number, problem: (message: string) => void): Promise<string | undefined> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') problem(`${path} cannot be read: ${describeFsError(error)}.`);
    return undefined;
  }
  try {
    const info = await file.stat();
    if (!info.isFile()) return void problem(`${path} is not a file; it is not read.`);
    if (info.size > maxBytes) return void problem(`${path} is ${info.size} bytes, more than the ${maxBytes} bot-bottle would write; it is not read.`);
    const buffer = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    if (bytesRead > maxBytes) return void problem(`${path} is more than the ${maxBytes} bytes bot-bottle would write; it is not read.`);
    return buffer.subarray(0, bytesRead).toString('utf8');
  } catch (error) {
    problem(`${path} cannot be read: ${describeFsError(error)}.`);
    return undefined;
  } finally {
    await file.close();
  }
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return `a ${typeof value}`;
}

function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((info) => info.isFile(), () => false);
}

function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
}

/** A hard link to `source` at `target` when both are on one file system, else a copy; atomic either way. */
async function placeFile(source: string, target: string, mode: number): Promise<void> {
  const temp = tempBeside(target);
  try {
    await link(source, temp).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EXDEV' && error.code !== 'EPERM') throw error;
      await copyFile(source, temp);
    });
    await chmod(temp, mode);
    await rename(temp, target);
  } catch (error) {
    throw new UserError(`Cannot write ${target}: ${describeFsError(error)}.`);
  } finally {
    // rename() between two links to one file succeeds and leaves both: the second freeze of one snapshot.
    await rm(temp, { force: true });
  }
}

async function writePrivateAtomic(path: string, content: string): Promise<void> {
  await writeFileAtomic(path, content, PRIVATE_FILE_MODE).catch((error: unknown) => {
    throw new UserError(`Cannot write ${path}: ${describeFsError(error)}.`);
  });
}
