/** What the benchmark measures besides the record's timings: disk in use, and medians. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

const POLL_MS = 200;

/** Bytes allocated under `dirs` (files that vanish mid-walk count as gone). */
export async function allocatedBytes(dirs: readonly string[]): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else total += await lstat(path).then((info) => info.blocks * 512, () => 0);
    }
  };
  for (const dir of dirs) await walk(dir);
  return total;
}

/** Polls the disk in use under `dirs` until stopped; stop() gives the peak. */
export function watchPeakDisk(dirs: readonly string[]): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await allocatedBytes(dirs));
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return Math.max(peak, await allocatedBytes(dirs));
    },
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
