/**
 * Fault injection through environment variables (every one is described in README.md).
 * A rule names a *point* (`cp`, `exec:tar`, `pack:write`, ...) and optionally a machine
 * (`cp@bot-bottle-a`); several rules are separated by commas.
 */
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimError } from './errors';

interface Rule {
  point: string;
  machine?: string;
  value?: string;
}

function rules(variable: string): Rule[] {
  const raw = process.env[variable];
  if (!raw) return [];
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map(parseRule);
}

function parseRule(text: string): Rule {
  const eq = text.indexOf('=');
  const target = eq >= 0 ? text.slice(0, eq) : text;
  const value = eq >= 0 ? text.slice(eq + 1) : undefined;
  const at = target.indexOf('@');
  return at >= 0 ? { point: target.slice(0, at), machine: target.slice(at + 1), value } : { point: target, value };
}

function findRule(variable: string, point: string, machine?: string): Rule | undefined {
  return rules(variable).find((rule) => rule.point === point && (!rule.machine || rule.machine === machine));
}

/**
 * Applies every fault aimed at this point: a delay, then a failure or a hang. `partial` is the
 * host path of what the command has written so far, for the marker.
 */
export async function faultPoint(point: string, machine?: string, partial?: string): Promise<void> {
  const delay = findRule('SMOLVM_SIM_DELAY', point, machine);
  if (delay) {
    leaveMarker(point, machine, partial);
    await sleep(Number(delay.value ?? 0));
  }
  const failure = findRule('SMOLVM_SIM_FAIL', point, machine);
  if (failure) {
    const message = process.env.SMOLVM_SIM_FAIL_MESSAGE || `simulated failure at ${point}`;
    throw new SimError(message, Number(failure.value ?? 1) || 1);
  }
  if (findRule('SMOLVM_SIM_HANG', point, machine)) await hangForever(() => leaveMarker(point, machine, partial));
}

/** Is a delay aimed at this point? (A command that must arrange its work around the delay asks first.) */
export function delayAimedAt(point: string, machine?: string): boolean {
  return findRule('SMOLVM_SIM_DELAY', point, machine) !== undefined;
}

/**
 * `SMOLVM_SIM_MARKERS=DIR`: on reaching a point it delays or hangs at, the stand-in writes
 * `DIR/<point>[@machine]`, JSON `{"pid", "partial"}`, so that a test can cancel exactly while the
 * tool is there and check what it had done by then. Written whole (rename), never half.
 */
function leaveMarker(point: string, machine: string | undefined, partial: string | undefined): void {
  const dir = process.env.SMOLVM_SIM_MARKERS;
  if (!dir) return;
  const name = machine ? `${point}@${machine}` : point;
  const temporary = join(dir, `.${name}.${process.pid}`);
  writeFileSync(temporary, JSON.stringify({ pid: process.pid, partial }));
  renameSync(temporary, join(dir, name));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Never returns. A child stays in our process group, as a real smolvm's helper processes would,
 * and a signal to us alone leaves it running (signals.ts): only a process-group kill ends both.
 */
function hangForever(hung: () => void): Promise<never> {
  spawn('sleep', ['infinity'], { stdio: 'ignore' });
  hung();
  setInterval(() => undefined, 1 << 30);
  return new Promise<never>(() => undefined);
}

/** `SMOLVM_SIM_TAR_EXIT=1|2[@machine]`: the status an in-VM tar ends with. */
export function tarExitFault(machine: string): number | undefined {
  const rule = rules('SMOLVM_SIM_TAR_EXIT').find((r) => !r.machine || r.machine === machine);
  return rule ? Number(rule.point) : undefined;
}

/** `SMOLVM_SIM_BUSY_EXEC=1` (every machine) or a comma list of machine names. */
export function busyExecFault(machine: string): boolean {
  const raw = process.env.SMOLVM_SIM_BUSY_EXEC;
  if (!raw || raw === '0') return false;
  return raw === '1' || raw.split(',').map((s) => s.trim()).includes(machine);
}

/**
 * `SMOLVM_SIM_IMAGE_USER=USER[@machine]`: the `User` of the image a `create --image` machine is
 * made from (the stand-in pulls nothing, so it cannot read it); none means root.
 */
export function imageUserFault(machine: string): string | undefined {
  return rules('SMOLVM_SIM_IMAGE_USER').find((r) => !r.machine || r.machine === machine)?.point || undefined;
}

/**
 * `SMOLVM_SIM_REMAP_UID=UID`: `create --from` gives every file to UID:UID, as smolvm before 1.8.1
 * did on a macOS host (501, the first user). smolvm 1.9.3 keeps owners.
 */
export function remapUidFault(): number | undefined {
  const uid = Number(process.env.SMOLVM_SIM_REMAP_UID);
  return process.env.SMOLVM_SIM_REMAP_UID && Number.isInteger(uid) && uid >= 0 ? uid : undefined;
}

/** `SMOLVM_SIM_CP_RATE=<bytes per second>[@machine]`. */
export function cpRateFault(machine: string): number | undefined {
  const rule = rules('SMOLVM_SIM_CP_RATE').find((r) => !r.machine || r.machine === machine);
  const rate = rule ? Number(rule.point) : NaN;
  return rate > 0 ? rate : undefined;
}

/**
 * `SMOLVM_SIM_STATE_<name>` (the name as is, or with every character outside A-Z a-z 0-9
 * turned into `_`), else the machine's `state-override` file.
 */
export function stateOverride(name: string, machineFolder: string): string | undefined {
  const fromEnv = process.env[`SMOLVM_SIM_STATE_${name}`] ?? process.env[`SMOLVM_SIM_STATE_${name.replace(/[^A-Za-z0-9]/g, '_')}`];
  if (fromEnv) return fromEnv;
  try {
    return readFileSync(join(machineFolder, 'state-override'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `SMOLVM_SIM_HOST_ARCH=amd64|arm64` pretends to run on another CPU (for the `--from` arch check). */
export function hostArch(): string {
  const override = process.env.SMOLVM_SIM_HOST_ARCH;
  if (override) return override;
  return process.arch === 'x64' ? 'amd64' : process.arch;
}
