/**
 * One freeze in a process of its own, as the extension host would run it, so that its peak RSS
 * is its own. Prints one JSON line: the snapshot record's step timings, sizes and the peak RSS.
 * Usage: node --import tsx bench/freeze-once.ts '<json FreezeJob>'
 */
import { freezeBottle } from '../src/core/freeze/smolmachines';
import { MemoryLog } from '../test/support/memoryLog';
import { Services } from '../src/core/services';
import type { FreezeJob, FreezeResult } from './jobs';

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as FreezeJob;
  const log = new MemoryLog();
  const services = new Services(
    {
      paths: { smolvm: job.smolvm, docker: '', crane: '', skopeo: '', registry: '' },
      stateDir: job.stateDir,
      machinePrefix: 'bot-bottle-',
      pullHost: '127.0.0.1',
      imageBuilder: job.imageBuilder,
      compression: job.compression,
    },
    { main: log, tools: log },
  );
  const started = Date.now();
  const snapshot = await freezeBottle(services, job.slug, { signal: new AbortController().signal });
  const record = snapshot.record;
  if (!record) throw new Error('the freeze wrote no record');
  const result: FreezeResult = {
    wallMs: Date.now() - started,
    steps: record.steps.map((s) => ({ id: s.id, ms: s.ms })),
    archiveBytes: record.archiveBytes ?? 0,
    sidecarBytes: record.sidecarBytes,
    maxRssKib: process.resourceUsage().maxRSS,
    layers: record.layers?.map((l) => ({ role: l.role, size: l.size, digest: l.digest })),
    format: record.compression,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
