/** `smolvm pack create`: pull an image (or take a stopped machine) and write OUT + OUT.smolmachine. */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs, unsignedValue, usage, value, type CommandSpec, type ParsedArgs } from './args';
import { agentError, configError, osErrorText } from './errors';
import { faultPoint, hostArch } from './faults';
import { exportLayer, extractLayer, mergeLayers } from './layers';
import { validateName } from './names';
import { out } from './output';
import { parseReference, pullImage, type ImageReference, type PulledImage } from './registry-pull';
import { removeOnSignal } from './signals';
import { writeSidecar, type LayerEntry, type PackManifest } from './smolmachine';
import { dataDir, readRecord, rootfsDir, type MachineRecord } from './state';
import { SIM_VERSION } from './version';

const PACK_DEFAULT_CPUS = 4;
const PACK_DEFAULT_MEMORY_MIB = 8192;
const SIDECAR_EXTENSION = '.smolmachine';
const AGENT_ROOTFS = 'agent-rootfs.tar';
/** An empty tar as GNU tar writes one: ten zero blocks. */
const EMPTY_TAR_BYTES = 10240;
const ASSEMBLING = 'Assembling packed binary';
const SPINNER_FRAME = '⠋';

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
  const forgetStaging = removeOnSignal(staging);
  try {
    out('Starting agent VM...');
    await faultPoint('pack:pull');
    const pulled = await pullWithProgress(image, (progress) => pullAndExtract(ref, staging, platform, progress));
    out(`Image: ${image} (${pulled.image.layers.length} layers, ${pulled.image.size} bytes)`);
    collectBaseAssets();
    const assets = makeAssetsDir(staging);
    const layer = exportImageLayer(pulled, staging, assets);
    await finalizePack(output, assets, imageManifest(parsed, image, pulled.image, layer));
  } finally {
    rmSync(staging, { recursive: true, force: true });
    forgetStaging();
  }
}

interface ExtractedImage {
  image: PulledImage;
  /** One directory per layer, bottom first. */
  layerDirs: string[];
}

/** The pull, which in smolvm extracts each layer as it arrives (crates/smolvm-agent/src/storage.rs:2098-2192). */
async function pullAndExtract(ref: ImageReference, staging: string, platform: { os: string; architecture: string }, progress: (percent: number) => void): Promise<ExtractedImage> {
  const image = await pullImage(ref, staging, platform);
  const layerDirs: string[] = [];
  for (const [index, layer] of image.layers.entries()) {
    const dir = join(staging, `layer-dir-${index}`);
    mkdirSync(dir);
    await extractLayer(layer.file, dir, layer.digest);
    rmSync(layer.file);
    layerDirs.push(dir);
    progress(Math.floor(((index + 1) * 100) / image.layers.length));
  }
  return { image, layerDirs };
}

/** The pull's progress bar on stderr, ending in `done.` even when the pull fails (src/cli/mod.rs:176-230). */
async function pullWithProgress<T>(image: string, pull: (progress: (percent: number) => void) => Promise<T>): Promise<T> {
  process.stderr.write(`Pulling image ${image}...`);
  const bar = (percent: number) => {
    const filled = Math.floor(percent / 5);
    const cells = Array.from({ length: 20 }, (_, i) => (i < filled ? '=' : i === filled ? '>' : ' ')).join('');
    process.stderr.write(`\rPulling image ${image}... [${cells}] ${percent}%`);
  };
  try {
    const result = await pull(bar);
    process.stderr.write(`\rPulling image ${image}... [====================] 100% — syncing...`);
    return result;
  } finally {
    process.stderr.write(`\rPulling image ${image}... done.${' '.repeat(30)}\n`);
  }
}

/** One layer is exported as it is; several are merged first (src/cli/pack.rs:363-468). */
function exportImageLayer(pulled: ExtractedImage, staging: string, assets: string): LayerEntry {
  const { image, layerDirs } = pulled;
  if (layerDirs.length === 1) {
    const prefix = `  Layer 1/1: ${image.layers[0].digest.slice(0, 19)}`;
    process.stdout.write(`${prefix}...`);
    const entry = exportToAssets(layerDirs[0], image.layers[0].digest, assets);
    out(`\r${prefix}... ${packBytes(entry.size)} done`);
    return entry;
  }
  out(`Merging ${layerDirs.length} layers in VM (one-time cost)...`);
  const merged = join(staging, 'merged');
  mkdirSync(merged);
  mergeLayers(layerDirs, merged);
  process.stdout.write('  Exporting merged layer...');
  const entry = exportToAssets(merged, `sha256:${createHash('sha256').update(`merged-${image.digest}`).digest('hex')}`, assets);
  out(` ${Math.floor(entry.size / (1024 * 1024))} MB done`);
  return entry;
}

/** `layers/<hex>.tar` in the staging area (crates/smolvm-pack/src/assets.rs:20-41, 432-435). */
function exportToAssets(dir: string, digest: string, assets: string): LayerEntry {
  const path = `layers/${digest.replace(/^sha256:/, '')}.tar`;
  exportLayer(dir, join(assets, path));
  return { digest, path, size: statSync(join(assets, path)).size };
}

