/** Applies image layers in order to a staging root, with OCI whiteouts (`.wh.name`, `.wh..wh..opq`). */
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { agentError } from './errors';
import type { PulledLayer } from './registry-pull';

const OPAQUE = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';
const MAX_LISTING_BYTES = 512 * 1024 * 1024;

export function applyLayer(root: string, layer: PulledLayer): void {
  const entries = listEntries(layer);
  refuseEscapes(root, entries);
  applyWhiteouts(root, entries);
  const args = ['--extract', '--preserve-permissions', '--numeric-owner', `--exclude=${WHITEOUT_PREFIX}*`, `--file=${layer.file}`, `--directory=${root}`];
  const result = spawnSync('tar', layer.gzip ? ['--gzip', ...args] : args, { encoding: 'utf8' });
  if (result.status !== 0) throw agentError('unpack layer', `${layer.digest}: ${result.stderr.trim()}`);
}

function listEntries(layer: PulledLayer): string[] {
  const args = ['--list', `--file=${layer.file}`];
  const result = spawnSync('tar', layer.gzip ? ['--gzip', ...args] : args, { encoding: 'utf8', maxBuffer: MAX_LISTING_BYTES });
  if (result.status !== 0) throw agentError('unpack layer', `${layer.digest}: not a valid tar archive: ${result.stderr.trim()}`);
  return result.stdout
    .split('\n')
    .map((name) => name.replace(/^(\.\/|\/)+/, '').replace(/\/$/, ''))
    .filter((name) => name !== '' && name !== '.');
}

/** Refuses entries that would land outside the root: `..` parts or a symlinked parent pointing out. */
function refuseEscapes(root: string, entries: string[]): void {
  const checked = new Set<string>();
  for (const entry of entries) {
    if (entry.split('/').includes('..')) throw agentError('unpack layer', `refusing entry with '..': ${entry}`);
    let parent = dirname(entry);
    while (parent !== '.' && !checked.has(parent)) {
      checked.add(parent);
      const target = symlinkTarget(join(root, parent));
      if (target !== undefined && (target.startsWith('/') || target.split('/').includes('..'))) {
        throw agentError('unpack layer', `refusing entry ${entry}: its parent ${parent} is a symlink to ${target}`);
      }
      parent = dirname(parent);
    }
  }
}

function symlinkTarget(path: string): string | undefined {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : undefined;
  } catch {
    return undefined;
  }
}

/** Whiteouts delete what lower layers left, so they apply before this layer is extracted. */
function applyWhiteouts(root: string, entries: string[]): void {
  for (const entry of entries) {
    const name = basename(entry);
    if (!name.startsWith(WHITEOUT_PREFIX)) continue;
    const dir = join(root, dirname(entry));
    if (name === OPAQUE) {
      for (const child of safeReaddir(dir)) rmSync(join(dir, child), { recursive: true, force: true });
    } else {
      rmSync(join(dir, name.slice(WHITEOUT_PREFIX.length)), { recursive: true, force: true });
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
