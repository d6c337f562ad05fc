/**
 * A throwaway image registry on the loopback interface, alive for one freeze.
 *
 * It has two addresses: the push endpoint (how this host reaches it) and the pull endpoint (how a
 * VM reaches it; smolvm pulls inside a helper VM). Distribution's own binary is used when there
 * is one; otherwise the `registry:2` image runs under docker. Either way it only ever listens on
 * 127.0.0.1, and stopping it leaves no process, container or folder behind.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { CancelledError, ToolError, UserError } from '../errors';
import { makeOwnedTempDir } from '../fsutil';
import type { Log } from '../log';
import { createRunner, startBackgroundProcess, type BackgroundProcess, type RunOptions } from '../run';
import { runTool, UnexpectedOutputError, type ToolCommand } from './command';
import { OWNER_LABEL, ownerLabelValue, REGISTRY_LABEL, removeNetwork } from './docker';

export const DEFAULT_PULL_HOST = '127.0.0.1';
export const REGISTRY_IMAGE = 'registry:2';
const PUSH_HOST = '127.0.0.1';
const CONTAINER_PORT = '5000/tcp';
const DEFAULT_START_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 25;

export interface EphemeralRegistryOptions {
  /** Distribution's binary (`registry`, Debian's `docker-registry`); preferred when given. */
  registryBin?: string;
  /** Runs the registry image when there is no registry binary. */
  dockerBin?: string;
  log: Log;
  signal?: AbortSignal;
  /** The host name or address a VM uses to reach this host's loopback; default 127.0.0.1. */
  pullHost?: string;
  /** Added to the environment of docker commands (DOCKER_HOST, DOCKER_CONFIG...). */
  dockerEnv?: Readonly<Record<string, string>>;
  /** Where the registry's temporary folder is made; default the OS temp folder. */
  tmpRoot?: string;
  /** Give up when the registry does not answer within this long; default 15 s. */
  startTimeoutMs?: number;
}

export type RegistryBacking =
  | { readonly kind: 'process'; readonly pid: number; readonly dir: string }
  | { readonly kind: 'container'; readonly name: string };

export interface EphemeralRegistry {
  /** `127.0.0.1:PORT`: where this host pushes. */
  readonly pushEndpoint: string;
  /** `<pullHost>:PORT`: where a VM pulls from. */
  readonly pullEndpoint: string;
  readonly port: number;
  /** What runs it, for the log and for tests. */
  readonly backing: RegistryBacking;
  /** Stops it and removes its storage. Safe to call more than once. */
  stop(): Promise<void>;
}

export async function startEphemeralRegistry(options: EphemeralRegistryOptions): Promise<EphemeralRegistry> {
  const pullHost = checkedPullHost(options.pullHost ?? DEFAULT_PULL_HOST);
  throwIfCancelled(options.signal);
  if (options.registryBin) return startRegistryProcess(options.registryBin, pullHost, options);
  if (options.dockerBin) return startRegistryContainer(options.dockerBin, pullHost, options);
  throw new UserError(
    'The freeze needs an image registry: install Distribution (`registry`, or `docker-registry` on Debian) or docker, or set botBottle.paths.registry.',
  );
}

// ---------------------------------------------------------------------------------------------
// Distribution's binary in a temp folder

