/**
 * The "inside of the VM": commands run chrooted into the machine's root folder (util-linux
 * `unshare --root --wd`, which is chroot + chdir), and guest paths resolve inside that root.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SimError } from './errors';
import type { MountSpec } from './state';

export const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const MAX_SYMLINKS = 40;

/** Host path of a guest path, following symlinks the way the guest kernel would (never out of root). */
export function resolveInRoot(root: string, guestPath: string, followLast = true): string {
  const pending = guestPath.split('/');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const target = pending.length > 0 || followLast ? linkTarget(join(root, ...resolved, part)) : undefined;
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    links += 1;
    if (links > MAX_SYMLINKS) throw Object.assign(new Error('Too many levels of symbolic links'), { code: 'ELOOP' });
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/'));
  }
  return join(root, ...resolved);
}

function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Where the guest would find `command` (absolute, relative or on PATH); undefined if nowhere. */
export function findGuestCommand(root: string, command: string, path: string, cwd: string): string | undefined {
  if (command.includes('/')) {
    const guestPath = command.startsWith('/') ? command : `${cwd}/${command}`;
    return isExecutable(resolveInRoot(root, guestPath)) ? guestPath : undefined;
  }
  for (const dir of path.split(':').filter(Boolean)) {
    if (isExecutable(resolveInRoot(root, `${dir}/${command}`))) return `${dir}/${command}`;
  }
  return undefined;
}

function isExecutable(hostPath: string): boolean {
  try {
    accessSync(hostPath, constants.X_OK);
    return statSync(hostPath).isFile();
  } catch {
    return false;
  }
}

export function isGuestDirectory(root: string, guestPath: string): boolean {
  try {
    return statSync(resolveInRoot(root, guestPath)).isDirectory();
  } catch {
    return false;
  }
}

export interface GuestSpawnOptions {
  cwd: string;
  env: Record<string, string>;
  stdio: StdioOptions;
  detached?: boolean;
  /** Run as this uid and gid instead of root. */
  user?: { uid: number; gid: number };
  /** The machine's `-v` mounts, bound at their guest paths for this command only. */
  mounts?: readonly MountSpec[];
}

/** Machines are real root filesystems (chroot, owners 0/1000/501): the stand-in needs uid 0. */
export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new SimError(`the smolvm stand-in keeps machines as real root filesystems (chroot, file owners) and must run as root (uid 0), not uid ${process.getuid?.()}`);
  }
}

export function spawnInGuest(root: string, argv: readonly string[], options: GuestSpawnOptions): ChildProcess {
  requireRoot();
  const mounts = options.mounts ?? [];
  writeMountTable(root, mounts);
  const user = options.user ? [`--setuid=${options.user.uid}`, `--setgid=${options.user.gid}`] : [];
  const chroot = ['unshare', `--root=${root}`, `--wd=${options.cwd}`, ...user, '--', ...argv];
  const [file, ...args] = mounts.length === 0 ? chroot : withMounts(root, mounts, chroot);
  return spawn(file, args, { env: options.env, stdio: options.stdio, detached: options.detached ?? false });
}

/** Binds each host folder at its guest path, then runs `then`; all in a mount namespace of its own, gone with the command. */
const BIND_THEN_EXEC = 'while [ "$1" != -- ]; do mount --bind "$1" "$2"; if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi; shift 3; done; shift; exec "$@"';

function withMounts(root: string, mounts: readonly MountSpec[], then: readonly string[]): string[] {
  const binds = mounts.flatMap((mount) => [mount.host, mountPoint(root, mount), mount.readOnly ? 'ro' : 'rw']);
  return ['unshare', '--mount', '--propagation=private', '--', 'sh', '-ec', BIND_THEN_EXEC, 'sh', ...binds, '--', ...then];
}

/** The guest path on the host, made if missing (a folder, or an empty file for a file mount), never outside the root. */
function mountPoint(root: string, mount: MountSpec): string {
  const target = resolveInRoot(root, mount.guest);
  if (existsSync(target)) return target;
  if (statSync(mount.host).isDirectory()) mkdirSync(target, { recursive: true });
  else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, '');
  }
  return target;
}

/**
 * The guest's `/proc/self/mounts`: the workload's own file systems, then each `-v` mount as smolvm
 * makes it: virtiofs, tagged `smolvm<index>` (src/data/storage.rs:210-212), mounted by the agent
 * (crates/smolvm-agent/src/storage.rs:3389-3450) and bound at its guest path
 * (crates/smolvm-agent/src/main.rs:3588-3595). The kernel writes space, tab, newline and `\` in
 * octal. Written atomically: other commands in the machine may be reading it.
 */
function writeMountTable(root: string, mounts: readonly MountSpec[]): void {
  const rows = [
    'overlay / overlay rw,relatime 0 0',
    'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0',
    'tmpfs /dev tmpfs rw,nosuid,size=65536k,mode=755 0 0',
    'sysfs /sys sysfs ro,nosuid,nodev,noexec,relatime 0 0',
    ...mounts.map((mount, index) => `smolvm${index} ${escapeMountField(mount.guest)} virtiofs ${mount.readOnly ? 'ro' : 'rw'},relatime 0 0`),
  ];
  const dir = join(root, 'proc', 'self');
  mkdirSync(dir, { recursive: true });
  const staging = join(dir, `.mounts.${process.pid}`);
  writeFileSync(staging, `${rows.join('\n')}\n`);
  renameSync(staging, join(dir, 'mounts'));
}

function escapeMountField(text: string): string {
  return text.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** Every live descendant of `pid`, read from /proc. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = parentOf(Number(entry));
    if (parent === undefined) continue;
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * A `User` (`name`, `uid`, `name:group` or `uid:gid`) as numbers, looked up in the guest's own
 * /etc/passwd and /etc/group, as crun does (crates/smolvm-agent/src/main.rs:5600-5605).
 */
export function resolveGuestUser(root: string, user: string): { uid: number; gid: number } {
  const [name, group] = user.split(':');
  const passwd = guestTable(root, 'etc/passwd').find((fields) => fields[0] === name || fields[2] === name);
  const uid = /^\d+$/.test(name) ? Number(name) : Number(passwd?.[2]);
  if (Number.isNaN(uid)) throw new SimError(`agent operation failed: exec: unable to find user ${name}: no matching entries in passwd file`);
  if (group === undefined) return { uid, gid: Number(passwd?.[3] ?? 0) };
  const groupLine = guestTable(root, 'etc/group').find((fields) => fields[0] === group || fields[2] === group);
  const gid = /^\d+$/.test(group) ? Number(group) : Number(groupLine?.[2]);
  if (Number.isNaN(gid)) throw new SimError(`agent operation failed: exec: unable to find group ${group}: no matching entries in group file`);
  return { uid, gid };
}

function guestTable(root: string, path: string): string[][] {
  try {
    return readFileSync(resolveInRoot(root, `/${path}`), 'utf8').split('\n').map((line) => line.split(':'));
  } catch {
    return [];
  }
}

/** Kills a process and everything below it (a guest command's whole tree). */
export function killTree(pid: number): void {
  for (const victim of [pid, ...descendantsOf(pid)]) {
    try {
      process.kill(victim, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}
