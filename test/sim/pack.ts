/** `smolvm pack create`: pull an image (or take a stopped machine) and write OUT + OUT.smolmachine. */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, type Dirent } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs, unsignedValue, usage, value, type CommandSpec, type ParsedArgs } from './args';
import { agentError, configError, osErrorText } from './errors';
import { faultPoint, hostArch } from './faults';
import { applyLayer } from './layers';
import { validateName } from './names';
import { out } from './output';
import { parseReference, pullImage, type PulledImage } from './registry-pull';
import { writeSidecar, type PackManifest } from './smolmachine';
import { dataDir, readRecord, rootfsDir, type MachineRecord } from './state';
import { SIM_VERSION } from './version';

const PACK_DEFAULT_CPUS = 4;
const PACK_DEFAULT_MEMORY_MIB = 8192;
const SIDECAR_EXTENSION = '.smolmachine';

const PACK_CREATE_SPEC: CommandSpec = {
  usage: 'smolvm pack create [OPTIONS] --output <PATH>',
  about: 'Package an OCI image or VM snapshot into a self-contained executable',
  options: [
    { long: 'image', short: 'I', value: 'IMAGE' },
    { long: 'from-vm', value: 'VM_NAME' },
    { long: 'output', short: 'o', value: 'PATH' },
    { long: 'cpus', value: 'N' },
    { long: 'mem', value: 'MiB' },
    { long: 'oci-platform', value: 'OS/ARCH' },
    { long: 'entrypoint', value: 'CMD' },
    { long: 'staging-dir', value: 'DIR' },
    { long: 'no-sign' },
  ],
  required: ['output'],
  conflicts: [['image', 'from-vm']],
};

export async function packCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'create') throw usage(PACK_CREATE_SPEC, sub ? `unrecognized subcommand '${sub}'` : "'smolvm pack' requires a subcommand but one was not provided");
  const parsed = parseArgs(PACK_CREATE_SPEC, rest);
  if (!value(parsed, 'image') && !value(parsed, 'from-vm')) {
    throw usage(PACK_CREATE_SPEC, 'the following required arguments were not provided:\n  --image <IMAGE>');
  }
  const output = value(parsed, 'output') as string;
  if (output.endsWith(SIDECAR_EXTENSION)) {
    throw configError('pack create', `output path '${output}' must not end in ${SIDECAR_EXTENSION}: the sidecar is written as <OUTPUT>${SIDECAR_EXTENSION}`);
  }
  const fromVm = value(parsed, 'from-vm');
  await faultPoint('pack', fromVm);
  if (fromVm) await packStoppedMachine(parsed, validateName(fromVm), output);
  else await packImage(parsed, value(parsed, 'image') as string, output);
}

