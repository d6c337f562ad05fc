/**
 * The core's services, built from plain settings: the process runner, the smolvm client, the state
 * store and the bottle catalog. The UI rebuilds them when settings change.
 */
import { discoverBottles, BottleCatalog, type Bottle } from './bottles';
import { recordChildrenIn } from './childRecord';
import { UserError } from './errors';
import type { Compression, ImageBuilderChoice } from './freeze/context';
import type { Log } from './log';
import { validatePrefix } from './names';
import { createRunner, type Runner } from './run';
import { defaultStateRoot, StateStore } from './state';
import { runTool } from './tools/command';
import { elapsedSeconds } from './tools/ps';
import { SmolvmCli, type Machine } from './tools/smolvm';
import { requireExecutable, type ToolName } from './tools/which';

export interface CoreSettings {
  /** Configured tool paths; empty means "look on PATH". */
  paths: Record<ToolName, string>;
  stateDir: string;
  machinePrefix: string;
  /** The host a VM uses to reach a registry on this machine's loopback. */
  pullHost: string;
  /** How a freeze makes the image; default `auto` (native). */
  imageBuilder?: ImageBuilderChoice;
  /** The archive made in the VM; default `gzip`. */
  compression?: Compression;
}

export interface CoreLogs {
  /** What the extension did. */
  main: Log;
  /** Every child command line and its output. */
  tools: Log;
}

/** smolvm is neither configured nor on PATH (or the configured path is wrong). */
export class SmolvmMissingError extends UserError {
  override name = 'SmolvmMissingError';
}

export class Services {
  readonly run: Runner;
  readonly store: StateStore;
  readonly prefix: string;
  readonly catalog: BottleCatalog;

  constructor(
    readonly settings: CoreSettings,
    readonly logs: CoreLogs,
  ) {
    this.run = createRunner(logs.tools);
    this.store = new StateStore(settings.stateDir || defaultStateRoot());
    recordChildrenIn(this.store.root);
    this.prefix = validatePrefix(settings.machinePrefix);
    this.catalog = new BottleCatalog(() => this.discover());
  }

  /** The path of a tool, resolved now so that a tool installed meanwhile is found. */
  tool(name: ToolName): string {
    return requireExecutable(name, this.settings.paths[name]);
  }

  smolvm(): SmolvmCli {
    try {
      return new SmolvmCli(this.tool('smolvm'));
    } catch (error) {
      throw new SmolvmMissingError((error as Error).message);
    }
  }

  private async discover(): Promise<Bottle[]> {
    const smolvm = this.smolvm();
    const bottles = await discoverBottles({
      listMachines: () => runTool(this.run, smolvm.list(), { routine: true }),
      store: this.store,
      prefix: this.prefix,
    });
    await this.addUptimes(bottles.flatMap((b) => (b.machine ? [b.machine] : [])));
    return bottles;
  }

  /** Best effort: a VM whose process `ps` cannot see simply shows no uptime. */
  private async addUptimes(machines: Machine[]): Promise<void> {
    const running = machines.filter((m) => m.state === 'running' && m.pid);
    if (running.length === 0) return;
    try {
      const elapsed = await runTool(this.run, elapsedSeconds(running.map((m) => m.pid!)), { routine: true });
      for (const machine of running) machine.uptimeSeconds = elapsed.get(machine.pid!);
    } catch (error) {
      this.logs.main.debug(`Could not read VM uptimes: ${(error as Error).message}`);
    }
  }
}