async function startRegistryProcess(bin: string, pullHost: string, options: EphemeralRegistryOptions): Promise<EphemeralRegistry> {
  const limitMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + limitMs;
  const dir = await makeOwnedTempDir('registry', options.tmpRoot);
  let server: BackgroundProcess | undefined;
  const cleanUp = async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const configFile = join(dir, 'config.yml');
    await writeFile(configFile, registryConfig(join(dir, 'data'), randomBytes(16).toString('hex')), { mode: 0o600 });
    throwIfCancelled(options.signal);
    server = startBackgroundProcess(options.log, [bin, 'serve', configFile], { cwd: dir, env: registryEnv(), extendEnv: false });
    const address = await waitForListening(server, options.signal, deadline, limitMs);
    if (!isLoopback(address.host)) throw new Error(`The registry listens on ${address.host}, not on loopback; it was stopped.`);
    await waitUntilAnswering(address.port, { signal: options.signal, deadline, whyGone: () => server?.exitDescription() });
    options.log.info(`Registry ready on ${PUSH_HOST}:${address.port}`);
    const backing = { kind: 'process', pid: server.pid, dir } as const;
    return registryHandle(address.port, pullHost, backing, once(cleanUp));
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** Distribution's configuration: loopback only, a port the kernel picks, no auth, storage in `dataDir`. */
export function registryConfig(dataDir: string, httpSecret: string): string {
  // JSON strings are valid YAML scalars, which keeps odd characters in paths harmless.
  const q = (value: string) => JSON.stringify(value);
  return [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(dataDir)}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`${PUSH_HOST}:0`)}`,
    `  secret: ${q(httpSecret)}`,
    '',
  ].join('\n');
}

/** Distribution lets REGISTRY_* variables override its config (even the listen address): drop them. */
function registryEnv(): Record<string, string> {
  const kept = Object.entries(process.env).filter(
    (entry): entry is [string, string] => entry[1] !== undefined && !entry[0].startsWith('REGISTRY_'),
  );
  return Object.fromEntries(kept);
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Reads Distribution's `listening on HOST:PORT` log line. */
export function parseListeningLine(line: string): ListenAddress | undefined {
  const match = /listening on (\[[0-9a-fA-F:.]+\]|[^\s:"]+):(\d+)/.exec(line);
  return match ? { host: match[1], port: Number(match[2]) } : undefined;
}

export function isLoopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]' || host === '::1' || host === 'localhost';
}

function waitForListening(server: BackgroundProcess, signal: AbortSignal | undefined, deadline: number, limitMs: number): Promise<ListenAddress> {
  return new Promise<ListenAddress>((resolve, reject) => {
    const cleanups: (() => void)[] = [];
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      for (const cleanup of cleanups) cleanup();
      outcome();
    };
    cleanups.push(server.onLine((_stream, line) => {
      const address = parseListeningLine(line);
      if (address) settle(() => resolve(address));
    }));
    const timer = setTimeout(() => settle(() => reject(notListeningError(server, limitMs))), Math.max(0, deadline - Date.now()));
    cleanups.push(() => clearTimeout(timer));
    const onAbort = () => settle(() => reject(new CancelledError()));
    signal?.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => signal?.removeEventListener('abort', onAbort));
    void server.exited.then(() => settle(() => reject(exitedEarlyError(server))));
    if (signal?.aborted) onAbort();
  });
}

function notListeningError(server: BackgroundProcess, limitMs: number): Error {
  return new Error(`The registry did not report its address within ${formatDuration(limitMs)}.${lastWords(server)}`);
}

function exitedEarlyError(server: BackgroundProcess): ToolError {
  const detail = `The registry ${server.exitDescription()} before it was ready.${lastWords(server)}`;
  return new ToolError(server.argv, server.exitCode(), server.recentOutput(), detail);
}

function lastWords(server: BackgroundProcess): string {
  const output = server.recentOutput().trim();
  return output ? ` Its last output:\n${output}` : '';
}

// ---------------------------------------------------------------------------------------------
// The registry image under docker (no registry binary installed)

async function startRegistryContainer(dockerBin: string, pullHost: string, options: EphemeralRegistryOptions): Promise<EphemeralRegistry> {
  const run = createRunner(options.log);
  // Named up front so that a cancel racing `docker run` can still remove what it created.
  const name = `bot-bottle-registry-${randomBytes(6).toString('hex')}`;
  const runOptions: RunOptions = { signal: options.signal, env: options.dockerEnv };
  const remove = async () => {
    await runTool(run, removeContainer(dockerBin, name), { env: options.dockerEnv });
    await runTool(run, removeNetwork(dockerBin, name), { env: options.dockerEnv, okExitCodes: [0, 1] });
  };
  try {
    await runTool(run, createRegistryNetwork(dockerBin, name), runOptions);
    await runTool(run, runRegistryContainer(dockerBin, name), runOptions);
    const port = await runTool(run, publishedPort(dockerBin, name), runOptions);
    const deadline = Date.now() + (options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
    await waitUntilAnswering(port, { signal: options.signal, deadline, whyGone: () => undefined });
    return registryHandle(port, pullHost, { kind: 'container', name }, once(remove));
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
}

/** The labels that let the next start find a registry's container and network after a crash. */
function registryLabels(): string[] {
  return ['--label', `${REGISTRY_LABEL}=true`, '--label', `${OWNER_LABEL}=${ownerLabelValue()}`];
}

/**
 * A network of its own (named as the container): on the engine's default bridge, every other
 * container could reach the registry at its container address, loopback publishing or not.
 */
export function createRegistryNetwork(dockerBin: string, name: string): ToolCommand<void> {
  return { argv: [dockerBin, 'network', 'create', ...registryLabels(), name], parse: () => undefined };
}

export function runRegistryContainer(dockerBin: string, name: string, image = REGISTRY_IMAGE): ToolCommand<string> {
  return {
    argv: [
      dockerBin, 'run', '--detach', '--rm', '--name', name,
      ...registryLabels(),
      '--network', name,
      // Distribution needs no privilege: it serves an unprivileged port and writes its own folder.
      '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
      // Loopback only; an empty host port makes the engine pick a free one.
      '--publish', `${PUSH_HOST}::5000`,
      image,
    ],
    parse: ({ stdout }) => stdout.trim().split('\n').at(-1) ?? '',
  };
}

export function publishedPort(dockerBin: string, name: string): ToolCommand<number> {
  return { argv: [dockerBin, 'port', name, CONTAINER_PORT], parse: ({ stdout }) => parsePublishedPort(stdout) };
}

/** Reads `docker port` output (`127.0.0.1:49153`, one line per binding); anything off loopback is refused. */
export function parsePublishedPort(stdout: string): number {
  const bindings = stdout.split('\n').map((line) => line.trim()).filter(Boolean).map(parseBinding);
  const port = bindings[0]?.port;
  if (!port || bindings.some((binding) => !binding || !isLoopback(binding.host))) {
    throw new UnexpectedOutputError('docker port', 'only loopback bindings (127.0.0.1:PORT)', stdout);
  }
  return port;
}

function parseBinding(text: string): ListenAddress | undefined {
  const match = /^(\[[0-9a-fA-F:]+\]|[^\s:]+):(\d+)$/.exec(text);
  return match ? { host: match[1], port: Number(match[2]) } : undefined;
}

/** Removes the container; one that is gone already (it ran with --rm) counts as removed. */
export function removeContainer(dockerBin: string, name: string): ToolCommand<void> {
  return { argv: [dockerBin, 'rm', '--force', name], okExitCodes: [0, 1], parse: (result) => checkRemoved(result.exitCode, result.stderr, name) };
}

function checkRemoved(exitCode: number, stderr: string, name: string): void {
  if (exitCode !== 0 && !/no such container/i.test(stderr)) throw new Error(`Could not remove the registry container ${name}: ${stderr.trim()}`);
}

// ---------------------------------------------------------------------------------------------
// Shared

function registryHandle(port: number, pullHost: string, backing: RegistryBacking, stop: () => Promise<void>): EphemeralRegistry {
  return { pushEndpoint: `${PUSH_HOST}:${port}`, pullEndpoint: `${pullHost}:${port}`, port, backing, stop };
}

/** A host name, IPv4 address or bracketed IPv6 address; no scheme, port or path. */
function checkedPullHost(host: string): string {
  const trimmed = host.trim();
  if (/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(trimmed) || /^\[[0-9a-fA-F:]+\]$/.test(trimmed)) return trimmed;
  throw new UserError(`botBottle.registry.pullHost must be a host name or address without scheme or port, not "${host}".`);
}

interface AnswerWait {
  signal: AbortSignal | undefined;
  deadline: number;
  /** Says why the registry cannot answer any more (it exited), or undefined. */
  whyGone: () => string | undefined;
}

async function waitUntilAnswering(port: number, wait: AnswerWait): Promise<void> {
  for (;;) {
    throwIfCancelled(wait.signal);
    if (await answersV2(port)) return;
    const gone = wait.whyGone();
    if (gone) throw new Error(`The registry ${gone} before it answered.`);
    if (Date.now() > wait.deadline) throw new Error(`The registry on ${PUSH_HOST}:${port} did not answer GET /v2/ in time.`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/** One GET /v2/ without keep-alive (a pooled socket would outlive the registry). */
function answersV2(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = get({ host: PUSH_HOST, port, path: '/v2/', agent: false, timeout: 1000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

function once(action: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= action());
}

function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