async function packImage(parsed: ParsedArgs, image: string, output: string): Promise<void> {
  const ref = parseReference(image);
  const platform = platformOf(value(parsed, 'oci-platform'));
  const staging = makeStagingDir(value(parsed, 'staging-dir'));
  try {
    out('Starting agent VM...');
    await faultPoint('pack:pull');
    const pulled = await pullImage(ref, staging, platform);
    out(`Pulling image ${image}... done.`);
    out(`Image: ${image} (${pulled.layers.length} layers, ${pulled.size} bytes)`);
    const root = join(staging, 'rootfs');
    mkdirSync(root, { mode: 0o755 });
    unpackLayers(root, pulled);
    collectBaseAssets();
    await finalizePack(output, root, imageManifest(parsed, image, pulled));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function platformOf(text: string | undefined): { os: string; architecture: string } {
  const [os, architecture] = (text ?? `linux/${hostArch()}`).split('/');
  return { os, architecture: architecture ?? hostArch() };
}

function makeStagingDir(explicit: string | undefined): string {
  const parent = explicit ?? process.env.SMOLVM_PACK_STAGING ?? join(dataDir(), 'pack-staging');
  mkdirSync(parent, { recursive: true });
  return mkdtempSync(join(parent, 'pack-staging-'));
}

function unpackLayers(root: string, pulled: PulledImage): void {
  if (pulled.layers.length === 1) {
    const layer = pulled.layers[0];
    applyLayer(root, layer);
    out(`  Layer 1/1: ${layer.digest.slice(0, 19)}... done`);
    return;
  }
  out(`Merging ${pulled.layers.length} layers in VM (one-time cost)...`);
  for (const layer of pulled.layers) applyLayer(root, layer);
  const merged = pulled.layers.reduce((sum, layer) => sum + layer.size, 0);
  out(`  Exporting merged layer... ${Math.floor(merged / (1024 * 1024))} MB done`);
}

function collectBaseAssets(): void {
  out('Collecting runtime libraries...');
  out('Collecting agent rootfs...');
  out('Creating storage template...');
}

function baseManifest(parsed: ParsedArgs): PackManifest {
  return {
    mode: 'container',
    image: '',
    digest: 'none',
    platform: `linux/${hostArch()}`,
    host_platform: `linux/${hostArch()}`,
    entrypoint: [],
    cmd: [],
    env: [],
    workdir: null,
    user: null,
    cpus: unsignedValue(parsed, 'cpus', 255, PACK_DEFAULT_CPUS),
    mem: unsignedValue(parsed, 'mem', 0xffffffff, PACK_DEFAULT_MEMORY_MIB),
    network: false,
    created: new Date().toISOString(),
    smolvm_version: SIM_VERSION,
    image_size: 0,
    assets: { rootfs: { path: 'rootfs.tar.gz', format: 'tar+gzip', size: 0, compressed_size: 0, sha256: '', crc32: 0 }, layers: [] },
  };
}

function imageManifest(parsed: ParsedArgs, image: string, pulled: PulledImage): PackManifest {
  const manifest = baseManifest(parsed);
  const entrypoint = value(parsed, 'entrypoint');
  return {
    ...manifest,
    image,
    digest: pulled.digest,
    platform: `${pulled.os}/${pulled.architecture}`,
    entrypoint: entrypoint ? [entrypoint] : (pulled.config.Entrypoint ?? []),
    cmd: pulled.config.Cmd ?? [],
    env: pulled.config.Env ?? [],
    workdir: pulled.config.WorkingDir || null,
    user: pulled.config.User || null,
    image_size: pulled.size,
    assets: { ...manifest.assets, layers: pulled.layers.map((l) => ({ digest: l.digest, media_type: l.mediaType, size: l.size })) },
  };
}

async function packStoppedMachine(parsed: ParsedArgs, name: string, output: string): Promise<void> {
  const record = readRecord(name);
  if (!record) throw agentError('pack from VM', `VM '${name}' not found`);
  if (record.state === 'running') {
    throw agentError('pack from VM', `VM '${name}' is running. Stop it first with: smolvm machine stop --name ${name}`);
  }
  out(`Packing VM '${name}' snapshot...`);
  collectBaseAssets();
  await finalizePack(output, rootfsDir(name), machineManifest(parsed, record));
}

function machineManifest(parsed: ParsedArgs, record: MachineRecord): PackManifest {
  const entrypoint = value(parsed, 'entrypoint');
  return {
    ...baseManifest(parsed),
    mode: record.image ? 'container' : 'vm',
    image: record.image ?? `vm://${record.name}`,
    entrypoint: entrypoint ? [entrypoint] : record.entrypoint.length > 0 ? record.entrypoint : ['/bin/sh'],
    cmd: record.cmd,
    env: record.env,
    workdir: record.workdir,
    network: record.network,
  };
}

async function finalizePack(output: string, root: string, manifest: PackManifest): Promise<void> {
  const sidecar = `${output}${SIDECAR_EXTENSION}`;
  manifest.assets.rootfs.size = treeSize(root);
  let sidecarSize: number;
  try {
    writeLauncher(output, sidecar);
    sidecarSize = await writeSidecar(sidecar, root, manifest, { afterFirstChunk: () => faultPoint('pack:write', undefined, sidecar) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code) throw agentError('pack binary', `${output}: ${osErrorText(error)}`);
    throw error;
  }
  const stubSize = statSync(output).size;
  out(`Packed: ${output} (stub: ${Math.floor(stubSize / 1024)}KB, total: ${Math.floor((stubSize + sidecarSize) / 1024)}KB)`);
  out(`Assets: ${sidecar} (${Math.floor(sidecarSize / 1024)}KB compressed)`);
  out(`\nRun with: ${output}`);
  out('Note: Keep the .smolmachine file alongside the binary');
  out('Options: --help for usage');
}

function writeLauncher(output: string, sidecar: string): void {
  const script = [
    '#!/bin/sh',
    '# Packed machine launcher written by the smolvm stand-in. Keep the .smolmachine file alongside it.',
    `sidecar="$(dirname "$0")/${basename(sidecar)}"`,
    '[ -f "$sidecar" ] || { echo "Error: missing sidecar $sidecar" >&2; exit 1; }',
    'name="packed-$$"',
    'smolvm machine create --name "$name" --from "$sidecar" >/dev/null && smolvm machine start --name "$name" >/dev/null || exit 1',
    'if [ "$#" -eq 0 ]; then set -- /bin/sh; fi',
    'smolvm machine exec --name "$name" -i -- "$@"; status=$?',
    'smolvm machine delete --name "$name" -f >/dev/null',
    'exit $status',
    '',
  ].join('\n');
  writeFileSync(output, script);
  chmodSync(output, 0o755);
}

/** Bytes of regular files under root (the manifest's uncompressed size). */
function treeSize(dir: string): number {
  let total = 0;
  for (const entry of readDirEntries(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += treeSize(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

function readDirEntries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}
