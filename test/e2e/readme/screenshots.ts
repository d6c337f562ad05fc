// `npm run screenshots`: the README's pictures (media/screenshots/), taken from a clean demo in a
// real VS Code — the packaged extension in code-server, driven through Chromium, with the smolvm
// stand-in's demo bottles and no test names or paths in view. Not part of `npm test`: run it when
// the UI changes, look at every picture, and commit them.
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { contextMenu, openView, treeItem, waitForViewContent } from '../../vscode/browser';
import { dismissToasts, expand, hoverRow, ROOT, startWorkbench, waitForToast, widenSidebar, type Workbench } from '../support';

const README_SHOTS = join(ROOT, 'media', 'screenshots');
/** What bot-bottle writes for its bottles: the view shows the label and the agent. */
const METADATA: Record<string, object> = {
  'demo-api': { label: 'Fix the login flow', agent_name: 'claude', backend: 'smolmachines' },
  'demo-web': { label: 'Upgrade to React 19', agent_name: 'claude', backend: 'smolmachines' },
};
/** The state folder a user named `you` would have (made for the run, and removed after it when it was not there). */
const DEMO_HOME = '/home/you';
const DEMO_STATE = `${DEMO_HOME}/.local/state/bot-bottle/bottles`;
const WEB_TAR_ERROR = 'tar: /var/tmp/.bot-bottle-commit.tar.gz: Cannot write: No space left on device';

async function shoot(wb: Workbench, name: string): Promise<void> {
  await wb.page.waitForTimeout(400); // let animations end
  const taken = await wb.screenshot(`readme-${name}`);
  mkdirSync(README_SHOTS, { recursive: true });
  copyFileSync(taken, join(README_SHOTS, `${name}.png`));
  process.stdout.write(`      media/screenshots/${name}.png\n`);
}

async function freeze(page: Page, row: RegExp, slug: string): Promise<void> {
  await contextMenu(page, row, 'Freeze Bottle');
  await waitForToast(page, new RegExp(`Froze ${slug}`), 180_000);
  await dismissToasts(page);
}

async function answer(page: Page, text: string): Promise<void> {
  const input = page.locator('.quick-input-widget input').first();
  await input.waitFor({ timeout: 30_000 });
  await input.fill(text);
  await input.press('Enter');
}

describe('README screenshots', function () {
  this.timeout(1_200_000);

  it('takes every picture the README shows', async () => {
    if (existsSync(DEMO_HOME)) throw new Error(`${DEMO_HOME} exists: the demo's state folder goes there, so it must not`);
    const wb = await startWorkbench({
      demo: true,
      env: {
        // A copy slow enough to be seen, and a bottle whose freeze fails as a full disk would.
        SMOLVM_SIM_CP_RATE: '1500000@bot-bottle-demo-api',
        SMOLVM_SIM_FAIL: 'exec:tar@bot-bottle-demo-web=2',
        SMOLVM_SIM_FAIL_MESSAGE: WEB_TAR_ERROR,
      },
      // Tooltips show where snapshots are: a user's folder, not the run's temp folder.
      settings: { 'botBottle.refreshInterval': 0, 'workbench.colorTheme': 'Default Dark Modern', 'botBottle.stateDir': DEMO_STATE },
      beforeStart: (w) => {
        w.smolvm('machine', 'create', '--name', 'bot-bottle-demo-web', '--image', 'node:22', '--cpus', '2', '--mem', '4096', '--net');
        w.smolvm('machine', 'start', '--name', 'bot-bottle-demo-web');
        for (const [slug, metadata] of Object.entries(METADATA)) {
          const dir = join(w.env.HOME!, '.bot-bottle', 'state', slug);
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, 'metadata.json'), JSON.stringify(metadata));
        }
      },
    });
    try {
      const { page } = wb;
      await openView(page, 'Bot Bottle');
      await waitForViewContent(page);
      await treeItem(page, /^demo-web/).waitFor({ timeout: 60_000 });

      await widenSidebar(page, 560);
      // demo-docs exists only as a snapshot: frozen, then its machine deleted.
      await freeze(page, /^demo-docs/, 'demo-docs');
      wb.smolvm('machine', 'delete', '--name', 'bot-bottle-demo-docs', '-f');

      // demo-api has a history: a pinned snapshot with a note, and a newer one being made.
      await freeze(page, /^demo-api/, 'demo-api');
      await expand(page, /^demo-api/);
      await contextMenu(page, /^Snapshot of demo-api, /, 'Pin Snapshot');
      await treeItem(page, /^Snapshot of demo-api, .*, pinned$/).waitFor({ timeout: 30_000 });
      await contextMenu(page, /^Snapshot of demo-api, .*, pinned$/, 'Edit Snapshot Note…');
      await answer(page, 'before the agent rewrote the login flow');
      await contextMenu(page, /^demo-api/, 'Freeze Bottle');
      await waitForToast(page, /Freezing demo-api.*Copying the archive/s, 120_000);
      await shoot(wb, 'freeze-progress');
      await waitForToast(page, /Froze demo-api/, 180_000);
      await dismissToasts(page);

      await contextMenu(page, /^demo-web/, 'Freeze Bottle');
      await waitForToast(page, /Freezing demo-web failed/, 120_000);
      await shoot(wb, 'freeze-failed');
      await dismissToasts(page);

      await hoverRow(page, /^Snapshot of demo-api, .*, pinned$/);
      await page.locator('.workbench-hover').filter({ hasText: 'Note: before the agent' }).first().waitFor({ timeout: 10_000 });
      await shoot(wb, 'history');
      await page.mouse.move(900, 500);
      await page.waitForTimeout(800);
      await shoot(wb, 'bottles-view');

      await treeItem(page, /^demo-api/).click({ button: 'right' });
      await page.getByRole('menuitem', { name: 'Freeze Bottle' }).first().waitFor({ timeout: 10_000 });
      await shoot(wb, 'context-menu');
      await page.keyboard.press('Escape');

      await contextMenu(page, /^demo-docs/, 'Resume Bottle');
      await page.locator('.monaco-dialog-box').waitFor({ timeout: 30_000 });
      await shoot(wb, 'resume');
      await page.keyboard.press('Escape');
    } finally {
      await wb.stop();
      rmSync(DEMO_HOME, { recursive: true, force: true });
    }
  });
});
