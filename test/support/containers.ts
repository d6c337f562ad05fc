/**
 * A real container engine for integration tests: Podman's Docker-compatible API service, with all
 * of its state in a temp folder (nothing in /var/lib/containers), reached by the real `docker`
 * client through DOCKER_HOST. Set up as test-harness.md describes. A missing tool fails loudly;
 * these tests never skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { groupAlive } from './processes';

export interface ContainerService {
  /** `unix://<dir>/podman.sock` */
  readonly dockerHost: string;
  /** For child processes: DOCKER_HOST, DOCKER_CONFIG and the three CONTAINERS_* files. */
  readonly env: Readonly<Record<string, string>>;
  /** Where the service keeps everything; gone after stop(). */
  readonly dir: string;
  readonly pid: number;
  /** Stops the service's process group and removes its state. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface ContainerServiceOptions {
  /** vfs (default) copies layers and leaves no mounts; overlay is faster for big images. */
  storageDriver?: 'vfs' | 'overlay';
}

/** The host tools the container tests drive, by the name they have on Debian. */
export interface ContainerTools {
  podman: string;
  docker: string;
  skopeo: string;
  registry: string;
}

const INSTALL_HINT =
  'Install them with: apt-get install -y --no-install-recommends docker-registry skopeo podman buildah runc uidmap catatonit fuse-overlayfs busybox-static ' +
  '(and a docker client; see test-harness.md).';

/** Paths of podman, docker, skopeo and Distribution's registry; throws naming the first one missing. */
export function requireContainerTools(): ContainerTools {
  const find = (...names: string[]) => {
    const found = names.map(onPath).find(Boolean);
    if (!found) throw new Error(`${names.join(' or ')} was not found on PATH: the container integration tests need it. ${INSTALL_HINT}`);
    return found;
  };
  find('runc');
  return { podman: find('podman'), docker: find('docker'), skopeo: find('skopeo'), registry: find('registry', 'docker-registry') };
}

let shared: Promise<ContainerService> | undefined;

/** Starts the service, or returns the one already running in this test process. */
export function startContainerService(options: ContainerServiceOptions = {}): Promise<ContainerService> {
  shared ??= launch(options).catch((error: unknown) => {
    shared = undefined;
    throw error;
  });
  return shared;
}

async function launch(options: ContainerServiceOptions): Promise<ContainerService> {
  const tools = requireContainerTools();
  const dir = mkdtempSync(join(tmpdir(), 'bb-podman-'));
  const socket = join(dir, 'podman.sock');
  const env = writeConfiguration(dir, options.storageDriver ?? 'vfs', `unix://${socket}`);
  const logFile = join(dir, 'podman.log');
  writeFileSync(logFile, '');
  const child = spawn(tools.podman, ['system', 'service', '--time=0', `unix://${socket}`], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  const serviceLog: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => serviceLog.push(chunk.toString()));
  const pid = child.pid ?? 0;
  const killOnExit = () => signalGroup(pid, 'SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      removeContainers(tools.docker, env);
      await stopGroup(child);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
      shared = undefined;
    })());

  try {
    await waitForPing(socket, child, () => serviceLog.join(''));
  } catch (error) {
    await stop();
    throw error;
  }
  return { dockerHost: env.DOCKER_HOST, env, dir, pid, stop };
}

function writeConfiguration(dir: string, driver: 'vfs' | 'overlay', dockerHost: string): Record<string, string> {
  const q = (value: string) => JSON.stringify(value);
  for (const sub of ['tmp', 'graph', 'run', 'docker-config']) mkdirSync(join(dir, sub));
  const containersConf = join(dir, 'containers.conf');
  const storageConf = join(dir, 'storage.conf');
  const registriesConf = join(dir, 'registries.conf');
  // crun fails here (cgroups hybrid mode) and the sandbox may not raise RLIMIT_NOFILE.
  writeFileSync(containersConf, [
    '[containers]',
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
    'netns = "none"',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    'runtime = "runc"',
    `tmp_dir = ${q(join(dir, 'tmp'))}`,
    '',
  ].join('\n'));
  writeFileSync(storageConf, [
    '[storage]',
    `driver = ${q(driver)}`,
    `graphroot = ${q(join(dir, 'graph'))}`,
    `runroot = ${q(join(dir, 'run'))}`,
    '',
  ].join('\n'));
  // Plain HTTP for every port of the loopback registries the tests start.
  writeFileSync(registriesConf, ['[[registry]]', 'location = "127.0.0.1"', 'insecure = true', ''].join('\n'));
  return {
    DOCKER_HOST: dockerHost,
    DOCKER_CONFIG: join(dir, 'docker-config'),
    CONTAINERS_CONF: containersConf,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
  };
}

/**
 * Containers outlive the service: each runs under its own conmon, outside the service's process
 * group, and would keep running from a folder that is about to be deleted.
 */
function removeContainers(docker: string, env: Record<string, string>): void {
  const options = { env: { ...process.env, ...env }, encoding: 'utf8' as const, timeout: 60_000 };
  const ids = spawnSync(docker, ['ps', '--all', '--quiet'], options).stdout?.split('\n').filter(Boolean) ?? [];
  if (ids.length > 0) spawnSync(docker, ['rm', '--force', ...ids], options);
}

async function waitForPing(socket: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`podman system service exited (${child.exitCode ?? child.signalCode}) before it answered:\n${output()}`);
    }
    if ((await ping(socket)) === 'OK') return;
    await sleep(25);
  }
  throw new Error(`podman system service did not answer /_ping on ${socket} within 15 s:\n${output()}`);
}

function ping(socket: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

async function stopGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (!pid) return;
  signalGroup(pid, 'SIGTERM');
  if (await waitUntil(() => !groupAlive(pid), 5000)) return;
  signalGroup(pid, 'SIGKILL');
  if (!(await waitUntil(() => !groupAlive(pid), 5000))) throw new Error(`podman's process group ${pid} survived SIGKILL`);
}

/** Overlay storage can leave mounts under the graph root; rm -rf must not walk into them. */
function unmountUnder(dir: string): void {
  const mountPoints = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => Boolean(point) && point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mountPoints) {
    const result = spawnSync('umount', [point], { encoding: 'utf8' });
    if (result.status !== 0) spawnSync('umount', ['-l', point]);
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      if (statSync(candidate).isFile()) {
        accessSync(candidate, constants.X_OK);
        return candidate;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    if (pid) process.kill(-pid, signal);
  } catch {
    // gone already
  }
}


async function waitUntil(condition: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= end) return false;
    await sleep(20);
  }
  return true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
