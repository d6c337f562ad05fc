/**
 * A throwaway image registry on the loopback interface, alive for one freeze on the docker path.
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
import { formatDuration } from '../format';
import { makeOwnedTempDir } from '../fsutil';
import type { Log } from '../log';
import { checkedPullHost, DEFAULT_PULL_HOST } from '../pullHost';
import { createRunner, runTool, startBackgroundProcess, type BackgroundProcess, type RunOptions } from '../run';
import { removeNetwork } from '../tools/docker';
import {
  createRegistryNetwork,
  isLoopback,
  parseListeningLine,
  publishedPort,
  registryConfig,
  REGISTRY_HOST,
  removeContainer,
  runRegistryContainer,
  type ListenAddress,
} from '../tools/registry';

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
    options.log.info(`Registry ready on ${REGISTRY_HOST}:${address.port}`);
    const backing = { kind: 'process', pid: server.pid, dir } as const;
    return registryHandle(address.port, pullHost, backing, once(cleanUp));
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** Distribution lets REGISTRY_* variables override its config (even the listen address): drop them. */
function registryEnv(): Record<string, string> {
  const kept = Object.entries(process.env).filter(
    (entry): entry is [string, string] => entry[1] !== undefined && !entry[0].startsWith('REGISTRY_'),
  );
  return Object.fromEntries(kept);
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

// ---------------------------------------------------------------------------------------------
// Shared

function registryHandle(port: number, pullHost: string, backing: RegistryBacking, stop: () => Promise<void>): EphemeralRegistry {
  return { pushEndpoint: `${REGISTRY_HOST}:${port}`, pullEndpoint: `${pullHost}:${port}`, port, backing, stop };
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
    if (Date.now() > wait.deadline) throw new Error(`The registry on ${REGISTRY_HOST}:${port} did not answer GET /v2/ in time.`);
    await sleep(POLL_INTERVAL_MS);
  }
}

/** One GET /v2/ without keep-alive (a pooled socket would outlive the registry). */
function answersV2(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const request = get({ host: REGISTRY_HOST, port, path: '/v2/', agent: false, timeout: 1000 }, (response) => {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
