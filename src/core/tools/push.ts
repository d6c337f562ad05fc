/**
 * Pushes a `docker save` tarball to a registry: with crane when it is available (what the seed
 * used), else with skopeo, which does the same job from a docker-archive.
 */
import { UserError } from '../errors';
import { noOutput, UnexpectedOutputError, type ToolCommand } from './command';
import { settingFor } from './which';

export type Pusher = { readonly tool: 'crane'; readonly bin: string } | { readonly tool: 'skopeo'; readonly bin: string };

/** Takes resolved executables (see findExecutable); crane wins when both are there. */
export function choosePusher(found: { craneBin?: string; skopeoBin?: string }): Pusher {
  if (found.craneBin) return { tool: 'crane', bin: found.craneBin };
  if (found.skopeoBin) return { tool: 'skopeo', bin: found.skopeoBin };
  throw new UserError(
    `Pushing the image needs crane or skopeo, and neither was found. Install one of them, or set ${settingFor('crane')} or ${settingFor('skopeo')}.`,
  );
}

export interface PushOptions {
  /** Plain HTTP / no TLS verification: right for the ephemeral loopback registry only. */
  insecure: boolean;
}

export function pushTarball(pusher: Pusher, tarball: string, ref: string, options: PushOptions): ToolCommand<void> {
  return { argv: pushArgv(pusher, tarball, ref, options), parse: noOutput };
}

function pushArgv(pusher: Pusher, tarball: string, ref: string, { insecure }: PushOptions): string[] {
  if (pusher.tool === 'crane') return [pusher.bin, 'push', ...(insecure ? ['--insecure'] : []), tarball, ref];
  return [pusher.bin, 'copy', ...(insecure ? ['--dest-tls-verify=false'] : []), `docker-archive:${tarball}`, `docker://${ref}`];
}

/** What `skopeo inspect` says about an image in a registry. */
export interface RemoteImage {
  name: string;
  /** Digest of the manifest. */
  digest: string;
  repoTags: string[];
  /** Digests of the (compressed) layer blobs, base first. */
  layers: string[];
  architecture?: string;
  os?: string;
}

export function inspectRemote(skopeoBin: string, ref: string, options: PushOptions): ToolCommand<RemoteImage> {
  return {
    argv: [skopeoBin, 'inspect', ...(options.insecure ? ['--tls-verify=false'] : []), `docker://${ref}`],
    quietStdout: true,
    parse: ({ stdout }) => parseInspect(stdout),
  };
}

export function parseInspect(stdout: string): RemoteImage {
  const json = readObject(stdout);
  const digest = json?.Digest;
  if (typeof digest !== 'string' || typeof json?.Name !== 'string') {
    throw new UnexpectedOutputError('skopeo inspect', 'JSON with Name and Digest', stdout);
  }
  return {
    name: json.Name,
    digest,
    repoTags: strings(json.RepoTags),
    layers: strings(json.Layers),
    architecture: typeof json.Architecture === 'string' ? json.Architecture : undefined,
    os: typeof json.Os === 'string' ? json.Os : undefined,
  };
}

function readObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}
