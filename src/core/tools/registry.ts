/**
 * Distribution, the image registry, as a client sees it: its configuration file, its log line
 * that gives the address, and the docker commands that run it as the `registry:2` image when no
 * registry binary is installed. Starting, waiting for and stopping one is the freeze's business
 * (freeze/registry.ts).
 */
import type { ToolCommand } from '../run';
import { UnexpectedOutputError } from './command';
import { OWNER_LABEL, ownerLabelValue, REGISTRY_LABEL } from './docker';

export const REGISTRY_IMAGE = 'registry:2';
/** The only address a registry of ours listens on. */
export const REGISTRY_HOST = '127.0.0.1';
const CONTAINER_PORT = '5000/tcp';

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
    `  addr: ${q(`${REGISTRY_HOST}:0`)}`,
    `  secret: ${q(httpSecret)}`,
    '',
  ].join('\n');
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
      '--publish', `${REGISTRY_HOST}::5000`,
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

