/**
 * A VS Code window contending for a bottle's lock, over many trials. Reads commands on stdin:
 * `go <stateRoot> <slug>` tries the lock once and prints `HELD` or `REFUSED <message>`; a holder
 * keeps the lock until `release`, then prints `RELEASED`. `READY` is printed once at start.
 */
import { createInterface } from 'node:readline';
import { StateStore, type BottleLock } from '../../src/core/state';

let held: BottleLock | undefined;
const say = (line: string) => process.stdout.write(`${line}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, root, slug] = line.split('\t');
  if (command === 'go') {
    new StateStore(root).lock(slug, 'freeze').then(
      (lock) => {
        held = lock;
        say('HELD');
      },
      (error: Error) => say(`REFUSED ${error.message}`),
    );
  } else if (command === 'release') {
    void held!.release().then(() => {
      held = undefined;
      say('RELEASED');
    });
  }
});
say('READY');
