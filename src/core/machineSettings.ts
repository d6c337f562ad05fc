/**
 * The settings of a bottle's machine that a snapshot carries over to the machine a resume makes.
 * smolvm 1.9.3 reports network, size, disks, labels, restart policy and the number of mounts and
 * ports in `machine status --json` (src/cli/vm_common.rs:2469-2520); `pack create` records only
 * cpus and mem, and `network: false` (src/cli/pack.rs:482); `create --from` takes everything else
 * from its own flags (src/cli/machine.rs:3336-3445). The egress allow-list, env, init commands,
 * mount paths and port pairs are in no output smolvm prints, so no resume can give them back.
 */
import { UserError } from './errors';
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

/**
 * The size a resume gives the machine. A field left out is not passed: `create --from` then keeps
 * the pack's CPUs and memory (src/cli/machine.rs:3335-3345) and smolvm's default disk sizes.
 */
export interface MachineSize {
  cpus?: number;
  memoryMib?: number;
  storageGb?: number;
  overlayGb?: number;
}

export type SizeField = keyof MachineSize;

interface SizeLimit {
  min: number;
  max: number;
  /** What smolvm uses when the flag is not given (src/data/resources.rs:4,8,51,53). */
  smolvmDefault: number;
  /** What the number counts: CPUs, MiB or GiB. */
  unit: string;
  /** The field in the user's words. */
  label: string;
}

/**
 * smolvm 1.9.3's limits: `--cpus` is a u8 and `--mem` a u32 (src/cli/machine.rs:2952-2958); at
 * least 1 CPU and 64 MiB (src/data/resources.rs:74-75,85-106); above 16 vCPUs it only warns and
 * runs 16 (src/data/resources.rs:77-79,91-97), so more is refused here; a disk of 0 GiB is refused
 * (src/data/resources.rs:107-121), and `--storage`/`--overlay` are u64 (src/cli/machine.rs:2960-2966).
 */
export const SIZE_LIMITS: Readonly<Record<SizeField, SizeLimit>> = {
  cpus: { min: 1, max: 16, smolvmDefault: 4, unit: 'CPUs', label: 'CPU count' },
  memoryMib: { min: 64, max: 0xffffffff, smolvmDefault: 8192, unit: 'MiB', label: 'memory' },
  storageGb: { min: 1, max: Number.MAX_SAFE_INTEGER, smolvmDefault: 20, unit: 'GiB', label: 'storage disk' },
  overlayGb: { min: 1, max: Number.MAX_SAFE_INTEGER, smolvmDefault: 10, unit: 'GiB', label: 'overlay disk' },
};

/** The size the snapshot's machine had, as far as its record says. */
export function recordedSize(settings: MachineSettings | undefined): MachineSize {
  if (!settings) return {};
  return { cpus: settings.cpus, memoryMib: settings.memoryMib, storageGb: settings.storageGb, overlayGb: settings.overlayGb };
}

/** A field as typed: empty means "not given", anything else must be a whole number. */
export function parseSizeText(text: string): number | undefined {
  const trimmed = text.trim();
  return trimmed === '' ? undefined : /^\d+$/.test(trimmed) ? Number(trimmed) : NaN;
}

/**
 * Why `value` cannot be this field of a resumed machine, in the user's words, or undefined.
 * `create --from` reads CPUs or memory equal to smolvm's default as "not given" and keeps the
 * pack's (src/cli/machine.rs:3335-3345), and the pack holds the recorded size
 * (freeze passes it to `pack create`): asking for the default would silently not apply.
 */
