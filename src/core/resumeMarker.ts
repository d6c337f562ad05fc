/**
 * A resume names the machine it is creating in a file in the target bottle's folder from just
 * before `smolvm machine create --from` until the machine is ready (or deleted again). A marker
 * whose process is gone means the resume was killed half way: recovery deletes that machine.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from './fsutil';
import type { StateStore } from './state';

const MARKER_NAME = '.bot-bottle.resuming';

export interface ResumeMarker {
  machine: string;
  pid: number;
  host: string;
}

function markerPath(store: StateStore, slug: string): string {
  return join(store.bottleDir(slug), MARKER_NAME);
}

export async function markResuming(store: StateStore, slug: string, machine: string): Promise<void> {
  const marker: ResumeMarker = { machine, pid: process.pid, host: hostname() };
  await writeFile(markerPath(store, slug), JSON.stringify(marker));
}

export async function clearResuming(store: StateStore, slug: string): Promise<void> {
  await rm(markerPath(store, slug), { force: true });
}

/** The marker of a resume on this host whose process is gone, if the bottle has one. */
export async function abandonedResume(store: StateStore, slug: string): Promise<ResumeMarker | undefined> {
  let marker: ResumeMarker;
  try {
    marker = JSON.parse(await readFile(markerPath(store, slug), 'utf8')) as ResumeMarker;
  } catch {
    return undefined;
  }
  if (typeof marker.machine !== 'string' || marker.host !== hostname() || isProcessAlive(marker.pid)) return undefined;
  return marker;
}
