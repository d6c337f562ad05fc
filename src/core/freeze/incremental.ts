/**
 * The incremental part of the native path: list the root filesystem in the VM, and decide whether
 * this freeze archives everything or only what changed since the bottle's last snapshot. A delta
 * is made only when the last snapshot's listing can be trusted (this machine's, readable, its
 * layers all in the store) and the layers stay few and small; otherwise the freeze is full, and the
 * log says why.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { errorMessage, UserError } from '../errors';
import { makeOwnedTempDir } from '../fsutil';
import { CLEANUP_TIMEOUT_MS, type Step, type StepContext } from '../pipeline';
import { runTool } from '../run';
import { LISTING_NAME, type LayerRecord, type ListingRecord, type SnapshotRecord } from '../state';
import { VM_FILES_LIST, VM_LISTING, type FreezeState } from './context';
import { archiveExcludes } from './mounts';
import { diffListings, filesFromList, listingCommand, NO_GNU_FIND_EXIT, parseListing, serializeListing, type Delta, type Listing } from './delta';

type FreezeStep = Step<FreezeState>;

/** Squash to one full layer past this many deltas, or when the deltas outgrow this share of the full layer. */
export const MAX_DELTAS = 8;
export const MAX_DELTA_SHARE = 0.5;

export const listRootfs: FreezeStep = {
  id: 'list',
  title: 'Listing what changed',
  weight: 3,
  async run(ctx, s) {
    if (!s.incremental) {
      ctx.log.info('  full freeze: incremental freezes are off (botBottle.freeze.incremental)');
      return;
    }
    await ensureWorkDir(ctx, s);
    ctx.defer('remove the listing in the VM', () => removeInVm(s, [VM_LISTING, VM_FILES_LIST]));
    // Listed before the archive: whatever changes after this is newer than the listing, so the next freeze takes it.
    const listed = await runTool(s.run, s.tools.smolvm.exec(s.machine, listingCommand(VM_LISTING, '/', archiveExcludes(s)), { okExitCodes: [0, 1, NO_GNU_FIND_EXIT] }), { signal: ctx.signal });
    s.guestFind = listed.exitCode !== NO_GNU_FIND_EXIT;
    if (!s.guestFind) {
      ctx.log.info('  full freeze: the bottle has no GNU find, so what changed cannot be listed (every freeze of it is full)');
      return;
    }
    const hostListing = join(s.workDir!, 'listing');
    await runTool(s.run, s.tools.smolvm.cp({ machine: s.machine, path: VM_LISTING }, { host: hostListing }), { signal: ctx.signal });
    s.listing = parseListing(await readFile(hostListing));
    await rm(hostListing, { force: true });
    ctx.log.info(`  ${s.listing.entries.size} paths listed`);
    const plan = await planDelta(s, s.listing);
    if ('reason' in plan) {
      ctx.log.info(`  full freeze: ${plan.reason}`);
      return;
    }
    s.delta = plan;
    ctx.log.info(`  incremental freeze: ${describeDelta(plan.changes)} since the last snapshot, on its ${plan.below.length} layer(s)`);
    const list = join(s.workDir!, 'files');
    await writeFile(list, filesFromList(plan.changes.changed));
    await runTool(s.run, s.tools.smolvm.cp({ host: list }, { machine: s.machine, path: VM_FILES_LIST }), { signal: ctx.signal });
  },
};

type Plan = { changes: Delta; below: LayerRecord[] } | { reason: string };

