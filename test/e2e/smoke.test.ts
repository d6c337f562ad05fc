// Smoke test of the UI harness: the packaged extension shows its view in a real workbench.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { activityBarItem, openView, waitForViewContent } from '../vscode/browser';
import { useWorkbench } from './support';

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
});
