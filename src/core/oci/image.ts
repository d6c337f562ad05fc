/**
 * An OCI image of the archived root filesystem, described as the docker path's Dockerfile would
 * make it (see committedImage.ts), without building anything: a config and a manifest written
 * around the archives as they are. One layer for a full freeze; the last snapshot's layers and the
 * delta above them for an incremental one.
 */
import { createHash } from 'node:crypto';
import { ociRuntimeConfig } from '../committedImage';
import { UserError } from '../errors';
import { committedTag } from '../names';
import type { LayerCompression, LayerDigests } from './layer';

export const MEDIA_TYPE = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  gzipLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstdLayer: 'application/vnd.oci.image.layer.v1.tar+zstd',
  tarLayer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export function layerMediaType(compression: LayerCompression): string {
  return { gzip: MEDIA_TYPE.gzipLayer, zstd: MEDIA_TYPE.zstdLayer, none: MEDIA_TYPE.tarLayer }[compression];
}

export function layerCompression(mediaType: string): LayerCompression {
  if (mediaType === MEDIA_TYPE.gzipLayer) return 'gzip';
  if (mediaType === MEDIA_TYPE.zstdLayer) return 'zstd';
  if (mediaType === MEDIA_TYPE.tarLayer) return 'none';
  throw new Error(`${mediaType} is not a layer media type bot-bottle writes`);
}

/** A layer on disk with its digests and media type. */
export interface LayerFile extends LayerDigests {
  file: string;
  mediaType: string;
}

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
  /** The topmost layer. */
  layer: Descriptor & { file: string };
  /** Every layer, bottom first. */
  layers: (Descriptor & { file: string })[];
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
  const mediaType = parts.gzip ? MEDIA_TYPE.gzipLayer : MEDIA_TYPE.tarLayer;
  return assembleLayeredImage({ architecture: parts.architecture, created: parts.created, layers: [{ ...parts.layer, file: parts.layerFile, mediaType }] });
}

export interface LayeredImageParts {
  architecture: string;
  /** Bottom first. */
  layers: readonly LayerFile[];
  created?: Date;
}

export function assembleLayeredImage(parts: LayeredImageParts): OciImage {
  if (parts.layers.length === 0) throw new Error('An image needs at least one layer.');
  const layers = parts.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, file: l.file }));
  const config = jsonBlob(MEDIA_TYPE.config, imageConfig(parts));
  const manifest = jsonBlob(MEDIA_TYPE.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: descriptorOf(config),
    layers: layers.map(descriptorOf),
  });
  return { tag: committedTag(config.digest), manifest, config, layer: layers[layers.length - 1], layers };
}

function imageConfig(parts: LayeredImageParts): object {
  return {
    created: (parts.created ?? new Date()).toISOString(),
    architecture: parts.architecture,
    os: 'linux',
    config: ociRuntimeConfig(),
    rootfs: { type: 'layers', diff_ids: parts.layers.map((l) => l.diffId) },
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
  return new Map<string, Blob>([image.config, ...image.layers].map((blob) => [blob.digest, blob]));
}

function jsonBlob(mediaType: string, value: object): Descriptor & { bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify(value));
  return { mediaType, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, bytes };
}

function descriptorOf(blob: Descriptor): Descriptor {
  return { mediaType: blob.mediaType, digest: blob.digest, size: blob.size };
}
