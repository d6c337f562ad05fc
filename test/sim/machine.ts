/** `smolvm machine ls | status | create | start | stop | delete | data-dir`. */
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import { flag, parseArgs, unsignedValue, usage, value, values, type CommandSpec, type ParsedArgs } from './args';
import { configError, SimError } from './errors';
import { runInitCommands } from './exec';
import { faultPoint, imageUserFault, remapUidFault } from './faults';
import { requireRoot } from './guest';
import { allowCidrs, resolveEgress, type Egress } from './egress';
import { validateName } from './names';
import { out, readStdinLine } from './output';
import { createBaseRootfs } from './rootfs';
import { extractSidecar, readSidecar, remapOwnership, type PackManifest } from './smolmachine';
import { stopGuestSessions } from './sessions';
import {
  appendConsole, consoleLogPath, discardMachineDir, effectiveState, listRecords, machineDir, publicView, readRecord,
  requireRecord, reserveMachineDir, rootfsDir, withMachineLock, writeRecord, type MachineRecord, type MountSpec,
} from './state';
export const DEFAULT_CPUS = 4;
export const DEFAULT_MEMORY_MIB = 8192;

const NAME_OPTION = { long: 'name', short: 'n', value: 'NAME' };

const LS_SPEC: CommandSpec = {
  usage: 'smolvm machine ls [OPTIONS]',
  about: 'List all machines',
  options: [{ long: 'verbose', short: 'v' }, { long: 'json' }],
};

const STATUS_SPEC: CommandSpec = {
  usage: 'smolvm machine status [OPTIONS]',
  about: 'Show machine status',
  options: [NAME_OPTION, { long: 'json' }],
};

const START_SPEC: CommandSpec = { usage: 'smolvm machine start [OPTIONS]', about: 'Start a machine', options: [NAME_OPTION] };
const STOP_SPEC: CommandSpec = { usage: 'smolvm machine stop [OPTIONS]', about: 'Stop a running machine', options: [NAME_OPTION] };

const DELETE_SPEC: CommandSpec = {
  usage: 'smolvm machine delete [OPTIONS] --name <NAME>',
  about: 'Delete a machine configuration',
  options: [NAME_OPTION, { long: 'force', short: 'f' }, { long: 'cascade' }],
  required: ['name'],
};

const DATA_DIR_SPEC: CommandSpec = {
  usage: 'smolvm machine data-dir --name <NAME>',
  about: 'Print the on-disk data directory path for a named machine',
  options: [NAME_OPTION],
  required: ['name'],
};

const CREATE_SPEC: CommandSpec = {
  usage: 'smolvm machine create [OPTIONS] [-- <COMMAND>...]',
  about: 'Create a new named machine configuration',
  options: [
    NAME_OPTION,
    { long: 'image', short: 'I', value: 'IMAGE' },
    { long: 'from', value: 'PATH' },
    { long: 'cpus', value: 'N' },
    { long: 'mem', value: 'MiB' },
    { long: 'storage', value: 'GiB' },
    { long: 'overlay', value: 'GiB' },
    { long: 'volume', short: 'v', value: 'HOST:GUEST[:ro]', multiple: true },
    { long: 'port', short: 'p', value: 'HOST:GUEST', multiple: true },
    { long: 'net' },
    { long: 'allow-cidr', value: 'CIDR', multiple: true },
    { long: 'allow-host', value: 'HOSTNAME', multiple: true },
    { long: 'outbound-localhost-only' },
    { long: 'env', short: 'e', value: 'KEY=VALUE', multiple: true },
    { long: 'workdir', short: 'w', value: 'DIR' },
    { long: 'init', value: 'COMMAND', multiple: true },
    { long: 'label', value: 'KEY=VALUE', multiple: true },
    { long: 'ssh-agent' },
  ],
  trailing: 'last',
  conflicts: [['from', 'image']],
};

export async function lsCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(LS_SPEC, argv);
  await faultPoint('ls');
  const records = listRecords();
  if (flag(parsed, 'json')) {
    out(JSON.stringify(records.map(publicView), null, 2));
    return;
  }
  if (records.length === 0) {
    out('No machines found');
    return;
  }
  printTable(records);
}

