/**
 * Pushes a `docker save` tarball to a registry: with crane (what the seed used) or with skopeo,
 * which does the same job from a docker-archive.
 */
import type { ToolCommand } from '../run';
import { noOutput } from './command';

export type Pusher = { readonly tool: 'crane'; readonly bin: string } | { readonly tool: 'skopeo'; readonly bin: string };

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
