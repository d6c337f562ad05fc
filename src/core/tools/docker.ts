/**
 * Docker CLI client: builds argv and reads output. Any Docker-compatible engine works behind the
 * `docker` client (Docker Engine, or Podman's API service through DOCKER_HOST).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { ToolCommand } from '../run';
import { noOutput, UnexpectedOutputError } from './command';

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

/** A container as `docker ps` and `docker container inspect` describe it. */
export interface DockerContainer {
  id: string;
  name: string;
  /** As the engine reports it (`running`, `exited`, `created`, `paused`...); kept as it is. */
  state: string;
  image?: string;
  /** When its process last started; only a running container's counts. */
  startedAt?: Date;
  /** How long it has run; filled in by discovery. */
  uptimeSeconds?: number;
}

/**
 * Every container whose name starts with `prefix`, running or not. The engine's name filter is a
 * regular expression that also matches inside a name, so the parse keeps only true prefixes.
 */
export function listContainers(dockerBin: string, prefix: string): ToolCommand<DockerContainer[]> {
  return {
    argv: [dockerBin, 'ps', '--all', '--no-trunc', '--filter', `name=^/?${escapeRegExp(prefix)}`, '--format', '{{json .}}'],
    // Exit status 1 is how the client says "no engine": a routine refresh reads it, not the runner.
    okExitCodes: [0, 1],
    quietStdout: true,
    parse: ({ exitCode, stdout, stderr }) => {
      if (exitCode !== 0) throw new Error(`docker ps failed: ${lastLine(stderr) || `exit ${exitCode}`}`);
      return parseContainerList(stdout, prefix);
    },
  };
}

/** One JSON object a line, as `docker ps --format '{{json .}}'` prints them. */
export function parseContainerList(stdout: string, prefix: string): DockerContainer[] {
  const containers: DockerContainer[] = [];
  for (const line of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const row = readObject(line);
    const id = row?.ID;
    if (typeof id !== 'string' || typeof row?.Names !== 'string' || typeof row.State !== 'string')
      throw new UnexpectedOutputError('docker ps', 'one JSON object a line with ID, Names and State', line);
    // A linked container lists several names, comma-separated: the one without a "/" is its own.
    const name = row.Names.split(',').map((n) => n.replace(/^\//, '')).find((n) => n.startsWith(prefix) && !n.includes('/'));
    if (!name) continue;
    const container: DockerContainer = { id, name, state: row.State };
    if (typeof row.Image === 'string' && row.Image) container.image = row.Image;
    containers.push(container);
  }
  return containers;
}

/** When each container's process started, by id (`docker container inspect` of several at once). */
export function startTimes(dockerBin: string, ids: readonly string[]): ToolCommand<Map<string, Date>> {
  return {
    argv: [dockerBin, 'container', 'inspect', '--format', '{{json .Id}} {{json .State.StartedAt}}', ...ids],
    quietStdout: true,
    parse: ({ stdout }) => parseStartTimes(stdout),
  };
}

export function parseStartTimes(stdout: string): Map<string, Date> {
  const times = new Map<string, Date>();
  for (const line of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const match = /^"([0-9a-f]+)" "([^"]+)"$/.exec(line);
    if (!match) throw new UnexpectedOutputError('docker container inspect', 'an id and a start time a line', line);
    const started = new Date(match[2]);
    // A container that never started reports the zero time, 0001-01-01.
    if (!Number.isNaN(started.getTime()) && started.getUTCFullYear() > 1) times.set(match[1], started);
  }
  return times;
}

/** The state of one container, or undefined when the engine has none of that name. */
export function containerState(dockerBin: string, name: string): ToolCommand<string | undefined> {
  return {
    argv: [dockerBin, 'container', 'inspect', '--format', '{{.State.Status}}', name],
    okExitCodes: [0, 1],
    parse: ({ exitCode, stdout, stderr }) => {
      if (exitCode === 0) return stdout.trim();
      if (/no such (container|object)/i.test(stderr)) return undefined;
      throw new UnexpectedOutputError('docker container inspect', 'a container state', stderr || stdout);
    },
  };
}

/** `docker start`, `docker stop`, `docker restart`: a bottle of bot-bottle's docker backend, by name. */
export function startContainer(dockerBin: string, name: string): ToolCommand<void> {
  return { argv: [dockerBin, 'start', name], parse: noOutput };
}

export function stopContainer(dockerBin: string, name: string): ToolCommand<void> {
  return { argv: [dockerBin, 'stop', name], parse: noOutput };
}

export function restartContainer(dockerBin: string, name: string): ToolCommand<void> {
  return { argv: [dockerBin, 'restart', name], parse: noOutput };
}

/** Without `--force`: the engine refuses a running container, so the caller stops it first. */
export function removeContainer(dockerBin: string, name: string): ToolCommand<void> {
  return { argv: [dockerBin, 'rm', name], parse: noOutput };
}

/** `docker commit`: the container's file system as a new image under `tag`; resolves to its id. */
export function commit(dockerBin: string, container: string, tag: string): ToolCommand<string> {
  return { argv: [dockerBin, 'commit', container, tag], parse: ({ stdout }) => parseCommittedId(stdout) };
}

/** Docker Engine prints the new image's id as `sha256:<hex>`; Podman's docker API, the bare hex. */
export function parseCommittedId(stdout: string): string {
  const id = stdout.trim();
  return parseImageId(/^[0-9a-f]{64}$/.test(id) ? `sha256:${id}` : id);
}

export function tagImage(dockerBin: string, source: string, target: string): ToolCommand<void> {
  return { argv: [dockerBin, 'tag', source, target], parse: noOutput };
}

/** The grammar of a docker image reference, for the `<repository>:<tag>` form on the local engine. */
const REPOSITORY_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAX_REPOSITORY_LENGTH = 255;

/** Why docker would refuse `<repository>:<tag>` as an image reference, or undefined when it would take it. */
export function imageTagProblem(reference: string): string | undefined {
  const colon = reference.lastIndexOf(':');
  const repository = colon < 0 ? reference : reference.slice(0, colon);
  const tag = colon < 0 ? 'latest' : reference.slice(colon + 1);
  if (repository.length > MAX_REPOSITORY_LENGTH) return `its repository name is ${repository.length} characters long; docker allows at most ${MAX_REPOSITORY_LENGTH}`;
  if (repository !== repository.toLowerCase()) return 'docker repository names must be lower case';
  if (!repository.split('/').every((part) => REPOSITORY_COMPONENT.test(part)))
    return 'docker repository names are lower-case letters and digits, separated by ".", "_", "__" or hyphens';
  if (!TAG.test(tag)) return 'a docker tag is at most 128 letters, digits, "_", "." and "-", not starting with "." or "-"';
  return undefined;
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)?.trim() ?? '';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

type Row = Record<string, unknown> & { ID?: unknown; Names?: unknown; State?: unknown; Image?: unknown };

function readObject(line: string): Row | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Row) : undefined;
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
