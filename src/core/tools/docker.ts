/**
 * Docker CLI client: builds argv and reads output. Any Docker-compatible engine works behind the
 * `docker` client (Docker Engine, or Podman's API service through DOCKER_HOST).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { noOutput, UnexpectedOutputError, type ToolCommand } from './command';

/** On every image a freeze builds; its value is the bottle's slug. */
export const COMMITTED_LABEL = 'bot-bottle.committed';
/** On every container and network of an ephemeral registry. */
export const REGISTRY_LABEL = 'bot-bottle.ephemeral-registry';
/** `<host>/<pid>` of the process that made a registry container or network. */
export const OWNER_LABEL = 'bot-bottle.owner';

export function ownerLabelValue(): string {
  return `${hostname()}/${process.pid}`;
}

/** The pid of a `<host>/<pid>` owner label made on this host, or undefined. */
export function ownerOnThisHost(value: string): number | undefined {
  const slash = value.lastIndexOf('/');
  const pid = Number(value.slice(slash + 1));
  return slash > 0 && value.slice(0, slash) === hostname() && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The archive of the root filesystem, as the Dockerfile below expects it beside itself. */
export const ROOTFS_ARCHIVE = 'rootfs.tar.gz';

/** An image holding exactly the archived root filesystem (ADD unpacks a .tar.gz), run as node. */
export function dockerfileForRootfs(): string {
  return `FROM scratch\nADD ${ROOTFS_ARCHIVE} /\nUSER node\nWORKDIR /home/node\n`;
}

export interface BuildSpec {
  tag: string;
  contextDir: string;
  /** Defaults to `Dockerfile` in contextDir. */
  dockerfile?: string;
  /** Labels the image carries (`--label NAME=VALUE`). */
  labels?: Readonly<Record<string, string>>;
}

export function build(dockerBin: string, spec: BuildSpec): ToolCommand<void> {
  const dockerfile = spec.dockerfile ?? join(spec.contextDir, 'Dockerfile');
  const labels = Object.entries(spec.labels ?? {}).flatMap(([name, value]) => ['--label', `${name}=${value}`]);
  return { argv: [dockerBin, 'build', '--tag', spec.tag, ...labels, '--file', dockerfile, spec.contextDir], parse: noOutput };
}

export function save(dockerBin: string, ref: string, outFile: string): ToolCommand<void> {
  return { argv: [dockerBin, 'save', '--output', outFile, ref], parse: noOutput };
}

/** The image's content id, `sha256:<64 hex>`. */
export function imageId(dockerBin: string, ref: string): ToolCommand<string> {
  return {
    argv: [dockerBin, 'image', 'inspect', '--format', '{{.Id}}', ref],
    parse: ({ stdout }) => parseImageId(stdout),
  };
}

export function parseImageId(stdout: string): string {
  const id = stdout.trim();
  if (!/^sha256:[0-9a-f]{64}$/.test(id)) throw new UnexpectedOutputError('docker image inspect', 'an image id (sha256:...)', stdout);
  return id;
}

export function rmi(dockerBin: string, ref: string): ToolCommand<void> {
  return { argv: [dockerBin, 'rmi', ref], parse: noOutput };
}

export interface DockerVersion {
  client: string;
  /** Undefined when the client cannot reach an engine. */
  server?: string;
  /** Why the engine could not be reached (the client's stderr). */
  serverError?: string;
}

/** Client and engine versions. Exit status 1 is how the client says "no engine", so it is accepted. */
export function version(dockerBin: string): ToolCommand<DockerVersion> {
  return {
    argv: [dockerBin, 'version', '--format', '{{json .}}'],
    okExitCodes: [0, 1],
    quietStdout: true,
    parse: ({ stdout, stderr }) => parseVersion(stdout, stderr),
  };
}

export function parseVersion(stdout: string, stderr: string): DockerVersion {
  const json = readJson(stdout);
  const client = json?.Client?.Version;
  if (typeof client !== 'string') throw new UnexpectedOutputError('docker version', 'JSON with Client.Version', stderr || stdout);
  const server = json?.Server?.Version;
  if (typeof server === 'string') return { client, server };
  return { client, serverError: stderr.trim() || 'the Docker engine did not answer' };
}

interface VersionJson {
  Client?: { Version?: unknown };
  Server?: { Version?: unknown } | null;
}

function readJson(text: string): VersionJson | undefined {
  try {
    return JSON.parse(text) as VersionJson;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Leftovers of a freeze whose window was killed, found by their labels.

export interface Labelled {
  /** Container or network name, or image id. */
  id: string;
  /** The value of the label asked for. */
  value: string;
}

/** Every container, running or not, that has `label`, with the value of `valueOf`. */
export function labelledContainers(dockerBin: string, label: string, valueOf: string): ToolCommand<Labelled[]> {
  return {
    argv: [dockerBin, 'ps', '--all', '--filter', `label=${label}`, '--format', `{{.Names}}\t{{.Label ${JSON.stringify(valueOf)}}}`],
    parse: ({ stdout }) => parseLabelled(stdout),
  };
}

/** Every network that has `label`, with the value of `valueOf`. */
export function labelledNetworks(dockerBin: string, label: string, valueOf: string): ToolCommand<Labelled[]> {
  return {
    argv: [dockerBin, 'network', 'ls', '--filter', `label=${label}`, '--format', `{{.Name}}\t{{.Label ${JSON.stringify(valueOf)}}}`],
    parse: ({ stdout }) => parseLabelled(stdout),
  };
}

/** Ids of every image that has `label`. */
export function labelledImageIds(dockerBin: string, label: string): ToolCommand<string[]> {
  return {
    argv: [dockerBin, 'image', 'ls', '--no-trunc', '--filter', `label=${label}`, '--format', '{{.ID}}'],
    parse: ({ stdout }) => [...new Set(stdout.split('\n').map((line) => line.trim()).filter(Boolean))],
  };
}

/** Each image's value of `label` (`docker image ls` cannot print labels). */
export function imageLabel(dockerBin: string, ids: readonly string[], label: string): ToolCommand<Labelled[]> {
  return {
    argv: [dockerBin, 'image', 'inspect', '--format', `{{.Id}}\t{{index .Config.Labels ${JSON.stringify(label)}}}`, ...ids],
    parse: ({ stdout }) => parseLabelled(stdout),
  };
}

export function parseLabelled(stdout: string): Labelled[] {
  return stdout
    .split('\n')
    .map((line) => line.trim().split('\t'))
    .filter(([id]) => Boolean(id))
    .map(([id, value]) => ({ id, value: value === '<no value>' ? '' : (value ?? '') }));
}

export function removeImageById(dockerBin: string, id: string): ToolCommand<void> {
  return { argv: [dockerBin, 'rmi', '--force', id], parse: noOutput };
}

export function removeNetwork(dockerBin: string, name: string): ToolCommand<void> {
  return { argv: [dockerBin, 'network', 'rm', name], parse: noOutput };
}