export async function planDelta(s: FreezeState, current: Listing): Promise<Plan> {
  if (s.fullRequested) return { reason: 'a full freeze was asked for' };
  const record = (await s.store.readSnapshot(s.slug))?.record;
  if (!record) return { reason: 'this bottle has no snapshot with a record yet' };
  const trusted = await trustedListing(s, record);
  if ('reason' in trusted) return trusted;
  const layers = record.layers!;
  const deltas = layers.filter((l) => l.role === 'delta');
  if (deltas.length >= MAX_DELTAS) return { reason: `the last snapshot already has ${deltas.length} deltas (at most ${MAX_DELTAS}): squashing to one layer` };
  const deltaBytes = layers.slice(1).reduce((sum, l) => sum + l.size, 0);
  if (deltaBytes > layers[0].size * MAX_DELTA_SHARE) return { reason: `the deltas (${deltaBytes} bytes) outgrew half of the full layer (${layers[0].size} bytes): squashing to one layer` };
  return { changes: diffListings(trusted.listing, current), below: layers };
}

/** The last snapshot's listing, or why it cannot be trusted. */
async function trustedListing(s: FreezeState, record: SnapshotRecord): Promise<{ listing: Listing } | { reason: string }> {
  const kept = record.listing;
  if (!kept || !record.layers?.length || record.imageBuilder !== 'native')
    return { reason: 'the last snapshot has no listing of its files (frozen with docker, imported, from a bottle without GNU find, or by an older version)' };
  if (record.layers[0].role !== 'full') return { reason: 'the last snapshot’s bottom layer is not a full one' };
  if (kept.machine !== s.machine || !s.machineCreatedAt || kept.machineCreatedAt !== s.machineCreatedAt)
    return { reason: `the last snapshot was listed on another machine (${kept.machine} created ${kept.machineCreatedAt}; this one is ${s.machine} created ${s.machineCreatedAt ?? 'at an unknown time'}), whose inodes say nothing of this one` };
  for (const layer of record.layers)
    if (!(await s.layerStore.has(layer.digest, layer.size))) return { reason: `the last snapshot’s layer ${layer.digest} is missing from the layer store` };
  try {
    const bytes = await readFile(join(s.store.bottleDir(s.slug), kept.file));
    if (sha256(bytes) !== kept.sha256) return { reason: 'the last snapshot’s listing does not match its record (changed or damaged)' };
    return { listing: parseListing(gunzipSync(bytes)) };
  } catch (error) {
    return { reason: `the last snapshot’s listing cannot be read (${errorMessage(error)})` };
  }
}

/** Writes the listing into the staging folder beside the new sidecar, so that it is installed with it. */
export async function stageListing(s: FreezeState, staging: string): Promise<ListingRecord | undefined> {
  if (!s.listing || !s.machineCreatedAt) return undefined;
  const bytes = gzipSync(serializeListing(s.listing));
  await writeFile(join(staging, LISTING_NAME), bytes, { mode: 0o600, flag: 'wx' });
  return { file: LISTING_NAME, sha256: sha256(bytes), machine: s.machine, machineCreatedAt: s.machineCreatedAt, entries: s.listing.entries.size };
}

function describeDelta(delta: Delta): string {
  return `${delta.changed.length} path(s) to archive, ${delta.whiteouts.length} deleted or replaced, ${delta.opaque.length} folder(s) replaced`;
}

/** The host temp folder of this freeze, made once. */
export async function ensureWorkDir(ctx: StepContext, s: FreezeState): Promise<string> {
  if (s.workDir) return s.workDir;
  // Files are copied into it, and machine cp reads a host path with ":" as a machine.
  if (tmpdir().includes(':'))
    throw new UserError(`The temp folder ${tmpdir()} has ":" in its path, which smolvm machine cp would read as a machine name. Start VS Code with TMPDIR set to a folder without ":".`);
  const workDir = await makeOwnedTempDir('vm-commit');
  ctx.defer('remove the temp folder', () => rm(workDir, { recursive: true, force: true }));
  s.workDir = workDir;
  return workDir;
}

/** Runs after cancel too: no signal, but a time limit. */
async function removeInVm(s: FreezeState, paths: string[]): Promise<void> {
  await runTool(s.run, s.tools.smolvm.exec(s.machine, ['rm', '-f', ...paths]), { timeoutMs: CLEANUP_TIMEOUT_MS });
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
