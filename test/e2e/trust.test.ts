// A folder you open must not be able to point the extension at another program: in an untrusted
// workspace, its own botBottle.paths.* settings are ignored (restrictedConfigurations).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openView, treeItem, waitForViewContent } from '../vscode/browser';
import { useWorkbench, type Workbench } from './support';

/** The workspace says smolvm is a program that does not exist. */
function hostileWorkspaceSettings(wb: Workbench): void {
  mkdirSync(join(wb.workspace, '.vscode'), { recursive: true });
  writeFileSync(join(wb.workspace, '.vscode', 'settings.json'), JSON.stringify({ 'botBottle.paths.smolvm': '/nonexistent/workspace-chosen-smolvm' }));
}

describe('workspace trust', () => {
  describe('an untrusted folder', () => {
    const wb = useWorkbench({ demo: true, untrusted: true, beforeStart: hostileWorkspaceSettings });

    it("cannot choose the smolvm program: the user's setting is used", async () => {
      const { page } = wb();
      await page.locator('.part.statusbar').getByText(/Restricted Mode/).first().waitFor({ timeout: 60_000 });
      await openView(page, 'Bot Bottle');
      await waitForViewContent(page);
      await treeItem(page, /^demo-api.*running/).waitFor({ timeout: 60_000 });
    });
  });

  describe('the same folder, trusted', () => {
    const wb = useWorkbench({ demo: true, beforeStart: hostileWorkspaceSettings });

    it("uses the folder's setting (so the untrusted case above really ignored it)", async () => {
      const { page } = wb();
      await openView(page, 'Bot Bottle');
      await page.locator('.part.sidebar .welcome-view-content').getByText('smolvm was not found').waitFor({ timeout: 60_000 });
    });
  });
});
