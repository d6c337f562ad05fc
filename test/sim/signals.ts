/** Signals to the stand-in also end the guest commands it started (a group kill reaches them anyway). */
import { rmSync } from 'node:fs';
import { descendantsOf, killTree } from './guest';

const HANDLED: Array<[NodeJS.Signals, number]> = [
  ['SIGTERM', 15],
  ['SIGINT', 2],
  ['SIGHUP', 1],
];

const scratchPaths = new Set<string>();

export function passSignalsToChildren(): void {
  for (const [signal, number] of HANDLED) {
    process.on(signal, () => {
      for (const child of descendantsOf(process.pid)) killTree(child);
      for (const path of scratchPaths) rmSync(path, { recursive: true, force: true });
      process.exit(128 + number);
    });
  }
}

/** Our own scratch folders (pack staging) also go when a signal ends us; returns the unregister. */
export function removeOnSignal(path: string): () => void {
  scratchPaths.add(path);
  return () => scratchPaths.delete(path);
}

/** A reader that went away (`smolvm ... | head`) ends us quietly, as it would a Rust CLI. */
export function exitQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 1);
      throw error;
    });
  }
}

/** With a terminal attached, Ctrl-C belongs to the guest command, not to us. */
export function leaveInterruptsToGuest(): void {
  process.removeAllListeners('SIGINT');
  process.on('SIGINT', () => undefined);
}
