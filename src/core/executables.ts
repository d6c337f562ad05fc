/**
 * Finds the programs the extension drives. A path the user configured wins over PATH and must
 * work as given: a wrong setting is reported, never silently replaced by another binary.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { UserError } from './errors';
import type { Pusher } from './tools/push';

/** The tools that have a `botBottle.paths.<tool>` setting. */
export type ToolName = 'smolvm' | 'docker' | 'crane' | 'skopeo' | 'registry' | 'botBottle';

/** Names a tool goes by on PATH, in the order they are tried. */
const NAMES_ON_PATH: Readonly<Record<ToolName, readonly string[]>> = {
  smolvm: ['smolvm'],
  docker: ['docker'],
  crane: ['crane'],
  skopeo: ['skopeo'],
  // Upstream Distribution ships `registry`; Debian renames it `docker-registry`.
  registry: ['registry', 'docker-registry'],
  botBottle: ['bot-bottle'],
};

export function settingFor(tool: ToolName): string {
  return `botBottle.paths.${tool}`;
}

/**
 * The executable for `tool`: the configured path when there is one (it must exist and be
 * executable, else a UserError naming the setting), otherwise the first of its names found on
 * `searchPath`; undefined when it is on neither.
 */
export function findExecutable(tool: ToolName, configured?: string, searchPath = process.env.PATH ?? ''): string | undefined {
  const setting = configured?.trim();
  if (setting) return configuredExecutable(tool, setting, searchPath);
  return firstOnPath(NAMES_ON_PATH[tool], searchPath);
}

/** A helper program that has no setting of its own (zstd), on PATH, or undefined. */
export function findOnPath(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  return firstOnPath([name], searchPath);
}

/** Like findExecutable, but a missing tool is a UserError that says how to fix it. */
export function requireExecutable(tool: ToolName, configured?: string, searchPath = process.env.PATH ?? ''): string {
  const found = findExecutable(tool, configured, searchPath);
  if (found) return found;
  const names = NAMES_ON_PATH[tool].join(' or ');
  throw new UserError(`${names} was not found on PATH. Install it, or set ${settingFor(tool)} to its full path.`);
}

function configuredExecutable(tool: ToolName, setting: string, searchPath: string): string {
  const where = `${settingFor(tool)} is set to "${setting}"`;
  if (!setting.includes('/')) {
    const found = firstOnPath([setting], searchPath);
    if (!found) throw new UserError(`${where}, but no program of that name is on PATH.`);
    return found;
  }
  const path = expandHome(setting);
  if (!isAbsolute(path)) throw new UserError(`${where}: use an absolute path, or a program name found on PATH.`);
  const problem = executableProblem(path);
  if (problem) throw new UserError(`${where}, but that ${problem}.`);
  return path;
}

function firstOnPath(names: readonly string[], searchPath: string): string | undefined {
  const dirs = searchPath.split(delimiter).filter((dir) => isAbsolute(dir));
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      if (!executableProblem(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Why `path` cannot be run, or undefined when it can. */
function executableProblem(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return 'is not a file';
  } catch {
    return 'does not exist';
  }
  try {
    accessSync(path, constants.X_OK);
    return undefined;
  } catch {
    return 'is not executable';
  }
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** Takes resolved executables (see findExecutable); crane wins when both are there. */
export function choosePusher(found: { craneBin?: string; skopeoBin?: string }): Pusher {
  if (found.craneBin) return { tool: 'crane', bin: found.craneBin };
  if (found.skopeoBin) return { tool: 'skopeo', bin: found.skopeoBin };
  throw new UserError(
    `Pushing the image needs crane or skopeo, and neither was found. Install one of them, or set ${settingFor('crane')} or ${settingFor('skopeo')}.`,
  );
}
