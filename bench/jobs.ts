/** What the benchmark hands one freeze process, and what it gets back. */
import type { Compression, ImageBuilderChoice } from '../src/core/settings';

export interface FreezeJob {
  smolvm: string;
  stateDir: string;
  slug: string;
  imageBuilder: ImageBuilderChoice;
  compression: Compression;
}

export interface FreezeResult {
  /** The layers the snapshot keeps (native path): role and size, bottom first; the archive's format. */
  layers?: { role: string; size: number; digest: string }[];
  format?: string;
  /** freezeBottle from call to return, lock and record included. */
  wallMs: number;
  steps: { id: string; ms: number }[];
  archiveBytes: number;
  sidecarBytes: number;
  maxRssKib: number;
}

export interface BenchPath {
  label: string;
  imageBuilder: ImageBuilderChoice;
  compression: Compression;
}

export const BENCH_PATHS: readonly BenchPath[] = [
  { label: 'docker', imageBuilder: 'docker', compression: 'gzip' },
  { label: 'native', imageBuilder: 'native', compression: 'gzip' },
  { label: 'native+none', imageBuilder: 'native', compression: 'none' },
];