function printTable(records: MachineRecord[]): void {
  const row = (cells: string[]): string =>
    [cells[0].padEnd(20), cells[1].padEnd(12), cells[2].padStart(5), cells[3].padStart(10), cells[4].padStart(7), cells[5].padStart(7)].join(' ');
  out(row(['NAME', 'STATE', 'CPUS', 'MEMORY', 'MOUNTS', 'PORTS']));
  out('-'.repeat(66));
  for (const record of records) {
    const name = record.name.length > 18 ? `${record.name.slice(0, 15)}...` : record.name;
    out(row([name, effectiveState(record), String(record.cpus), `${record.memory_mib} MiB`, String(record.mounts.length), String(record.ports.length)]));
  }
}

export async function statusCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(STATUS_SPEC, argv);
  const name = validateName(value(parsed, 'name') ?? 'default');
  await faultPoint('status', name);
  const record = readRecord(name);
  if (flag(parsed, 'json')) {
    if (!record) throw configError('machine status', `machine '${name}' not found`);
    out(JSON.stringify(publicView(record), null, 2));
    return;
  }
  const running = record && effectiveState(record) === 'running';
  out(running ? `Machine '${name}': running (PID: ${record.pid})` : `Machine '${name}': not running`);
}

export async function dataDirCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(DATA_DIR_SPEC, argv);
  const name = validateName(value(parsed, 'name') as string);
  await faultPoint('data-dir', name);
  requireRecord(name);
  out(machineDir(name));
}

export async function startCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(START_SPEC, argv);
  const name = validateName(value(parsed, 'name') ?? 'default');
  await faultPoint('start', name);
  const record = withMachineLock(name, () => markRunning(name));
  if (!record) return;
  try {
    await runInitCommands(record);
  } catch (error) {
    withMachineLock(name, () => writeRecord({ ...requireRecord(name), state: 'stopped', pid: null }));
    throw error;
  }
  out(`Machine '${name}' running (PID: ${record.pid})`);
}

/** Returns the updated record, or undefined when the machine was already running. */
function markRunning(name: string): MachineRecord | undefined {
  const record = requireRecord(name);
  if (effectiveState(record) === 'frozen') {
    throw new SimError(`agent operation failed: connect: machine '${name}' is frozen as a reusable fork base; fork it again, or delete its descendants and stop it before restarting`);
  }
  if (record.state === 'running') {
    out(`Machine '${name}' already running (PID: ${record.pid})`);
    return undefined;
  }
  const mounts = record.mounts.length > 0 ? ` with ${record.mounts.length} mount(s)` : '';
  out(`Starting machine '${name}'${mounts}...`);
  const started: MachineRecord = { ...record, state: 'running', pid: fakeVmPid() };
  writeRecord(started);
  appendConsole(name, `smolvm-agent: boot complete, machine '${name}' running (pid ${started.pid})`);
  return started;
}

function fakeVmPid(): number {
  return 20000 + (randomBytes(2).readUInt16BE() % 40000);
}

export async function stopCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(STOP_SPEC, argv);
  const name = validateName(value(parsed, 'name') ?? 'default');
  await faultPoint('stop', name);
  if (!readRecord(name)) {
    out(`Machine '${name}' not found or not running`);
    return;
  }
  withMachineLock(name, () => stopMachine(name));
}

function stopMachine(name: string): void {
  const record = requireRecord(name);
  if (record.state !== 'running') {
    out(`Machine '${name}' is not running (state: ${effectiveState(record)})`);
    return;
  }
  out(`Stopping machine '${name}'...`);
  stopGuestSessions(name);
  writeRecord({ ...record, state: 'stopped', pid: null });
  appendConsole(name, `smolvm-agent: shutdown requested, machine '${name}' stopped`);
  out(`Stopped machine: ${name}`);
}

