// UI tests: the packaged extension (dist-vsix/bot-bottle.vsix) installed into a fresh
// code-server, driven from outside with Chromium. Usage in a test file:
//
//   const wb = useWorkbench({ demo: true });          // in a describe(): before/after hooks
//   it('...', async () => { await openView(wb().page, 'Bot Bottle'); ... });
//
// Each workbench gets its own folder (workspace, SMOLVM_DATA_DIR, botBottle.stateDir), the
// smolvm stand-in first on PATH and in botBottle.paths.smolvm. Everything is torn down in
// after(); a root after() hook fails the run if any code-server or Chromium process is left.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Page } from 'playwright-core';
import { contextMenu, launchBrowser, openWorkbench, screenshot, treeItem, type BrowserSession } from '../vscode/browser';
import { isAlive } from '../support/processes';
import { readSimLog } from '../support/sim';
import { installVsix, repoRoot, startCodeServer, type CodeServer, type SettingsFiles } from '../vscode/codeServer';

export const ROOT = repoRoot();
export const SIM_BIN = join(ROOT, 'test/sim/bin');
export const SMOLVM_STAND_IN = join(SIM_BIN, 'smolvm');
export const SCREENSHOTS = join(ROOT, 'out/screenshots');
/**
 * Where the UI tests' VSIX says its README's relative links live (scripts/package.mjs): a host
 * that cannot resolve, answered by the tests from the installed extension's own files.
 */
export const README_BASE_URL = 'https://readme.bot-bottle.test/';

let vsixOnce: string | undefined;

/**
 * Builds and packages the extension once per test process (`npm run package`) and returns the
 * VSIX. BOT_BOTTLE_VSIX=<path> uses that VSIX instead (nothing is built).
 */
