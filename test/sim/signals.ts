/** Signals to the stand-in also end the guest commands it started (a group kill reaches them anyway). */
import { descendantsOf, killTree } from './guest';

const HANDLED: Array<[NodeJS.Signals, number]> = [
  ['SIGTERM', 15],
  ['SIGINT', 2],
  ['SIGHUP', 1],
];

export function passSignalsToChildren(): void {
  for (const [signal, number] of HANDLED) {
    process.on(signal, () => {
      for (const child of descendantsOf(process.pid)) killTree(child);
      process.exit(128 + number);
    });
  }
}

/** With a terminal attached, Ctrl-C belongs to the guest command, not to us. */
export function leaveInterruptsToGuest(): void {
  process.removeAllListeners('SIGINT');
  process.on('SIGINT', () => undefined);
}
