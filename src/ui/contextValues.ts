/**
 * The compound `contextValue`s of the Bottles view's rows, which package.json's menus match with
 * regexes: a kind first (`bottle`, `snapshot`), then `+flag`s in no promised order, e.g.
 * `bottle+running+frozen+busy` (a docker bottle: `bottle+docker+running`, or `+container` when stopped). The menus' regexes must not depend on that order (a unit test
 * tries every order), so a flag can be added without reordering the others.
 */
import { backendOf, isPinned, isRunning, type Bottle, type Snapshot } from '../core/facade';

export function bottleContextValue(bottle: Bottle, busy: boolean): string {
  const flags = ['bottle'];
  if (backendOf(bottle) === 'docker') flags.push('docker', isRunning(bottle) ? 'running' : 'container');
  else if (bottle.machine) flags.push(bottle.machine.state === 'running' ? 'running' : 'machine');
  if (bottle.snapshot) flags.push('frozen');
  if (busy) flags.push('busy');
  return flags.join('+');
}

/**
 * `snapshot` with `+recorded` (it can keep a name, a note and a pin), `+pinned`, and `+history` for
 * an older snapshot (the newest has none).
 */
export function snapshotContextValue(snapshot: Snapshot): string {
  const flags = ['snapshot'];
  if (snapshot.record) flags.push('recorded');
  if (isPinned(snapshot)) flags.push('pinned');
  if (snapshot.historyId !== undefined) flags.push('history');
  return flags.join('+');
}

/** What the palette and keybindings may offer, from the bottles listed (package.json's `when` and `enablement` read these). */
export function bottleContextKeys(bottles: readonly Bottle[]) {
  return {
    'botBottle.hasBottles': bottles.length > 0,
    'botBottle.anyRunning': bottles.some(isRunning),
    /** A machine or container that is not running: something to start. */
    'botBottle.anyStopped': bottles.some((b) => (b.machine || b.container) && !isRunning(b)),
    /** A machine or container at all: something to delete. */
    'botBottle.anyMachine': bottles.some((b) => b.machine || b.container),
    /** A snapshot: something to resume. */
    'botBottle.anyFrozen': bottles.some((b) => b.snapshot !== undefined),
  } satisfies Record<string, boolean>;
}

export type BottleContextKeys = ReturnType<typeof bottleContextKeys>;
