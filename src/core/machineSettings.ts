/**
 * The settings of a bottle's machine that a snapshot carries over to the machine a resume makes.
 * smolvm 1.9.3 reports network, size, disks, labels, restart policy and the number of mounts and
 * ports in `machine status --json` (src/cli/vm_common.rs:2469-2520); `pack create` records only
 * cpus and mem, and `network: false` (src/cli/pack.rs:482); `create --from` takes everything else
 * from its own flags (src/cli/machine.rs:3336-3445). The egress allow-list, env, init commands,
 * mount paths and port pairs are in no output smolvm prints, so no resume can give them back.
 */
import type { CreateOptions, Machine } from './tools/smolvm';

export interface MachineSettings {
  network: boolean;
  cpus?: number;
  memoryMib?: number;
  storageGb?: number;
  overlayGb?: number;
  labels: Record<string, string>;
  /** What the machine had, or may have had, that a resume cannot give back; in the user's words. */
  notCarried: string[];
}

/** Said of a snapshot with no record of its machine (imported, or frozen by an older version). */
export const UNRECORDED_SETTINGS =
  'its machine settings (network, CPUs, memory, disk sizes, labels): the snapshot has no record of them, so smolvm’s defaults and the pack’s apply';

/** What `machine status --json` said about the machine at freeze time, and what it could not say. */
export function settingsOf(machine: Machine): MachineSettings {
  return {
    network: machine.network ?? false,
    cpus: machine.cpus,
    memoryMib: machine.memoryMib,
    storageGb: machine.storageGb,
    overlayGb: machine.overlayGb,
    labels: machine.labels ?? {},
    notCarried: notCarriedFrom(machine),
  };
}

function notCarriedFrom(machine: Machine): string[] {
  const lost: string[] = [];
  // --allow-cidr and --allow-host imply --net (src/cli/machine.rs:100): without network there is no list.
  if (machine.network)
    lost.push('its egress allow-list (--allow-cidr, --allow-host), if it had one: smolvm shows it in no output, so the resumed machine has network access without one');
  lost.push('environment variables set when it was created (-e): smolvm does not report them');
  lost.push('init commands (--init): smolvm does not report them');
  if (machine.mountCount) lost.push(`${plural(machine.mountCount, 'mount')} (-v): smolvm reports how many, not which`);
  if (machine.portCount) lost.push(`${plural(machine.portCount, 'port mapping')} (-p): smolvm reports how many, not which`);
  // A machine made with --from always restarts "never" (src/cli/machine.rs:3422); create has no --restart.
  if (machine.restartPolicy && machine.restartPolicy !== 'never') lost.push(`its restart policy "${machine.restartPolicy}": smolvm create cannot set one`);
  return lost;
}

/** The `create --from` options that give the settings back. */
export function createOptionsFor(settings: MachineSettings | undefined): Partial<CreateOptions> {
  if (!settings) return {};
  return {
    network: settings.network,
    cpus: settings.cpus,
    memoryMib: settings.memoryMib,
    storageGb: settings.storageGb,
    overlayGb: settings.overlayGb,
    labels: settings.labels,
  };
}

/** For the log: what a resume gives back, e.g. "network on, 2 CPUs, 2048 MiB memory". */
export function describeCarried(settings: MachineSettings): string {
  const parts = [`network ${settings.network ? 'on' : 'off'}`];
  if (settings.cpus !== undefined) parts.push(plural(settings.cpus, 'CPU'));
  if (settings.memoryMib !== undefined) parts.push(`${settings.memoryMib} MiB memory`);
  if (settings.storageGb !== undefined) parts.push(`${settings.storageGb} GiB storage`);
  if (settings.overlayGb !== undefined) parts.push(`${settings.overlayGb} GiB overlay`);
  const labels = Object.entries(settings.labels).map(([k, v]) => `${k}=${v}`);
  if (labels.length > 0) parts.push(`labels ${labels.join(', ')}`);
  return parts.join(', ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