export async function deleteCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(DELETE_SPEC, argv);
  const name = validateName(value(parsed, 'name') as string);
  await faultPoint('delete', name);
  const record = requireRecord(name);
  if (record.state === 'running') withMachineLock(name, () => stopMachine(name));
  if (!flag(parsed, 'force')) {
    process.stderr.write(`Delete machine '${name}'? [y/N] `);
    const answer = (readStdinLine() ?? '').trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') {
      out('Cancelled');
      return;
    }
  }
  out(`Cleaning up data directory for vm: ${name}`);
  discardMachineDir(name);
  out(`Deleted machine: ${name}`);
}

export async function createCommand(argv: string[]): Promise<void> {
  const parsed = parseArgs(CREATE_SPEC, argv);
  const name = validateName(value(parsed, 'name') ?? `machine-${randomBytes(4).toString('hex')}`);
  const options = createOptions(parsed);
  requireRoot();
  await faultPoint('create', name);
  options.egress = await resolveEgress(parsed, options.cidrs);
  const from = value(parsed, 'from');
  const sidecar = from ? openSidecar(from) : undefined;
  if (!reserveMachineDir(name)) throw configError('create machine', `machine '${name}' already exists`);
  try {
    const record = sidecar ? await createFromSidecar(name, options, sidecar) : createFromImage(name, options, value(parsed, 'image'));
    writeFileSync(consoleLogPath(name), '');
    writeRecord(record);
    printCreated(record);
  } catch (error) {
    discardMachineDir(name);
    throw error;
  }
}

interface CreateOptions {
  cpus: number;
  mem: number;
  env: string[];
  mounts: MountSpec[];
  ports: string[];
  cidrs: string[];
  egress: Egress;
  workdir?: string;
  init: string[];
  labels: Record<string, string>;
  command: string[];
  storage: number | null;
  overlay: number | null;
}

function createOptions(parsed: ParsedArgs): CreateOptions {
  const cpus = unsignedValue(parsed, 'cpus', 255, DEFAULT_CPUS);
  const mem = unsignedValue(parsed, 'mem', 0xffffffff, DEFAULT_MEMORY_MIB);
  if (cpus === 0) throw configError('validate resources', 'cpus must be at least 1');
  if (mem === 0) throw configError('validate resources', 'memory must be at least 1 MiB');
  const storage = value(parsed, 'storage') === undefined ? null : unsignedValue(parsed, 'storage', Number.MAX_SAFE_INTEGER, 0);
  const overlay = value(parsed, 'overlay') === undefined ? null : unsignedValue(parsed, 'overlay', Number.MAX_SAFE_INTEGER, 0);
  return {
    cpus,
    mem,
    env: values(parsed, 'env').map((spec) => checkKeyValue('env', spec)),
    mounts: values(parsed, 'volume').map(parseMount),
    ports: values(parsed, 'port').map((spec) => checkPort(parsed, spec)),
    cidrs: allowCidrs(parsed),
    egress: { network: flag(parsed, 'net'), allowedCidrs: null, dnsFilterHosts: null },
    workdir: value(parsed, 'workdir'),
    init: values(parsed, 'init'),
    labels: Object.fromEntries(values(parsed, 'label').map((spec) => checkKeyValue('label', spec).split(/=(.*)/s).slice(0, 2))),
    command: parsed.trailing,
    storage,
    overlay,
  };
}

function checkKeyValue(what: string, spec: string): string {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw configError(what, `expected KEY=VALUE, got '${spec}'`);
  return spec;
}

function checkPort(parsed: ParsedArgs, spec: string): string {
  const match = /^(\d{1,5}):(\d{1,5})$/.exec(spec);
  if (!match || Number(match[1]) > 65535 || Number(match[2]) > 65535) {
    throw usage(parsed.spec, `invalid value '${spec}' for '--port <HOST:GUEST>': expected HOST:GUEST port numbers`);
  }
  return spec;
}

