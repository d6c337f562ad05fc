// Debian's Chromium driven by playwright-core (never `playwright`: its install downloads
// browsers), plus the workbench helpers UI tests use. Selectors measured on VS Code 1.139.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumPath(): string {
  const p = process.env.BOT_BOTTLE_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(p)) {
    throw new Error(`Chromium not found at ${p}: apt-get install chromium (or set BOT_BOTTLE_CHROMIUM)`);
  }
  return p;
}

export interface BrowserOptions {
  headless?: boolean;
  viewport?: { width: number; height: number };
  /** Print the page's console errors and uncaught errors to stderr (default: BOT_BOTTLE_BROWSER_VERBOSE=1). */
  verbose?: boolean;
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** The fresh profile folder, removed by close(). */
  profileDir: string;
  /** Chromium's main process, which leads its process group (Playwright starts it detached). */
  pid: number | undefined;
  close(): Promise<void>;
}

const open = new Set<BrowserSession>();
process.on('exit', () => {
  // close() is async; at exit only the profile folders can still be tidied (Playwright kills the browser itself).
  for (const s of open) rmSync(s.profileDir, { recursive: true, force: true });
});

export async function launchBrowser(opts: BrowserOptions = {}): Promise<BrowserSession> {
  const executablePath = chromiumPath();
  const profileDir = mkdtempSync(join(tmpdir(), 'bb-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath,
      headless: opts.headless ?? process.env.BOT_BOTTLE_HEADED !== '1',
      args: CHROMIUM_ARGS,
      // Chromium writes crash reports under $XDG_CONFIG_HOME/chromium: keep them in the profile.
      env: { ...process.env, XDG_CONFIG_HOME: join(profileDir, 'xdg-config'), XDG_CACHE_HOME: join(profileDir, 'xdg-cache') },
      viewport: opts.viewport ?? { width: 1400, height: 900 },
    });
  } catch (err) {
    rmSync(profileDir, { recursive: true, force: true });
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const found = spawnSync('pgrep', ['-o', '-f', '--', `--user-data-dir=${profileDir}`], { encoding: 'utf8' }).stdout.trim();
  const pid = found === '' ? undefined : Number(found);
  if (opts.verbose ?? process.env.BOT_BOTTLE_BROWSER_VERBOSE === '1') {
    page.on('console', (m) => {
      if (m.type() === 'error') process.stderr.write(`[browser] ${m.text()}\n`);
    });
    page.on('pageerror', (e) => process.stderr.write(`[browser] page error: ${e.message}\n`));
  }
  let closed: Promise<void> | undefined;
  const session: BrowserSession = {
    context,
    page,
    profileDir,
    pid,
    close: () =>
      (closed ??= (async () => {
        try {
          await context.close();
        } finally {
          open.delete(session);
          rmSync(profileDir, { recursive: true, force: true });
        }
      })()),
  };
  open.add(session);
  return session;
}

/** Opens a code-server URL and waits until the workbench (activity bar included) is on screen. */
export async function openWorkbench(page: Page, url: string, timeoutMs = 60_000): Promise<void> {
  await page.goto(url, { timeout: timeoutMs }); // Playwright's own default (30 s) is too short on a busy machine
  await page.locator('.monaco-workbench').waitFor({ timeout: timeoutMs });
  await page.locator('.part.activitybar').waitFor({ timeout: timeoutMs });
}

/** The activity-bar icon of a view container, by its title. */
export function activityBarItem(page: Page, title: string): Locator {
  return page.locator(`.part.activitybar a.action-label[aria-label="${title}"]`).first();
}

/** Opens a view container (e.g. 'Bot Bottle') from the activity bar, unless it is already showing. */
export async function openView(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const icon = activityBarItem(page, title);
  await icon.waitFor({ timeout: timeoutMs });
  const selected = page.locator('.part.activitybar li.action-item.checked', {
    has: page.locator(`a.action-label[aria-label="${title}"]`),
  });
  // Clicking the icon of the container already showing would hide the side bar.
  const sidebarVisible = await page.locator('.part.sidebar').isVisible();
  if (!(sidebarVisible && (await selected.count()) > 0)) await icon.click();
  await selected.first().waitFor({ timeout: timeoutMs });
  await page.locator('.part.sidebar').waitFor({ timeout: timeoutMs });
}

/**
 * Waits until the side bar shows a view's content: a tree row or a welcome view (viewsWelcome),
 * not VS Code's placeholder "There is no data provider registered..." shown while the extension
 * is still activating.
 */
export async function waitForViewContent(page: Page, timeoutMs = 60_000): Promise<void> {
  const sidebar = page.locator('.part.sidebar');
  await sidebar.getByRole('treeitem').or(sidebar.locator('.welcome-view-content')).first().waitFor({ timeout: timeoutMs });
  await sidebar.getByText('There is no data provider registered').waitFor({ state: 'hidden', timeout: timeoutMs });
  // The view's progress bar runs while the extension loads it; allow it a while, then go on anyway.
  await sidebar.locator('.monaco-progress-container.active').first()
    .waitFor({ state: 'hidden', timeout: Math.min(timeoutMs, 15_000) }).catch(() => undefined);
}

/** A row of a tree view, by its accessible name (the label, plus description when there is one). */
export function treeItem(page: Page, name: string | RegExp): Locator {
  return page.getByRole('treeitem', { name }).first();
}

