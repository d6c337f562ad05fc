/**
 * The stand-in's host state: one folder per machine under `$SMOLVM_DATA_DIR/machines/<name>`,
 * holding `machine.json` (written by atomic rename), `rootfs/` and `agent-console.log`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { SimError, vmNotFound } from './errors';
import { stateOverride } from './faults';

export type MachineState = 'created' | 'running' | 'stopped' | 'failed' | 'unreachable' | 'frozen';

export interface MountSpec {
  host: string;
  guest: string;
  readOnly: boolean;
}

export interface MachineRecord {
  name: string;
  state: MachineState;
  cpus: number;
  memory_mib: number;
  pid: number | null;
  mounts: MountSpec[];
  ports: string[];
  created_at: number;
  storage_gb: number | null;
  overlay_gb: number | null;
  image: string | null;
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string | null;
  network: boolean;
  /** Kept in the record only: smolvm prints the egress allow-list nowhere (vm_common.rs:2469-2520). */
  allowed_cidrs: string[] | null;
  dns_filter_hosts: string[] | null;
  labels: Record<string, string>;
  init: string[];
  source_smolmachine: string | null;
  /** The image's `User`, which exec runs as; null (root) for `--from` machines. */
  user?: string | null;
}

export function dataDir(): string {
  return resolve(process.env.SMOLVM_DATA_DIR || join(homedir(), '.local', 'share', 'smolvm'));
}

export function machinesDir(): string {
  return join(dataDir(), 'machines');
}

export function machineDir(name: string): string {
  return join(machinesDir(), name);
}

export function rootfsDir(name: string): string {
  return join(machineDir(name), 'rootfs');
}

export function consoleLogPath(name: string): string {
  return join(machineDir(name), 'agent-console.log');
}

function recordPath(name: string): string {
  return join(machineDir(name), 'machine.json');
}

export function readRecord(name: string): MachineRecord | undefined {
  try {
    return JSON.parse(readFileSync(recordPath(name), 'utf8')) as MachineRecord;
  } catch {
    return undefined;
  }
}

export function requireRecord(name: string): MachineRecord {
  const record = readRecord(name);
  if (!record) throw vmNotFound(name);
  return record;
}

export function writeRecord(record: MachineRecord): void {
  const target = recordPath(record.name);
  const temp = `${target}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(temp, target);
}

export function listRecords(): MachineRecord[] {
  if (!existsSync(machinesDir())) return [];
  return readdirSync(machinesDir())
    .sort()
    .map((name) => readRecord(name))
    .filter((record): record is MachineRecord => record !== undefined);
}

/** The state a user would see: a fault override wins over the recorded one. */
export function effectiveState(record: MachineRecord): string {
  return stateOverride(record.name, machineDir(record.name)) ?? record.state;
}

/**
 * One machine as `ls --json` and `status --json` print it: the keys of `machine_status_json`
 * (src/cli/vm_common.rs:2469-2520), in alphabetical order because serde_json builds the object
 * as a BTreeMap. The stand-in knows no GPU, fork, restart or health settings: smolvm's values for
 * a machine made by `create` without them.
 */
export function publicView(record: MachineRecord): Record<string, unknown> {
  const state = effectiveState(record);
  const view: Record<string, unknown> = {
    name: record.name,
    state,
    cpus: record.cpus,
    memory_mib: record.memory_mib,
    pid: state === 'running' || state === 'unreachable' ? record.pid : null,
    mounts: record.mounts.length,
    ports: record.ports.length,
    created_at: record.created_at,
    storage_gb: record.storage_gb,
    overlay_gb: record.overlay_gb,
    image: record.image,
    entrypoint: record.entrypoint,
    cmd: record.cmd,
    ephemeral: false,
    gpu: false,
    gpu_vram_mib: null,
    cuda: false,
    forkable: false,
    cuda_fork_pool_size: null,
    cuda_vram_limit_mib: null,
    forkpoint_held: false,
    labels: record.labels,
    restart_policy: 'never',
    restart_max_retries: 0,
    restart_count: 0,
    health_cmd: null,
    health_interval_secs: null,
    health_timeout_secs: null,
    health_retries: null,
    health_startup_grace_secs: null,
    network: record.network,
  };
  return Object.fromEntries(Object.keys(view).sort().map((key) => [key, view[key]]));
}

export function appendConsole(name: string, line: string): void {
  try {
    appendFileSync(consoleLogPath(name), `[${new Date().toISOString()}] ${line}\n`);
  } catch {
    // The machine may have been deleted meanwhile; the console log is best-effort.
  }
}

const LOCK_TIMEOUT_MS = 30_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Serialises read-modify-write of one machine's record across processes. */
export function withMachineLock<T>(name: string, action: () => T): T {
  const lock = join(machineDir(name), '.lock');
  acquireLock(lock);
  try {
    return action();
  } finally {
    rmSync(lock, { force: true });
  }
}

function acquireLock(lock: string): void {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw vmNotFound(lock.split('/').at(-2) ?? '');
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    removeIfStale(lock);
    if (Date.now() > deadline) throw new SimError('database is locked');
    Atomics.wait(sleeper, 0, 0, 20);
  }
}

function removeIfStale(lock: string): void {
  const owner = Number(readFileSafe(lock));
  if (owner > 0 && !isAlive(owner)) {
    try {
      unlinkSync(lock);
    } catch {
      // Another process removed it first.
    }
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reserves a machine name atomically: the folder exists or it does not. */
export function reserveMachineDir(name: string): boolean {
  mkdirSync(machinesDir(), { recursive: true });
  try {
    mkdirSync(machineDir(name));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Removes a machine folder so that it vanishes at once for every other process. */
/**
 * What `data-dir` prints: smolvm's `vm_cache_root()/<16 hex of sha256(name)>` (src/agent/manager.rs:235-237,
 * 504-510), under `SMOLVM_DATA_DIR` as the new HOME's `.cache` (src/process.rs:919-963); here a link to the machine's folder.
 */
export function vmDataDir(name: string): string {
  return join(dataDir(), '.cache', 'smolvm', 'vms', createHash('sha256').update(name).digest('hex').slice(0, 16));
}

export function discardMachineDir(name: string): void {
  rmSync(vmDataDir(name), { force: true });
  const trash = join(dataDir(), 'trash');
  mkdirSync(trash, { recursive: true });
  const doomed = join(trash, `${name}.${process.pid}.${Date.now()}`);
  try {
    renameSync(machineDir(name), doomed);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  rmSync(doomed, { recursive: true, force: true });
}