function parseMount(spec: string): MountSpec {
  const parts = spec.split(':');
  const readOnly = parts.length === 3 && parts[2] === 'ro';
  if (parts.length < 2 || parts.length > 3 || (parts.length === 3 && !readOnly) || !parts[1].startsWith('/')) {
    throw configError('parse volume', `invalid volume '${spec}': expected HOST:GUEST[:ro] with an absolute guest path`);
  }
  if (!existsSync(parts[0])) throw configError('parse volume', `host path does not exist: ${parts[0]}`);
  return { host: realpathSync(parts[0]), guest: parts[1], readOnly };
}

function baseRecord(name: string, options: CreateOptions): MachineRecord {
  return {
    name,
    state: 'created',
    cpus: options.cpus,
    memory_mib: options.mem,
    pid: null,
    mounts: options.mounts,
    ports: options.ports,
    created_at: Math.floor(Date.now() / 1000),
    storage_gb: options.storage,
    overlay_gb: options.overlay,
    image: null,
    entrypoint: [],
    cmd: options.command,
    env: options.env,
    workdir: options.workdir ?? null,
    network: options.egress.network,
    allowed_cidrs: options.egress.allowedCidrs,
    dns_filter_hosts: options.egress.dnsFilterHosts,
    labels: options.labels,
    init: options.init,
    source_smolmachine: null,
  };
}

function createFromImage(name: string, options: CreateOptions, image: string | undefined): MachineRecord {
  if (image !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/.test(image)) {
    throw configError('parse image', `invalid image reference '${image}'`);
  }
  createBaseRootfs(rootfsDir(name));
  return { ...baseRecord(name, options), image: image ?? null, user: imageUserFault(name) ?? null };
}

interface OpenedSidecar {
  path: string;
  info: ReturnType<typeof readSidecar>;
}

function openSidecar(path: string): OpenedSidecar {
  if (!existsSync(path)) throw configError('create from .smolmachine', `file not found: ${path}`);
  return { path: realpathSync(path), info: readSidecar(path) };
}

async function createFromSidecar(name: string, options: CreateOptions, sidecar: OpenedSidecar): Promise<MachineRecord> {
  const manifest: PackManifest = sidecar.info.manifest;
  out('Extracting .smolmachine assets...');
  await extractSidecar(sidecar.path, sidecar.info, rootfsDir(name));
  const remapUid = remapUidFault();
  if (remapUid !== undefined) remapOwnership(rootfsDir(name), remapUid);
  return {
    ...baseRecord(name, options),
    // A flag wins only when it differs from its default, so `--cpus 4` cannot override a pack's 2
    // (src/cli/machine.rs:3336-3345).
    cpus: options.cpus !== DEFAULT_CPUS ? options.cpus : manifest.cpus,
    memory_mib: options.mem !== DEFAULT_MEMORY_MIB ? options.mem : manifest.mem,
    image: manifest.image,
    entrypoint: options.command.length > 0 ? [] : (manifest.entrypoint ?? []),
    cmd: options.command.length > 0 ? options.command : (manifest.cmd ?? []),
    env: [...(manifest.env ?? []), ...options.env],
    // -w is never read on this path (src/cli/machine.rs:3418).
    workdir: manifest.workdir ?? null,
    // The pack's network OR the flags' (src/cli/machine.rs:112-128, 3353-3358).
    network: manifest.network || options.egress.network,
    // A pack has no user field, and the packed image's info has no User: exec runs as root
    // (crates/smolvm-pack/src/format.rs:334-419, crates/smolvm-agent/src/storage.rs:1339-1383).
    user: null,
    source_smolmachine: sidecar.path,
  };
}

function printCreated(record: MachineRecord): void {
  out(`Created machine: ${record.name}`);
  out(`  CPUs: ${record.cpus}, Memory: ${record.memory_mib} MiB`);
  if (record.mounts.length > 0) out(`  Mounts: ${record.mounts.length}`);
  if (record.ports.length > 0) out(`  Ports: ${record.ports.length}`);
  if (record.init.length > 0) out(`  Init commands: ${record.init.length}`);
  out(`\nUse 'smolvm machine start --name ${record.name}' to start the machine`);
  out(`Then use 'smolvm machine exec --name ${record.name} -- <command>' to run commands`);
}
