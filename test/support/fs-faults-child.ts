/**
 * A process that installs a snapshot (argv[2], JSON: see FaultRun) while every call that changes a
 * file under `root` is counted; at call `at` it dies by SIGKILL, as a crash would ('crash'), or from
 * then on every rename under `root` fails with EIO ('fail-renames'). It patches node:fs itself, not
 * the code under test, so the same run works against any version of the state code.
 * Prints `OP <n> <call> <paths>` before each counted call, then `RESULT ok` or `RESULT error <message>`.
 */
import { constants } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createRequire, syncBuiltinESMExports } from 'node:module';

export interface FaultRun {
  mode: 'crash' | 'fail-renames' | 'count';
  at: number;
  root: string;
  action: { kind: 'replace'; record: unknown; staged: { sidecar: string; launcher: string } } | { kind: 'import'; source: string; slug: string };
}

const run = JSON.parse(process.argv[2]) as FaultRun;
const CHANGES = ['rename', 'rm', 'unlink', 'rmdir', 'mkdir', 'mkdtemp', 'writeFile', 'appendFile', 'copyFile', 'link', 'symlink', 'chmod', 'truncate'];
const WRITE_FLAGS = /[wa+]/;
const WRITE_BITS = constants.O_WRONLY | constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_TRUNC;

function opensForWriting(flags: unknown): boolean {
  return typeof flags === 'string' ? WRITE_FLAGS.test(flags) : typeof flags === 'number' && (flags & WRITE_BITS) !== 0;
}
let count = 0;
let failing = false;

/** Counts a call that changes something under the root; crashes or arms the failure at `at`. */
function before(call: string, args: unknown[]): void {
  const paths = args.filter((a): a is string => typeof a === 'string' && a.startsWith(run.root));
  if (paths.length === 0) return;
  if (call === 'open' && !opensForWriting(args[1])) return;
  count++;
  process.stdout.write(`OP ${count} ${call} ${paths.map((p) => p.slice(run.root.length)).join(' -> ')}\n`);
  if (count === run.at && run.mode === 'crash') process.kill(process.pid, 'SIGKILL');
  if (count === run.at && run.mode === 'fail-renames') failing = true;
  if (failing && call === 'rename') throw Object.assign(new Error(`EIO: i/o error (injected), rename '${paths[0]}'`), { code: 'EIO' });
}

const require = createRequire(import.meta.url);
const promises = require('node:fs/promises') as Record<string, unknown>;
const callbacks = require('node:fs') as Record<string, unknown>;
for (const call of [...CHANGES, 'open']) {
  const original = promises[call] as (...args: unknown[]) => Promise<unknown>;
  promises[call] = async (...args: unknown[]) => {
    before(call, args);
    return original(...args);
  };
  const originalCallback = callbacks[call] as (...args: unknown[]) => void;
  callbacks[call] = (...args: unknown[]) => {
    try {
      before(call, args);
    } catch (error) {
      const done = args.at(-1) as (error: unknown) => void;
      return process.nextTick(() => done(error));
    }
    return originalCallback(...args);
  };
}
syncBuiltinESMExports();

const { StateStore } = await import('../../src/core/state');
const { importSnapshot } = await import('../../src/core/snapshots');
const store = new StateStore(run.root);

/** As the freeze's keep step does, with its cleanup of the staging folder after it. */
async function replaceAsFreezeDoes(record: unknown, staged: { sidecar: string; launcher: string }): Promise<void> {
  try {
    await store.replaceSnapshot(record as never, staged);
  } finally {
    await rm(dirname(staged.sidecar), { recursive: true, force: true });
  }
}
try {
  if (run.action.kind === 'replace') await replaceAsFreezeDoes(run.action.record, run.action.staged);
  else await importSnapshot(store, run.action.source, run.action.slug, true);
  process.stdout.write('RESULT ok\n');
} catch (error) {
  process.stdout.write(`RESULT error ${(error as Error).message}\n`);
}
