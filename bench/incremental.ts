/**
 * The incremental part of the freeze benchmark (`--changed MB`): per path, a first freeze of the
 * synthetic root, then a second after rewriting that many MB of it, their ratio, and the floor:
 * reading the first archive once (`sha256sum`), timed in the same run. It prints the issue's
 * targets and whether each was met; it never fails on speed.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatBytes } from '../src/core/format';
import type { BenchPath, FreezeResult } from './jobs';
import { allocatedBytes } from './measure';

const MB = 1024 * 1024;
/** The steps that make and describe the layer: archive in the VM, copy out, listing, describing. */
const LAYER_STEPS = ['list', 'archive', 'copy', 'image'];

export interface PairResult {
  path: BenchPath;
  first: FreezeResult;
  second: FreezeResult;
  /** sha256sum of the first freeze's archive (the floor), and that archive's size. */
  floorMs?: number;
  floorBytes?: number;
  storeBytes: number;
}

/** Rewrites about `mb` MB of the synthetic root's data files in place (same sizes, new bytes). */
export function rewriteData(dataDir: string, mb: number): number {
  let left = mb * MB;
  let rewritten = 0;
  for (const folder of readdirSync(dataDir).sort()) {
    for (const name of readdirSync(join(dataDir, folder)).sort()) {
      if (left <= 0) return rewritten;
      const file = join(dataDir, folder, name);
      const size = statSync(file).size;
      writeFileSync(file, randomBytes(size));
      left -= size;
      rewritten += size;
    }
  }
  return rewritten;
}

/** The floor: one read of the archive, by sha256sum, timed here. */
export function timeFloor(file: string): number {
  const started = process.hrtime.bigint();
  const result = spawnSync('sha256sum', [file], { stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`sha256sum ${file} failed`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

export async function storeBytes(stateRoot: string): Promise<number> {
  return allocatedBytes([join(stateRoot, '.layers')]);
}

const stepMs = (result: FreezeResult, ids: readonly string[]) => result.steps.filter((s) => ids.includes(s.id)).reduce((sum, s) => sum + s.ms, 0);

export function printIncremental(pairs: readonly PairResult[], changedMb: number): void {
  const rows: string[][] = [
    ['', ...pairs.map((p) => p.path.label)],
    ['first freeze', ...pairs.map((p) => seconds(p.first.wallMs))],
    [`second freeze (${changedMb} MB changed)`, ...pairs.map((p) => seconds(p.second.wallMs))],
    ['  ratio', ...pairs.map((p) => ratio(p.second.wallMs, p.first.wallMs))],
    ['layer steps (list+archive+copy+image), first', ...pairs.map((p) => seconds(stepMs(p.first, LAYER_STEPS)))],
    ['layer steps, second', ...pairs.map((p) => seconds(stepMs(p.second, LAYER_STEPS)))],
    ['  ratio', ...pairs.map((p) => ratio(stepMs(p.second, LAYER_STEPS), stepMs(p.first, LAYER_STEPS)))],
    ['pack, first / second', ...pairs.map((p) => `${seconds(stepMs(p.first, ['pack']))} / ${seconds(stepMs(p.second, ['pack']))}`)],
    ['floor: sha256sum of the first archive', ...pairs.map((p) => (p.floorMs === undefined ? '-' : `${seconds(p.floorMs)} (${formatBytes(p.floorBytes ?? 0)})`))],
    ['host-side work of the first (all but VM tar and pack)', ...pairs.map((p) => seconds(hostWork(p.first)))],
    ['  ÷ floor', ...pairs.map((p) => (p.floorMs ? ratio(hostWork(p.first), p.floorMs) : '-'))],
    ['layers kept after the second', ...pairs.map((p) => p.second.layers?.map((l) => `${l.role} ${formatBytes(l.size)}`).join(' + ') ?? '-')],
    ['layer store on disk', ...pairs.map((p) => formatBytes(p.storeBytes))],
    ['archive format', ...pairs.map((p) => p.second.format ?? '-')],
  ];
  printTable(rows);
  console.log('\ntargets (issue 14)');
  printTable([
    ['', ...pairs.map((p) => p.path.label)],
    ['second ≤ 0.2× first (whole freeze)', ...pairs.map((p) => verdict(p.second.wallMs / p.first.wallMs, 0.2))],
    ['second’s layer steps ≤ 0.05× first’s', ...pairs.map((p) => verdict(stepMs(p.second, LAYER_STEPS) / stepMs(p.first, LAYER_STEPS), 0.05))],
    ['host-side work ≤ 1.2× floor', ...pairs.map((p) => (p.floorMs ? verdict(hostWork(p.first) / p.floorMs, 1.2) : 'not measured'))],
    ['store ≤ 1.2× (full + deltas)', ...pairs.map((p) => storeVerdict(p))],
  ]);
}

/** Everything but the VM's tar and the pack: what this extension itself spends. */
function hostWork(result: FreezeResult): number {
  return result.wallMs - stepMs(result, ['archive', 'pack']);
}

function storeVerdict(p: PairResult): string {
  const layers = p.second.layers;
  if (!layers) return 'no store (docker)';
  const wanted = layers.reduce((sum, l) => sum + l.size, 0);
  return verdict(p.storeBytes / wanted, 1.2);
}

function verdict(value: number, target: number): string {
  return `${value.toFixed(2)}× ${value <= target ? 'met' : 'not met'}`;
}

export function printTable(rows: readonly string[][]): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  for (const row of rows) console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('   '));
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

export function ratio(value: number, base: number): string {
  return base > 0 ? `${(value / base).toFixed(2)}×` : '-';
}
