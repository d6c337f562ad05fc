/**
 * The core's services, built from plain settings: the process runner, the smolvm client, the state
 * store and the bottle catalog. The UI rebuilds them when settings change.
 */
import { BotBottleState, type BotBottleEntry } from './botBottleState';
import { discoverBottles, BottleCatalog, type Bottle } from './bottles';
import { recordChildrenIn } from './childRecord';
import { errorMessage, UserError } from './errors';
import type { Log } from './log';
import { validatePrefix } from './names';
import { createRunner, runTool, type Runner } from './run';
import type { CoreSettings } from './settings';
import { defaultStateRoot, StateStore } from './state';
import { elapsedSeconds } from './tools/ps';
import * as docker from './tools/docker';
import { SmolvmCli, type Machine } from './tools/smolvm';
import { findExecutable, requireExecutable, type ToolName } from './executables';

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
  /** bot-bottle's own state folders, under HOME as it was when the settings were read. */
  readonly botBottle: BotBottleState;
  readonly prefix: string;
  readonly catalog: BottleCatalog;
  private readonly reported = new Set<string>();
  /** Why docker bottles are not listed, as last logged; cleared once docker answers again. */
  private dockerProblem?: string;

  constructor(
    readonly settings: CoreSettings,
    readonly logs: CoreLogs,
  ) {
    this.run = createRunner(logs.tools);
    this.store = new StateStore(settings.stateDir || defaultStateRoot());
    this.botBottle = new BotBottleState();
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
      listBotBottles: () => this.readBotBottles(),
      listContainers: () => this.readContainers(),
    });
    await this.addUptimes(bottles.flatMap((b) => (b.machine ? [b.machine] : [])));
    return bottles;
  }

  /** What bot-bottle knows; each problem with its folders is logged once, not at every refresh. */
  private async readBotBottles(): Promise<BotBottleEntry[]> {
    const listing = await this.botBottle.list();
    for (const problem of [...listing.problems, ...listing.entries.flatMap((e) => e.problems)]) {
      if (this.reported.has(problem)) continue;
      this.reported.add(problem);
      this.logs.main.warn(problem);
    }
    return listing.entries;
  }

  /** bot-bottle's docker bottles. Without docker or its engine there are none, and the log says why once. */
  private async readContainers(): Promise<docker.DockerContainer[]> {
    try {
      const dockerBin = findExecutable('docker', this.settings.paths.docker);
      if (!dockerBin) return this.noContainers('docker is not on PATH, so no docker bottles are listed.');
      const containers = await runTool(this.run, docker.listContainers(dockerBin, this.prefix), { routine: true });
      this.dockerProblem = undefined;
      await this.addContainerUptimes(dockerBin, containers);
      return containers;
    } catch (error) {
      return this.noContainers(`No docker bottles are listed: ${errorMessage(error)}`);
    }
  }

  private noContainers(why: string): [] {
    if (this.dockerProblem !== why) this.logs.main.info(why);
    this.dockerProblem = why;
    return [];
  }

  /** Best effort, like the VMs' uptimes. */
  private async addContainerUptimes(dockerBin: string, containers: docker.DockerContainer[]): Promise<void> {
    const running = containers.filter((c) => c.state === 'running');
    if (running.length === 0) return;
    try {
      const started = await runTool(this.run, docker.startTimes(dockerBin, running.map((c) => c.id)), { routine: true });
      for (const container of running) {
        container.startedAt = started.get(container.id);
        if (container.startedAt) container.uptimeSeconds = Math.max(0, Math.floor((Date.now() - container.startedAt.getTime()) / 1000));
      }
    } catch (error) {
      this.logs.main.debug(`Could not read container uptimes: ${(error as Error).message}`);
    }
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
