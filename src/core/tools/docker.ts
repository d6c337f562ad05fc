/**
 * Docker CLI client: builds argv and reads output. Any Docker-compatible engine works behind the
 * `docker` client (Docker Engine, or Podman's API service through DOCKER_HOST).
 */
import { join } from 'node:path';
import type { ToolCommand } from '../run';
import { noOutput, UnexpectedOutputError } from './command';

export interface BuildSpec {
  tag: string;
  contextDir: string;
  /** Defaults to `Dockerfile` in contextDir. */
  dockerfile?: string;
}

export function build(dockerBin: string, spec: BuildSpec): ToolCommand<void> {
  const dockerfile = spec.dockerfile ?? join(spec.contextDir, 'Dockerfile');
  return { argv: [dockerBin, 'build', '--tag', spec.tag, '--file', dockerfile, spec.contextDir], parse: noOutput };
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