export function packageVsix(): string {
  if (vsixOnce) return vsixOnce;
  if (process.env.BOT_BOTTLE_VSIX) {
    vsixOnce = process.env.BOT_BOTTLE_VSIX;
    if (!existsSync(vsixOnce)) throw new Error(`BOT_BOTTLE_VSIX=${vsixOnce} does not exist`);
    return vsixOnce;
  }
  const started = Date.now();
  const r = spawnSync('npm', ['run', 'package'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000, env: { ...process.env, README_BASE_URL } });
  const vsix = join(ROOT, 'dist-vsix/bot-bottle.vsix');
  if (r.status !== 0 || !existsSync(vsix)) {
    throw new Error(`npm run package failed (exit ${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  }
  process.stderr.write(`      (packaged ${vsix} in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  vsixOnce = vsix;
  return vsix;
}

export interface WorkbenchOptions {
  /** More environment for code-server and the extension host (merged over the stand-in's). */
  env?: Record<string, string | undefined>;
  /** More user settings (merged over botBottle.paths.smolvm and botBottle.stateDir). */
  settings?: Record<string, unknown>;
  /** Which settings files get them (default: User and Machine, see writeUserSettings). */
  settingsIn?: SettingsFiles;
  /** Create the stand-in's two demo bottles (`smolvm sim demo`) before code-server starts. */
  demo?: boolean;
  /** Runs after the folders exist and before code-server starts (seed machines, state, ...). */
  beforeStart?: (wb: Workbench) => void | Promise<void>;
  /** Install no VSIX (for tests of the harness itself). */
  noExtension?: boolean;
  /** Open the workspace untrusted (restricted mode) instead of with workspace trust off. */
  untrusted?: boolean;
}

export interface Workbench {
  server: CodeServer;
  browser: BrowserSession;
  page: Page;
  /** Per-workbench folder holding everything below; removed on stop(). */
  runDir: string;
  /** Where code-server keeps its extensions: the VSIX is installed here. */
  extensionsDir: string;
  workspace: string;
  smolvmDataDir: string;
  stateDir: string;
  /** PATH, SMOLVM_DATA_DIR and the given env: what code-server and the extension host get. */
  env: Record<string, string>;
  /** Runs the smolvm stand-in with this workbench's environment; throws on a non-zero exit. */
  smolvm(...args: string[]): string;
  /** Saves out/screenshots/<name>.png and returns its path. */
  screenshot(name: string): Promise<string>;
  stop(): Promise<void>;
}

const groups = new Set<number>();
const running = new Set<Workbench>();

function runSmolvm(env: Record<string, string>, args: string[]): string {
  const r = spawnSync(SMOLVM_STAND_IN, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`smolvm ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Starts code-server with the packaged extension and opens it in a fresh Chromium. */
export async function startWorkbench(opts: WorkbenchOptions = {}): Promise<Workbench> {
  const runDir = mkdtempSync(join(tmpdir(), 'bb-e2e-'));
  const workspace = join(runDir, 'workspace');
  const smolvmDataDir = join(runDir, 'smolvm-data');
  const stateDir = join(runDir, 'state');
  const extensionsDir = join(runDir, 'extensions');
  // A freeze also writes into ~/.bot-bottle: the workbench's own HOME, never the user's.
  const home = join(runDir, 'home');
  for (const d of [workspace, smolvmDataDir, stateDir, extensionsDir, home]) mkdirSync(d, { recursive: true });
  const env: Record<string, string> = {
    PATH: `${SIM_BIN}${delimiter}${process.env.PATH ?? ''}`,
    SMOLVM_DATA_DIR: smolvmDataDir,
    HOME: home,
  };
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;

  let server: CodeServer | undefined;
  let browser: BrowserSession | undefined;
  const handle: { wb?: Workbench } = {};
  const stop = async (): Promise<void> => {
    if (handle.wb) running.delete(handle.wb);
    await browser?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    rmSync(runDir, { recursive: true, force: true });
  };
  const partial = {
    runDir, extensionsDir, workspace, smolvmDataDir, stateDir, env,
    smolvm: (...args: string[]) => runSmolvm(env, args),
  };
  try {
    if (!opts.noExtension) installVsix(packageVsix(), extensionsDir);
    if (opts.demo) runSmolvm(env, ['sim', 'demo']);
    // beforeStart sees the folders and env; server, browser and page are not there yet.
    if (opts.beforeStart) await opts.beforeStart(partial as Workbench);
    server = await startCodeServer({
      folder: workspace,
      extensionsDir,
      userDataDir: join(runDir, 'user-data'),
      env,
      settings: {
        'botBottle.paths.smolvm': SMOLVM_STAND_IN,
        'botBottle.stateDir': stateDir,
        ...(opts.untrusted ? { 'security.workspace.trust.enabled': true, 'security.workspace.trust.startupPrompt': 'never' } : {}),
        ...opts.settings,
      },
      settingsIn: opts.settingsIn,
      workspaceTrust: opts.untrusted,
    });
    groups.add(server.pid);
    browser = await launchBrowser();
    if (browser.pid) groups.add(browser.pid);
    await openWorkbench(browser.page, `${server.url}?folder=${encodeURIComponent(workspace)}`);
  } catch (err) {
    await stop();
    throw err;
  }
  const b = browser;
  const wb: Workbench = {
    ...partial,
    server,
    browser: b,
    page: b.page,
    screenshot: (name: string) => screenshot(b.page, join(SCREENSHOTS, name.endsWith('.png') ? name : `${name}.png`)),
    stop,
  };
  handle.wb = wb;
  running.add(wb);
  return wb;
}

/**
 * Registers before/after hooks in the calling describe() and returns a getter for the workbench.
 * A failing test leaves a screenshot out/screenshots/FAILED-<title>.png.
 */
export function useWorkbench(opts: WorkbenchOptions | (() => WorkbenchOptions) = {}): () => Workbench {
  let wb: Workbench | undefined;
  before(async function () {
    this.timeout(600_000); // the first one packages the VSIX
    wb = await startWorkbench(typeof opts === 'function' ? opts() : opts);
  });
  afterEach(async function () {
    const t = this.currentTest;
    if (wb && t?.state === 'failed') {
      const name = `FAILED-${t.fullTitle().replace(/[^\w.-]+/g, '_').slice(0, 100)}`;
      const path = await wb.screenshot(name).catch(() => undefined);
      if (path) process.stderr.write(`      screenshot of the failure: ${path}\n`);
    }
  });
  after(async function () {
    this.timeout(60_000);
    await wb?.stop();
    wb = undefined;
  });
  return () => {
    if (!wb) throw new Error('the workbench is not running (did its before() hook fail?)');
    return wb;
  };
}

/**
 * The "Bot Bottle" log as the extension host wrote it (<userDataDir>/logs/<time>/exthost<n>/
 * bot-bottle.bot-bottle/Bot Bottle.log); empty until the extension has logged something.
 */
export function extensionLog(wb: Workbench): string {
  const logs = join(wb.server.userDataDir, 'logs');
  if (!existsSync(logs)) return '';
  const files = readdirSync(logs, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(join('bot-bottle.bot-bottle', 'Bot Bottle.log')))
    .sort();
  return files.map((f) => readFileSync(join(logs, f), 'utf8')).join('');
}

/** Waits for a notification toast whose text matches, and returns its text. */
export async function waitForToast(page: Page, text: RegExp, timeout = 120_000): Promise<string> {
  const toast = page.locator('.notification-toast').filter({ hasText: text }).first();
  await toast.waitFor({ timeout });
  return toast.innerText();
}

export async function dismissToasts(page: Page): Promise<void> {
  for (const close of await page.locator('.notification-toast .codicon-notifications-clear').all()) await close.click().catch(() => undefined);
}

/** How long the extension must leave smolvm alone before its view counts as settled. */
const SETTLE_MS = 1000;

/**
 * Right-clicks a row and picks a menu item once the view has settled. A whole-view refresh makes
 * VS Code forget the rows until it has fetched them again: a menu click that lands then reaches the
 * command without its row, and the command asks which bottle instead (the extension refreshes after
 * every freeze, resume and state-folder change). Each refresh starts with `smolvm machine ls`, so
 * the view has settled once no smolvm call runs and none has started for SETTLE_MS.
 */
export async function rowMenu(page: Page, simLog: string, row: RegExp, item: string): Promise<void> {
  let calls = -1;
  let quietSince = Date.now();
  for (const end = Date.now() + 60_000; Date.now() - quietSince < SETTLE_MS; await page.waitForTimeout(100)) {
    if (Date.now() > end) throw new Error(`the extension kept calling smolvm for a minute: the view never settled (${simLog})`);
    const logged = readSimLog(simLog);
    const recent = logged.filter((call) => Date.parse(call.time) > Date.now() - 120_000);
    if (logged.length !== calls || recent.some((call) => isAlive(call.pid))) {
      calls = logged.length;
      quietSince = Date.now();
    }
  }
  await contextMenu(page, row, item);
}

/** Drags the sidebar's edge so that rows show their whole description. */
export async function widenSidebar(page: Page, width: number): Promise<void> {
  const box = await page.locator('.part.sidebar').boundingBox();
  if (!box) throw new Error('the sidebar is not open');
  const edge = { x: box.x + box.width + 1, y: box.y + box.height / 2 };
  await page.mouse.move(edge.x, edge.y);
  await page.mouse.down();
  await page.mouse.move(box.x + width, edge.y, { steps: 10 });
  await page.mouse.up();
}

/** Rests the mouse on a row, moving over it as a person would: a tree row's tooltip opens on mouse movement. */
export async function hoverRow(page: Page, row: RegExp): Promise<void> {
  await page.mouse.move(900, 500);
  const box = await treeItem(page, row).boundingBox();
  if (!box) throw new Error(`the row ${row} is not on screen`);
  await page.mouse.move(box.x + 40, box.y + box.height / 2, { steps: 5 });
  await page.waitForTimeout(300);
  await page.mouse.move(box.x + 60, box.y + box.height / 2, { steps: 10 });
}

/** Expands a row once it has children (the tree re-renders it as collapsible after a refresh). */
export async function expand(page: Page, row: RegExp): Promise<void> {
  const item = page.getByRole('treeitem', { name: row }).and(page.locator('[aria-expanded]')).first();
  await item.waitFor({ timeout: 30_000 });
  if ((await item.getAttribute('aria-expanded')) === 'false') await item.locator('.monaco-tl-twistie').click();
}

/** Processes still alive in the process groups of the code-servers and Chromiums started here. */
export function strayProcesses(): string[] {
  if (groups.size === 0) return [];
  const r = spawnSync('pgrep', ['-a', '-g', [...groups].join(',')], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '' && !/<defunct>|\[.*\] <defunct>/.test(l));
}

// Root hook (this module is loaded once, while mocha loads the test files): nothing may outlive
// the run. Workbenches a test started and never stopped are stopped here, and the run fails.
after(async function () {
  this.timeout(60_000);
  const leaked = running.size;
  for (const wb of [...running]) await wb.stop();
  const end = Date.now() + 10_000;
  let stray = strayProcesses();
  while (stray.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    stray = strayProcesses();
  }
  if (stray.length > 0) {
    for (const g of groups) {
      try {
        process.kill(-g, 'SIGKILL');
      } catch {
        // gone
      }
    }
    throw new Error(`processes left behind after the UI tests (now killed):\n${stray.join('\n')}`);
  }
  if (leaked > 0) throw new Error(`${leaked} workbench(es) were started and never stopped (stopped now): call stop() or use useWorkbench()`);
});
