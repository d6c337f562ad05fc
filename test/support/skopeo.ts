/** skopeo inspect, which only the tests use to read an image back from a registry. */
import type { ToolCommand } from '../../src/core/run';
import { UnexpectedOutputError } from '../../src/core/tools/command';
import type { PushOptions } from '../../src/core/tools/push';

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
