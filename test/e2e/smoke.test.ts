// Smoke test of the UI harness: the packaged extension shows its view in a real workbench.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { activityBarItem, openView, runCommand, waitForViewContent } from '../vscode/browser';
import { README_BASE_URL, ROOT, useWorkbench, type Workbench } from './support';

/** The pictures the README shows, in its order (`![...](media/screenshots/x.png)`). */
function readmeImages(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/!\[[^\]]*\]\((media\/[^)\s]+\.png)\)/g)].map((m) => m[1]);
}

/** The folder the packaged extension was installed into. */
function installedExtension(wb: Workbench): string {
  const dir = readdirSync(wb.extensionsDir).find((name) => name.startsWith('bot-bottle.bot-bottle-'));
  if (!dir) throw new Error(`no bot-bottle extension in ${wb.extensionsDir}`);
  return join(wb.extensionsDir, dir);
}

describe('UI smoke', () => {
  const wb = useWorkbench();

  it('opens the Bot Bottle view from the activity bar', async () => {
    const { page } = wb();
    await activityBarItem(page, 'Bot Bottle').waitFor({ timeout: 60_000 });
    await openView(page, 'Bot Bottle');
    await page.locator('.part.sidebar').getByText(/Bottles/i).first().waitFor({ timeout: 30_000 });
    await waitForViewContent(page);
    await page.mouse.move(700, 450); // no tooltip over the picture
    await page.waitForTimeout(500);
    const shot = await wb().screenshot('smoke-bot-bottle-view');
    assert.ok(existsSync(shot));
  });

  it("shows the README's pictures on the extension's details page", async function () {
    const { page } = wb();
    const images = readmeImages();
    assert.ok(images.length >= 5, `the README shows ${images.length} pictures`);
    // The details page loads pictures only over http(s) (scripts/package.mjs says why): here the
    // "published" README's address answers with the files the VSIX installed, and nothing else.
    const installed = installedExtension(wb());
    const served: string[] = [];
    await page.context().route(`${README_BASE_URL}**`, async (route) => {
      const path = new URL(route.request().url()).pathname.slice(1);
      served.push(path);
      const file = join(installed, path);
      await (existsSync(file) ? route.fulfill({ path: file }) : route.fulfill({ status: 404 }));
    });
    await runCommand(page, 'Extensions: Show Installed Extensions');
    await page.locator('.extensions-viewlet .extension-list-item').filter({ hasText: 'Bot Bottle' }).first().click();
    // The details page renders the README in a webview: an iframe holding the active frame.
    const readme = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
    await readme.getByRole('heading', { name: 'What are bot-bottle and smolvm?' }).waitFor({ timeout: 60_000 });
    for (const src of images) {
      const img = readme.locator(`img[src="${README_BASE_URL}${src}"]`).first();
      await img.scrollIntoViewIfNeeded({ timeout: 30_000 });
      // A picture that is not in the VSIX, or not where the README says, loads with no size.
      const width = await img.evaluate((el) => {
        const picture = el as unknown as { decode(): Promise<void>; naturalWidth: number };
        return picture.decode().then(() => picture.naturalWidth, () => 0);
      });
      assert.ok(width > 0, `${src} did not load on the details page`);
    }
    assert.deepEqual([...new Set(served)].sort(), [...new Set(images)].sort());
    await readme.getByRole('heading', { name: 'Features' }).scrollIntoViewIfNeeded();
    assert.ok(existsSync(await wb().screenshot('details-page')));
  });
});
