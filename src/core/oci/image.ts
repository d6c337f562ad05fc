/**
 * An OCI image made of one layer, the archived root filesystem, described as the docker path's
 * Dockerfile would make it (see committedImage.ts), without building anything: a config and a
 * manifest written around the archive as it is.
 */
import { createHash } from 'node:crypto';
import { ociRuntimeConfig } from '../committedImage';
import { UserError } from '../errors';
import { committedTag } from '../names';
import type { LayerDigests } from './layer';

export const MEDIA_TYPE = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  gzipLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  tarLayer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** A blob held in memory (config, manifest) or read from disk when served (the layer). */
export type Blob = Descriptor & ({ bytes: Buffer } | { file: string });

export interface OciImage {
  /** The tag it is served under: the first 16 hex digits of the config digest, as an image id. */
  tag: string;
  manifest: Descriptor & { bytes: Buffer };
  config: Descriptor & { bytes: Buffer };
  layer: Descriptor & { file: string };
}

export interface ImageParts {
  /** OCI architecture name (`amd64`, `arm64`). */
  architecture: string;
  layerFile: string;
  layer: LayerDigests;
  gzip: boolean;
  created?: Date;
}

export function assembleImage(parts: ImageParts): OciImage {
  const layer = { mediaType: parts.gzip ? MEDIA_TYPE.gzipLayer : MEDIA_TYPE.tarLayer, digest: parts.layer.digest, size: parts.layer.size, file: parts.layerFile };
  const config = jsonBlob(MEDIA_TYPE.config, imageConfig(parts));
  const manifest = jsonBlob(MEDIA_TYPE.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: descriptorOf(config),
    layers: [descriptorOf(layer)],
  });
  return { tag: committedTag(config.digest), manifest, config, layer };
}

function imageConfig(parts: ImageParts): object {
  return {
    created: (parts.created ?? new Date()).toISOString(),
    architecture: parts.architecture,
    os: 'linux',
    config: ociRuntimeConfig(),
    rootfs: { type: 'layers', diff_ids: [parts.layer.diffId] },
  };
}

/** The OCI name of the CPU that `uname -m` reports; smolvm runs on these two only. */
export function ociArchitecture(unameMachine: string): string {
  const machine = unameMachine.trim();
  if (machine === 'x86_64' || machine === 'amd64') return 'amd64';
  if (machine === 'aarch64' || machine === 'arm64') return 'arm64';
  throw new UserError(`The bottle reports the CPU architecture "${machine}", which bot-bottle cannot describe as an image (amd64 and arm64 only).`);
}

/** Every blob a client may fetch, by digest. */
export function blobsOf(image: OciImage): Map<string, Blob> {
  return new Map<string, Blob>([image.config, image.layer].map((blob) => [blob.digest, blob]));
}

function jsonBlob(mediaType: string, value: object): Descriptor & { bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify(value));
  return { mediaType, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, bytes };
}

function descriptorOf(blob: Descriptor): Descriptor {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
}