/** The asset staging area; an empty agent rootfs stands in for smolvm's. */
function makeAssetsDir(staging: string): string {
  const assets = join(staging, 'assets');
  mkdirSync(join(assets, 'layers'), { recursive: true });
  writeFileSync(join(assets, AGENT_ROOTFS), Buffer.alloc(EMPTY_TAR_BYTES));
  return assets;
}

/** `fmt_bytes` (src/cli/pack.rs:1572-1578). */
function packBytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.floor(bytes / 1024)} KB` : `${Math.floor(bytes / (1024 * 1024))} MB`;
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

function collectBaseAssets(): void {
  out('Collecting runtime libraries...');
  out('Collecting agent rootfs...');
  out('Creating storage template...');
}

function baseManifest(parsed: ParsedArgs, layer: LayerEntry): PackManifest {
  return {
    mode: 'container',
    image: '',
    digest: 'none',
    platform: `linux/${hostArch()}`,
    host_platform: `linux/${hostArch()}`,
    cpus: unsignedValue(parsed, 'cpus', 255, PACK_DEFAULT_CPUS),
    mem: unsignedValue(parsed, 'mem', 0xffffffff, PACK_DEFAULT_MEMORY_MIB),
    image_size: 0,
    network: false,
    gpu: false,
    cuda: false,
    created: new Date().toISOString(),
    smolvm_version: SIM_VERSION,
    assets: { libraries: [], agent_rootfs: { path: AGENT_ROOTFS, size: EMPTY_TAR_BYTES }, layers: [layer] },
  };
}

/** Lists and a workdir only when there are some (crates/smolvm-pack/src/format.rs:334-419). */
function runtimeFields(entrypoint: string[], cmd: string[], env: string[], workdir: string | null): Partial<PackManifest> {
  return {
    ...(entrypoint.length > 0 ? { entrypoint } : {}),
    ...(cmd.length > 0 ? { cmd } : {}),
    ...(env.length > 0 ? { env } : {}),
    ...(workdir ? { workdir } : {}),
  };
}

function imageManifest(parsed: ParsedArgs, image: string, pulled: PulledImage, layer: LayerEntry): PackManifest {
  const entrypoint = value(parsed, 'entrypoint');
  return {
    ...baseManifest(parsed, layer),
    image,
    digest: pulled.digest,
    platform: `${pulled.os}/${pulled.architecture}`,
    image_size: pulled.size,
    ...runtimeFields(entrypoint ? [entrypoint] : (pulled.config.Entrypoint ?? []), pulled.config.Cmd ?? [], pulled.config.Env ?? [], pulled.config.WorkingDir || null),
  };
}

async function packStoppedMachine(parsed: ParsedArgs, name: string, output: string): Promise<void> {
  const record = readRecord(name);
  if (!record) throw agentError('pack from VM', `VM '${name}' not found`);
  if (record.state === 'running') {
    throw agentError('pack from VM', `VM '${name}' is running. Stop it first with: smolvm machine stop --name ${name}`);
  }
  const staging = makeStagingDir(value(parsed, 'staging-dir'));
  const forgetStaging = removeOnSignal(staging);
  try {
    out(`Packing VM '${name}' snapshot...`);
    collectBaseAssets();
    const assets = makeAssetsDir(staging);
    await finalizePack(output, assets, machineManifest(parsed, record, exportFlattened(rootfsDir(name), assets)));
  } finally {
    rmSync(staging, { recursive: true, force: true });
    forgetStaging();
  }
}

/** The machine's tree as one layer, content-addressed by its tar (src/pack_export.rs:542-600). */
function exportFlattened(root: string, assets: string): LayerEntry {
  const file = join(assets, 'layers', 'flat-export.tmp');
  exportLayer(root, file);
  const digest = `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
  const path = `layers/${digest.slice('sha256:'.length)}.tar`;
  renameSync(file, join(assets, path));
  return { digest, path, size: statSync(join(assets, path)).size };
}

function machineManifest(parsed: ParsedArgs, record: MachineRecord, layer: LayerEntry): PackManifest {
  const entrypoint = value(parsed, 'entrypoint');
  return {
    ...baseManifest(parsed, layer),
    mode: record.image ? 'container' : 'vm',
    image: record.image ?? `vm://${record.name}`,
    network: record.network,
    ...runtimeFields(entrypoint ? [entrypoint] : record.entrypoint.length > 0 ? record.entrypoint : ['/bin/sh'], record.cmd, record.env, record.workdir),
  };
}

async function finalizePack(output: string, assets: string, manifest: PackManifest): Promise<void> {
  const sidecar = `${output}${SIDECAR_EXTENSION}`;
  let sidecarSize: number;
  process.stdout.write(`\r${SPINNER_FRAME} ${ASSEMBLING}\x1b[K`);
  try {
    writeLauncher(output, sidecar);
    sidecarSize = await writeSidecar(sidecar, assets, manifest, { afterFirstChunk: () => faultPoint('pack:write') });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code) throw agentError('pack binary', `${output}: ${osErrorText(error)}`);
    throw error;
  } finally {
    // The spinner's Drop prints its last line on the error path too (src/cli/pack.rs:1580-1628).
    out(`\r\x1b[K${ASSEMBLING} done`);
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
