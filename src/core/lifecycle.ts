/**
 * A bottle's life: start, stop, restart and delete its machine (smolvm) or container (bot-bottle's
 * docker backend). Each takes the bottle's lock, so that none of them runs during a freeze or a
 * resume of the same bottle, in this window or another. Deleting removes the machine only: the
 * bottle's snapshots stay in its state folder.
 */
import { backendOf, type Bottle } from './bottles';
import { UserError } from './errors';
import { runTool, type ToolCommand } from './run';
import type { Services } from './services';
import * as docker from './tools/docker';

export const LIFECYCLE_ACTIONS = ['start', 'stop', 'restart', 'delete'] as const;
export type LifecycleAction = (typeof LIFECYCLE_ACTIONS)[number];

/** The tool calls of one action, in order; smolvm has no restart, so a restart is a stop then a start. */
export function lifecycleCommands(services: Services, bottle: Bottle, action: LifecycleAction): ToolCommand<void>[] {
  const name = bottle.machineName;
  if (backendOf(bottle) === 'docker') {
    const bin = services.tool('docker');
    switch (action) {
      case 'start':
        return [docker.startContainer(bin, name)];
      case 'stop':
        return [docker.stopContainer(bin, name)];
      case 'restart':
        return [docker.restartContainer(bin, name)];
      case 'delete':
        return [docker.stopContainer(bin, name), docker.removeContainer(bin, name)];
    }
  }
  const smolvm = services.smolvm();
  switch (action) {
    case 'start':
      return [smolvm.start(name)];
    case 'stop':
      return [smolvm.stop(name)];
    case 'restart':
      return [smolvm.stop(name), smolvm.start(name)];
    case 'delete':
      // smolvm stops a running machine itself before it deletes it (src/cli/machine.rs:3996-4000).
      return [smolvm.delete(name)];
  }
}

export async function changeBottle(services: Services, bottle: Bottle, action: LifecycleAction, signal?: AbortSignal): Promise<void> {
  if (!bottle.machine && !bottle.container) throw new UserError(`Bottle ${bottle.slug} has no machine to ${action}: it exists only as a snapshot.`);
  const commands = lifecycleCommands(services, bottle, action);
  await services.store.withLock(bottle.slug, action, async () => {
    services.logs.main.info(`${DOING[action]} ${bottle.machineName}`);
    for (const command of commands) await runTool(services.run, command, { signal });
  });
}

const DOING: Record<LifecycleAction, string> = { start: 'Starting', stop: 'Stopping', restart: 'Restarting', delete: 'Deleting' };
