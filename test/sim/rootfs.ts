/**
 * The base root filesystem every `machine create --image` machine starts from: real GNU tar,
 * gzip, dash/bash, coreutils and findutils copied from the host with the libraries `ldd`
 * names, plus a `node` user (uid 1000) with a home and a Claude temp folder. Built once per
 * data dir into `templates/` and copied per machine with `cp -a`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SimError } from './errors';
import { dataDir } from './state';

const TEMPLATE_NAME = 'base-rootfs-v3';
const HOST_BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];
const MERGED_USR_LINKS = ['bin', 'sbin', 'lib', 'lib64'];

const REQUIRED_TOOLS = [
  'sh', 'bash', 'tar', 'gzip', 'find', 'xargs',
  'ls', 'cat', 'cp', 'mv', 'rm', 'mkdir', 'rmdir', 'chmod', 'chown', 'chgrp', 'stat', 'id', 'true', 'false',
  'sleep', 'touch', 'head', 'tail', 'wc', 'sha256sum', 'md5sum', 'df', 'du', 'env', 'echo', 'printf', 'ln',
  'readlink', 'realpath', 'basename', 'dirname', 'sort', 'uniq', 'tr', 'cut', 'date', 'uname', 'whoami',
  'test', '[', 'tee', 'dd', 'sync', 'mktemp', 'seq', 'yes', 'nproc', 'cmp', 'diff',
];
const OPTIONAL_TOOLS = ['dash', 'gunzip', 'zcat', 'grep', 'sed', 'awk', 'setpriv', 'getent', 'tty', 'stty', 'hostname'];

const NODE_UID = 1000;

/** Copies a fresh base root filesystem to `dest` (which must not exist). */
export function createBaseRootfs(dest: string): void {
  copyTree(ensureBaseTemplate(), dest);
}

export function copyTree(source: string, dest: string): void {
  const result = spawnSync('cp', ['-a', '--reflink=auto', source, dest], { encoding: 'utf8' });
  if (result.status !== 0) throw new SimError(`could not copy root filesystem: ${result.stderr.trim()}`);
}

