// The packaged extension in code-server lists a bottle of bot-bottle's docker backend (a real
// container on the podman service, reached by the real docker client) next to the stand-in's
// smolmachines bottles. The same workbench (one launch less) then takes the smolmachines bottles
// through their life: rows to scan, Start/Stop/Delete from the context menu, a freeze of two
// selected bottles with one summary, and a keybinding. Freezes take the native image path with an
// uncompressed archive, the quickest there is.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { activityBarItem, openView, outputText, runCommand, treeItem, waitForViewContent } from '../vscode/browser';
import { startContainerService, type ContainerService } from '../support/containers';
import { readSimLog } from '../support/sim';
import { rowMenu, useWorkbench } from './support';

const IMAGE = 'bb-busybox-e2e:1';
const AGO = String.raw`(just now|\d+ (min|h|d) ago)`;
const sidecarOf = (stateDir: string, slug: string) => join(stateDir, slug, 'committed-smolmachine.smolmachine');

async function waitForToast(page: Page, text: RegExp, timeout = 120_000): Promise<string> {
  const toast = page.locator('.notification-toast').filter({ hasText: text }).first();
  await toast.waitFor({ timeout });
  return toast.innerText();
}

describe('docker bottles in a real VS Code', function () {
  let containers: ContainerService;
  const context = mkdtempSync(join(tmpdir(), 'bb-e2e-image-'));
  const engine = (...args: string[]) => execFileSync('docker', args, { env: { ...process.env, ...containers.env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  before(async () => {
    containers = await startContainerService();
    mkdirSync(join(context, 'bin'));
    copyFileSync('/bin/busybox', join(context, 'bin', 'busybox'));
    chmodSync(join(context, 'bin', 'busybox'), 0o755);
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY bin /bin\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["/bin/sleep", "3600"]\n');
    engine('build', '--tag', IMAGE, context);
    engine('run', '--detach', '--name', 'bot-bottle-web-e2e01', IMAGE);
  });
  /** Every smolvm call of this workbench (the stand-in's SMOLVM_SIM_LOG), for rowMenu to wait on. */
  const simLog = join(context, 'smolvm-calls.jsonl');
  after(async () => {
    await containers?.stop();
    rmSync(context, { recursive: true, force: true });
  });

  const wb = useWorkbench(() => ({ demo: true, env: { ...containers.env, SMOLVM_SIM_LOG: simLog, SMOLVM_SIM_FAIL: 'stop@bot-bottle-demo-api' }, settings: { 'botBottle.refreshInterval': 0, 'botBottle.freeze.compression': 'none' } }));

  it('shows the docker bottle, running, with its image, beside the smolmachines bottles', async () => {
    const { page } = wb();
    await activityBarItem(page, 'Bot Bottle').waitFor({ timeout: 60_000 });
    await openView(page, 'Bot Bottle');
    await waitForViewContent(page);
    await treeItem(page, /^demo-api.*running/).waitFor({ timeout: 30_000 });
    await treeItem(page, /^web-e2e01, docker, running, .*bb-busybox-e2e:1/).waitFor({ timeout: 30_000 });
  });

  describe("a bottle's life", () => {
    it('lists each bottle as state, how long ago, image; the title bar toggles the order', async () => {
      const { page } = wb();
      await openView(page, 'Bot Bottle');
      await waitForViewContent(page);
      await treeItem(page, new RegExp(`^demo-api, running, ${AGO}, localhost:5000/bot-bottle/demo:latest$`)).waitFor({ timeout: 30_000 });
      await treeItem(page, new RegExp(`^demo-docs, running, ${AGO}, localhost:5000/bot-bottle/demo:latest$`)).waitFor({ timeout: 30_000 });
      await wb().screenshot('lifecycle-rows');
      const toggle = (label: string) => page.locator(`.part.sidebar .actions-container .action-label[aria-label="${label}"]`).first();
      await toggle('Sort by Last Activity').click();
      await toggle('Sort by Name').waitFor({ timeout: 10_000 });
      await toggle('Sort by Name').click();
      await toggle('Sort by Last Activity').waitFor({ timeout: 10_000 });
    });

    it('stops and starts a bottle from its context menu', async () => {
      const { page } = wb();
      await treeItem(page, /^demo-docs, running/).click({ button: 'right' });
      await page.getByRole('menuitem', { name: 'Stop Bottle' }).first().waitFor({ timeout: 10_000 });
      await wb().screenshot('lifecycle-context-menu');
      const shown = (await page.getByRole('menuitem').allInnerTexts()).map((t) => t.trim().split('\n')[0]);
      for (const item of ['Freeze Bottle', 'Stop Bottle', 'Restart Bottle', 'Delete Bottle…']) assert.ok(shown.includes(item), `${item} in ${shown.join(', ')}`);
      assert.ok(!shown.includes('Start Bottle'), 'no Start on a running bottle');
      await page.keyboard.press('Escape');

      await rowMenu(page, simLog, /^demo-docs, running/, 'Stop Bottle');
      await treeItem(page, /^demo-docs, stopped,/).waitFor({ timeout: 30_000 });
      await rowMenu(page, simLog, /^demo-docs, stopped/, 'Start Bottle');
      await treeItem(page, /^demo-docs, running,/).waitFor({ timeout: 30_000 });
      const calls = readSimLog(simLog).map((c) => c.argv.join(' '));
      assert.ok(calls.includes('machine stop --name bot-bottle-demo-docs'), calls.join('\n'));
      assert.ok(calls.includes('machine start --name bot-bottle-demo-docs'), calls.join('\n'));
    });

    it('freezes two selected bottles, each with its progress, then says so once', async () => {
      const { page } = wb();
      await treeItem(page, /^demo-api, running/).click();
      await treeItem(page, /^demo-docs, running/).click({ modifiers: ['Control'] });
      await rowMenu(page, simLog, /^demo-docs, running/, 'Freeze Bottle');
      await waitForToast(page, /Freezing demo-(api|docs)/, 60_000);
      await waitForToast(page, /^Froze 2 bottles\.$/m, 180_000);
      for (const slug of ['demo-api', 'demo-docs']) assert.ok(existsSync(sidecarOf(wb().stateDir, slug)), `${slug} has a snapshot`);
      for (const close of await page.locator('.notification-toast .codicon-notifications-clear').all()) await close.click().catch(() => undefined);
    });

    it('opens a shell in the selected bottle with Ctrl+Shift+` while the view has focus', async () => {
      const { page } = wb();
      await treeItem(page, /^demo-api, running/).click();
      await page.keyboard.press('Control+Shift+Backquote');
      const shell = (): boolean => readSimLog(simLog).some((c) => c.argv.slice(0, 6).join(' ') === 'machine exec --name bot-bottle-demo-api -i -t');
      for (const end = Date.now() + 30_000; !shell() && Date.now() < end; ) await page.waitForTimeout(200);
      assert.ok(shell(), 'smolvm machine exec -i -t ran for demo-api');
      await runCommand(page, 'Terminal: Kill All Terminals');
    });

    it('deletes a bottle from its context menu after asking, Freeze First being the primary button, and keeps its snapshot', async () => {
      const { page } = wb();
      await rowMenu(page, simLog, /^demo-docs, running/, 'Delete Bottle…');
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ timeout: 30_000 });
      const text = await dialog.innerText();
      assert.match(text, /Delete the machine bot-bottle-demo-docs\?/);
      assert.match(text, /Its snapshot of \d{4}-\d\d-\d\d \d\d:\d\d stays\./);
      const button = (name: string) => dialog.getByRole('button', { name, exact: true });
      assert.doesNotMatch((await button('Freeze First').getAttribute('class')) ?? '', /secondary/, 'Freeze First is the primary button');
      assert.match((await button('Delete Machine').getAttribute('class')) ?? '', /secondary/, 'the destructive choice is not');
      await wb().screenshot('lifecycle-delete-confirm');
      await button('Delete Machine').click();
      await treeItem(page, /^demo-docs, snapshot,/).waitFor({ timeout: 30_000 });
      assert.ok(!wb().smolvm('machine', 'ls', '--json').includes('bot-bottle-demo-docs'), 'the machine is gone');
      assert.ok(existsSync(sidecarOf(wb().stateDir, 'demo-docs')), 'the snapshot stays');
    });

    it("says why a stop failed, and its Show Log opens the log that holds the failure (smolvm's stop fails for demo-api here)", async () => {
      const { page } = wb();
      await rowMenu(page, simLog, /^demo-api, running/, 'Stop Bottle');
      const toast = page.locator('.notification-toast').filter({ hasText: /Stopping demo-api failed: .*simulated failure at stop/ }).first();
      await toast.waitFor({ timeout: 30_000 });
      await toast.getByRole('button', { name: 'Show Log' }).click();
      let shown = '';
      for (const end = Date.now() + 30_000; !shown.includes('Stopping demo-api failed') && Date.now() < end; ) shown = await outputText(page);
      assert.match(shown, /Stopping demo-api failed: .*simulated failure at stop/);
      await treeItem(page, /^demo-api, running/).waitFor({ timeout: 10_000 });
    });

    it('Ctrl+Alt+F on a row that is not running asks which running bottle to freeze', async () => {
      const { page } = wb();
      await treeItem(page, /^demo-docs, snapshot/).click();
      await page.keyboard.press('Control+Alt+KeyF');
      const pick = page.locator('.quick-input-widget');
      await pick.locator('input[placeholder="Choose a running bottle to freeze"]').waitFor({ timeout: 10_000 });
      const offered = (await pick.locator('.monaco-list-row').allInnerTexts()).join('\n');
      assert.match(offered, /demo-api/);
      assert.match(offered, /web-e2e01/, 'the docker bottle runs too');
      assert.doesNotMatch(offered, /demo-docs/, 'the selected row does not run');
      await page.keyboard.press('Escape');
    });
  });
});