export function sizeProblem(field: SizeField, value: number | undefined, settings: MachineSettings | undefined): string | undefined {
  if (value === undefined) return undefined;
  const limit = SIZE_LIMITS[field];
  if (!Number.isSafeInteger(value)) return 'Enter a whole number.';
  if (value < limit.min) return `smolvm needs at least ${sizeAmount(field, limit.min)}.`;
  if (value > limit.max) return `smolvm runs at most ${sizeAmount(field, limit.max)}.`;
  const packed = field === 'cpus' || field === 'memoryMib' ? recordedSize(settings)[field] : undefined;
  if (value === limit.smolvmDefault && packed !== undefined && packed !== limit.smolvmDefault)
    return `smolvm reads ${sizeAmount(field, value)} as “not given” and would keep the snapshot’s ${packed}: choose another number.`;
  return undefined;
}

/** e.g. "1 CPU", "2048 MiB". */
export function sizeAmount(field: SizeField, value: number): string {
  return field === 'cpus' ? plural(value, 'CPU') : `${value} ${SIZE_LIMITS[field].unit}`;
}

/** sizeProblem of a field as the user typed it. */
export function sizeTextProblem(field: SizeField, text: string, settings: MachineSettings | undefined): string | undefined {
  return sizeProblem(field, parseSizeText(text), settings);
}

/** Refuses a size with a field smolvm would refuse or ignore, before anything is created. */
export function checkSize(size: MachineSize, settings: MachineSettings | undefined): void {
  for (const field of Object.keys(SIZE_LIMITS) as SizeField[]) {
    const problem = sizeProblem(field, size[field], settings);
    if (problem) throw new UserError(`The ${SIZE_LIMITS[field].label} asked for the resumed machine (${size[field]}) cannot be used: ${problem} Nothing was created.`);
  }
}

/**
 * The `create --from` options that give the settings back; a size chosen at resume replaces the
 * recorded one as a whole (a field it leaves out is not passed).
 */
export function createOptionsFor(settings: MachineSettings | undefined, size?: MachineSize): Partial<CreateOptions> {
  const { cpus, memoryMib, storageGb, overlayGb } = size ?? recordedSize(settings);
  const sized = { cpus, memoryMib, storageGb, overlayGb };
  if (!settings) return size ? sized : {};
  return { network: settings.network, ...sized, labels: settings.labels };
}

/** What a resume cannot give back: the record's list, or the whole of the settings when there is no record. */
export function notCarriedBy(settings: MachineSettings | undefined): string[] {
  return settings ? settings.notCarried : [UNRECORDED_SETTINGS];
}

/** What the resume dialog says before anything is created. */
export interface ResumePreview {
  /** e.g. "network on, 2 CPUs, 2048 MiB memory"; empty when there is neither a record nor a chosen size. */
  carried: string;
  notCarried: string[];
  /** The size the machine would get: the chosen one, else the recorded one. */
  size: MachineSize;
}

export function previewResume(settings: MachineSettings | undefined, size?: MachineSize): ResumePreview {
  const chosen = size ?? recordedSize(settings);
  return { carried: settings ? describeCarried(settings, chosen) : describeSize(chosen), notCarried: notCarriedBy(settings), size: chosen };
}

/** For the log and the resume dialog: what a resume gives back, e.g. "network on, 2 CPUs, 2048 MiB memory". */
export function describeCarried(settings: MachineSettings, size = recordedSize(settings)): string {
  const parts = [`network ${settings.network ? 'on' : 'off'}`];
  const sized = describeSize(size);
  if (sized) parts.push(sized);
  const labels = Object.entries(settings.labels).map(([k, v]) => `${k}=${v}`);
  if (labels.length > 0) parts.push(`labels ${labels.join(', ')}`);
  return parts.join(', ');
}

/** e.g. "2 CPUs, 2048 MiB memory, 30 GiB storage"; the fields not given are left out. */
export function describeSize(size: MachineSize): string {
  const parts: string[] = [];
  if (size.cpus !== undefined) parts.push(plural(size.cpus, 'CPU'));
  if (size.memoryMib !== undefined) parts.push(`${size.memoryMib} MiB memory`);
  if (size.storageGb !== undefined) parts.push(`${size.storageGb} GiB storage`);
  if (size.overlayGb !== undefined) parts.push(`${size.overlayGb} GiB overlay`);
  return parts.join(', ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