function ensureBaseTemplate(): string {
  const templates = join(dataDir(), 'templates');
  const template = join(templates, TEMPLATE_NAME);
  if (existsSync(template)) return template;
  mkdirSync(templates, { recursive: true });
  const staging = join(templates, `.${TEMPLATE_NAME}.${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  buildRootfs(staging);
  try {
    renameSync(staging, template);
  } catch {
    // A concurrent create finished its template first: use that one.
    rmSync(staging, { recursive: true, force: true });
  }
  return template;
}

function buildRootfs(root: string): void {
  mkdirSync(root, { mode: 0o755 });
  makeLayout(root);
  const binaries = copyTools(root);
  copySharedLibraries(root, binaries);
  writeSystemFiles(root);
  writeNodeHome(root);
  writeVolatileTrees(root);
}

function makeLayout(root: string): void {
  for (const dir of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'usr/local/bin', 'etc', 'root', 'home', 'var/log', 'var/lib', 'var/cache', 'opt', 'srv', 'mnt']) {
    mkdirSync(join(root, dir), { recursive: true, mode: 0o755 });
  }
  chmodSync(join(root, 'root'), 0o700);
  for (const link of MERGED_USR_LINKS) {
    const host = `/${link}`;
    const isLink = existsSync(host) && lstatSync(host).isSymbolicLink();
    if (isLink) symlinkSync(readlinkSync(host), join(root, link));
    else mkdirSync(join(root, link), { recursive: true });
  }
}

/** Copies each tool's real file into /usr/bin (aliases such as sh -> dash become symlinks). */
function copyTools(root: string): string[] {
  const copied: string[] = [];
  for (const tool of [...REQUIRED_TOOLS, ...OPTIONAL_TOOLS]) {
    const hostPath = findHostTool(tool);
    if (!hostPath) {
      if (REQUIRED_TOOLS.includes(tool)) throw new SimError(`cannot build the base rootfs: '${tool}' is not installed on this host`);
      continue;
    }
    const real = realpathSync(hostPath);
    const target = join(root, 'usr/bin', basename(real));
    if (!existsSync(target)) {
      copyFileSync(real, target);
      chmodSync(target, 0o755);
      copied.push(real);
    }
    if (basename(real) !== tool && !existsSync(join(root, 'usr/bin', tool))) symlinkSync(basename(real), join(root, 'usr/bin', tool));
  }
  return copied;
}

function findHostTool(tool: string): string | undefined {
  return HOST_BIN_DIRS.map((dir) => join(dir, tool)).find((path) => existsSync(path));
}

function copySharedLibraries(root: string, binaries: string[]): void {
  const libraries = new Set<string>();
  for (const binary of binaries) {
    for (const library of librariesOf(binary)) libraries.add(library);
  }
  for (const library of libraries) {
    const target = join(root, library);
    if (existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(realpathSync(library), target);
  }
}

/** Absolute library paths from `ldd` output (scripts and static binaries have none). */
function librariesOf(binary: string): string[] {
  const result = spawnSync('ldd', [binary], { encoding: 'utf8' });
  if (result.status !== 0) return [];
  const paths: string[] = [];
  for (const line of result.stdout.split('\n')) {
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (match) paths.push(match[1]);
  }
  return paths;
}

function writeSystemFiles(root: string): void {
  const files: Record<string, string> = {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n',
    'etc/group': 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n',
    'etc/hostname': 'smolvm\n',
    'etc/hosts': '127.0.0.1 localhost\n::1 localhost\n',
    'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
    'etc/os-release': 'PRETTY_NAME="bot-bottle smolvm stand-in"\nID=smolvm-sim\n',
    'root/.profile': 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n',
  };
  for (const [path, content] of Object.entries(files)) writeFileSync(join(root, path), content, { mode: 0o644 });
}

function writeNodeHome(root: string): void {
  const home = join(root, 'home/node');
  const entries: Array<[string, string | null, number]> = [
    ['', null, 0o755],
    ['.profile', 'export PATH=/usr/local/bin:/usr/bin:/bin\n', 0o644],
    ['.claude', null, 0o700],
    ['.claude/settings.json', '{"theme":"dark"}\n', 0o600],
    ['project', null, 0o755],
    ['project/README.md', '# demo project\n\nA bottle for the bot-bottle smolvm stand-in.\n', 0o644],
    ['project/notes.txt', 'work in progress\n', 0o640],
    ['project/run.sh', '#!/bin/sh\necho running the demo project\n', 0o755],
  ];
  for (const [relative, content, mode] of entries) {
    const path = join(home, relative);
    if (content === null) mkdirSync(path, { recursive: true });
    else writeFileSync(path, content);
    chmodSync(path, mode);
    chownSync(path, NODE_UID, NODE_UID);
  }
}

/** /tmp, /var/tmp, /proc, /sys, /dev and /run: plain files, so a tar that fails to exclude them shows. */
function writeVolatileTrees(root: string): void {
  const files: Record<string, string> = {
    'proc/cpuinfo': 'processor\t: 0\nmodel name\t: smolvm stand-in vCPU\n',
    'proc/meminfo': 'MemTotal:        8388608 kB\n',
    'proc/version': 'Linux version 6.12.0-smolvm (stand-in)\n',
    'proc/1/cmdline': '/sbin/smolvm-agent\0',
    'sys/kernel/hostname': 'smolvm\n',
    'sys/class/net/lo/operstate': 'unknown\n',
    'dev/null': '',
    'dev/zero': '',
    'dev/console': '',
    'run/smolvm-agent.pid': '1\n',
    'run/lock/.keep': '',
    'tmp/agent-scratch.txt': 'scratch\n',
    'var/tmp/cache.bin': 'cached bytes\n',
  };
  for (const dir of ['dev/pts', 'dev/shm', 'sys/fs/cgroup', 'tmp', 'var/tmp']) mkdirSync(join(root, dir), { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  chmodSync(join(root, 'tmp'), 0o1777);
  chmodSync(join(root, 'var/tmp'), 0o1777);
  const claudeTmp = join(root, 'tmp/claude-1000');
  mkdirSync(claudeTmp, { mode: 0o700 });
  writeFileSync(join(claudeTmp, 'session.lock'), 'locked\n');
  chownSync(claudeTmp, NODE_UID, NODE_UID);
  chownSync(join(claudeTmp, 'session.lock'), NODE_UID, NODE_UID);
}