/**
 * Right-clicks a tree row and picks a context-menu item (hover, settle ~300 ms, then click).
 * A view refresh that re-renders the row closes an open menu, so this tries a few times.
 */
export async function contextMenu(page: Page, rowName: string | RegExp, itemName: string | RegExp, timeoutMs = 30_000): Promise<void> {
  const row = treeItem(page, rowName);
  const item = page.getByRole('menuitem', { name: itemName }).first();
  const end = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await row.click({ button: 'right', timeout: Math.max(1000, end - Date.now()) });
      await item.waitFor({ timeout: 5000 });
      await item.hover({ timeout: 5000 });
      await page.waitForTimeout(300);
      await item.click({ timeout: 5000 });
      return;
    } catch (err) {
      if (Date.now() >= end || attempt >= 4) {
        const shown = await page.getByRole('menuitem').allInnerTexts().catch(() => []);
        throw new Error(`context menu of ${String(rowName)}: no item ${String(itemName)} ` +
          `(menu shows: ${shown.map((t) => JSON.stringify(t.trim())).join(', ') || 'nothing'}): ${(err as Error).message}`);
      }
      await page.keyboard.press('Escape');
      await page.waitForTimeout(300);
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Runs a command by its exact palette title (e.g. 'Bot Bottle: Refresh') through F1: clicks the
 * row whose label is exactly that title (fuzzy matching may rank another command first).
 */
export async function runCommand(page: Page, title: string, timeoutMs = 30_000): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  const input = widget.locator('input').first();
  const row = widget.locator('.monaco-list-row').filter({
    has: page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(title)}\\s*$`) }),
  }).first();
  const end = Date.now() + timeoutMs;
  // Right after the workbench opens the palette may not list extension commands yet: retry.
  for (;;) {
    if (await widget.isVisible()) await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    await input.waitFor({ timeout: Math.max(1000, end - Date.now()) });
    await input.fill(`>${title}`);
    try {
      await row.waitFor({ timeout: Math.min(5000, Math.max(1000, end - Date.now())) });
      break;
    } catch (err) {
      if (Date.now() >= end) {
        const shown = await widget.locator('.monaco-list-row .label-name').allInnerTexts().catch(() => []);
        throw new Error(`no command titled ${JSON.stringify(title)} in the palette (it shows: ${shown.join(', ') || 'nothing'}): ${(err as Error).message}`);
      }
    }
  }
  await row.click();
  // The palette closes; a command may open its own quick pick right away, so do not wait long.
  await page.waitForTimeout(200);
}

/**
 * The text of every notification: the toasts on screen and, when `center` is true, the
 * notification centre too (with the smoke-test driver on, toasts are suppressed).
 */
export async function notifications(page: Page, opts: { center?: boolean } = {}): Promise<string[]> {
  const texts = await page.locator('.notification-toast .notification-list-item-message').allInnerTexts();
  if (opts.center) {
    const center = page.locator('.notifications-center');
    if (!(await center.isVisible())) {
      await runCommand(page, 'Notifications: Show Notifications');
    }
    texts.push(...(await center.locator('.notification-list-item-message').allInnerTexts()));
  }
  return texts.map((t) => t.trim()).filter((t, i, all) => t !== '' && all.indexOf(t) === i);
}

/** A status-bar entry whose text contains `text`. */
export function statusBarItem(page: Page, text: string | RegExp): Locator {
  return page.locator('.part.statusbar .statusbar-item').filter({ hasText: text }).first();
}

/**
 * The text of the Output panel as rendered (the editor draws only the lines in view: scroll or
 * filter for older ones). Opens the panel if needed; with `channel` ('Bot Bottle',
 * 'Bot Bottle: Tools', ...) switches to that channel first.
 */
export async function outputText(page: Page, channel?: string, timeoutMs = 30_000): Promise<string> {
  const panel = page.locator('.part.panel');
  const lines = panel.locator('.output-view .view-lines').first();
  if (!(await lines.isVisible())) await runCommand(page, 'Output: Focus on Output View', timeoutMs);
  await lines.waitFor({ timeout: timeoutMs });
  if (channel) {
    const select = panel.locator('select[aria-label="Switch Output"]').first();
    await select.waitFor({ timeout: timeoutMs });
    const end = Date.now() + timeoutMs;
    while ((await select.inputValue()) !== channel) {
      if (Date.now() >= end) {
        const options = await select.locator('option').allInnerTexts();
        throw new Error(`no Output channel ${JSON.stringify(channel)} (there are: ${options.join(', ')})`);
      }
      // VS Code draws its own drop-down list for this <select>: pick from that list.
      await select.click();
      const option = page.locator('.monaco-select-box-dropdown-container .monaco-list-row')
        .filter({ has: page.locator('.option-text', { hasText: new RegExp(`^\\s*${escapeRegExp(channel)}\\s*$`) }) }).first();
      try {
        await option.click({ timeout: 3000 });
      } catch {
        await page.keyboard.press('Escape');
        await select.selectOption({ label: channel }).catch(() => undefined);
      }
      await page.waitForTimeout(300);
    }
  }
  await page.waitForTimeout(200); // let the editor draw the last lines
  return (await lines.innerText()).replace(/\u00a0/g, ' ');
}

/** Saves a full-window PNG (folders created as needed); returns the path. */
export async function screenshot(page: Page, path: string): Promise<string> {
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path });
  return path;
}
