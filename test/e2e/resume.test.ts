// Resume Bottle as a user meets it in code-server: before anything is created, a dialog says what
// comes back and what does not, and Change Size… steps through input boxes (Escape creates
// nothing). The freeze before it copies an archive whose size is unknown, as a real download is:
// its progress notification shows bytes and rate.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { openView, runCommand, treeItem, waitForViewContent } from '../vscode/browser';
import { readSimLog } from '../support/sim';
import { dismissToasts, useWorkbench, waitForToast } from './support';

const SLUG = 'demo-api';
const MACHINE = `bot-bottle-${SLUG}`;

/** Picks `slug` in the quick pick a command opened. */
async function pickBottle(page: Page, slug: string): Promise<void> {
  const row = page.locator('.quick-input-widget .monaco-list-row').filter({ hasText: slug }).first();
  await row.waitFor({ timeout: 30_000 });
  await row.click();
}

/** The input box of step `step` of Change Size…, once it shows. */
async function sizeStep(page: Page, step: number) {
  const widget = page.locator('.quick-input-widget');
  await widget.locator('.quick-input-title').filter({ hasText: `Size of the resumed ${SLUG} (${step}/4)` }).waitFor({ timeout: 30_000 });
  return widget.locator('input').first();
}

describe('Resume Bottle’s dialog and size in a real VS Code', function () {
  const callsDir = mkdtempSync(join(tmpdir(), 'bb-e2e-resume-'));
  const simLog = join(callsDir, 'smolvm-calls.jsonl');
  after(() => rmSync(callsDir, { recursive: true, force: true }));
  const creates = () => readSimLog(simLog).filter((call) => call.argv[0] === 'machine' && call.argv[1] === 'create');

  const wb = useWorkbench({
    demo: true,
    env: {
      SMOLVM_SIM_LOG: simLog,
      // About 3 s for the demo bottle's ~9.5 MB archive: long enough to see the copy's progress.
      SMOLVM_SIM_CP_RATE: `3000000@${MACHINE}`,
      // The freeze asks `stat` for the archive's size before copying; failing it leaves the size
      // unknown, which is all smolvm's download progress knows (src/cli/machine.rs:4979-4992).
      SMOLVM_SIM_FAIL: `exec:stat@${MACHINE}`,
    },
    settings: { 'botBottle.refreshInterval': 0 },
  });

  it('freezing shows the copy of an archive of unknown size as bytes and rate, with no percentage', async () => {
    const { page } = wb();
    await openView(page, 'Bot Bottle');
    await waitForViewContent(page);
    await treeItem(page, new RegExp(`^${SLUG}.*running`)).waitFor({ timeout: 30_000 });
    await runCommand(page, 'Bot Bottle: Freeze Bottle');
    await pickBottle(page, SLUG);

    const copying = await waitForToast(page, /Copying the archive \(\d+\/\d+\): [\d.]+ [KMG]?B copied/, 60_000);
    await wb().screenshot('freeze-copy-unknown-size');
    const detail = /Copying the archive \(\d+\/\d+\): (.*)/.exec(copying)?.[1] ?? '';
    assert.match(detail, /^[\d.]+ [KMG]?B copied, [\d.]+ [KMG]?B\/s$/, `the notification shows bytes and smolvm's rate: ${copying}`);
    assert.doesNotMatch(copying, /%| of /, 'no share of a total that is not known');

    await waitForToast(page, new RegExp(`Froze ${SLUG}`), 120_000);
    await dismissToasts(page);
  });

  it('names what does not come back before creating anything, and Escape in Change Size… creates nothing', async () => {
    const { page } = wb();
    wb().smolvm('machine', 'delete', '--name', MACHINE, '-f');
    await runCommand(page, 'Bot Bottle: Refresh');
    await treeItem(page, new RegExp(`^${SLUG}.*snapshot ·`)).waitFor({ timeout: 30_000 });

    await runCommand(page, 'Bot Bottle: Resume Bottle');
    await pickBottle(page, SLUG);
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 30_000 });
    const said = await dialog.innerText();
    assert.match(said, new RegExp(`Resume ${SLUG}\\?`));
    // The demo bottle was made with --net --cpus 2 --mem 2048 (test/sim/demo.ts).
    assert.match(said, new RegExp(`${MACHINE} will be created from the snapshot with: network on, 2 CPUs, 2048 MiB memory\\.`));
    assert.match(said, /Not carried over \(set these again after resuming\):/);
    assert.match(said, /its egress allow-list \(--allow-cidr, --allow-host\), if it had one/);
    await wb().screenshot('resume-dialog');

    await dialog.getByRole('button', { name: 'Change Size…' }).click();
    const cpus = await sizeStep(page, 1);
    assert.equal(await cpus.inputValue(), '2', 'the recorded CPUs are the default');
    await cpus.press('Enter');
    const memory = await sizeStep(page, 2);
    assert.equal(await memory.inputValue(), '2048');
    await memory.press('Escape');

    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
    assert.equal(await dialog.count(), 0, 'no dialog comes back after Escape');
    assert.deepEqual(creates(), [], 'smolvm was never asked to create');
    assert.doesNotMatch(wb().smolvm('machine', 'ls'), new RegExp(MACHINE));
  });

  it('Change Size… with 3 CPUs: the dialog shows the new size and the machine is created with it', async () => {
    const { page } = wb();
    await runCommand(page, 'Bot Bottle: Resume Bottle');
    await pickBottle(page, SLUG);
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.getByRole('button', { name: 'Change Size…' }).click();

    const cpus = await sizeStep(page, 1);
    await cpus.fill('0');
    await page.locator('.quick-input-widget').getByText('smolvm needs at least 1 CPU.').waitFor({ timeout: 10_000 });
    await cpus.press('Enter');
    assert.equal(await cpus.inputValue(), '0', 'a refused value does not move on');
    await cpus.fill('3');
    await cpus.press('Enter');
    for (const step of [2, 3, 4]) await (await sizeStep(page, step)).press('Enter');

    await dialog.waitFor({ timeout: 30_000 });
    assert.match(await dialog.innerText(), new RegExp(`${MACHINE} will be created from the snapshot with: network on, 3 CPUs, 2048 MiB memory\\.`));
    await wb().screenshot('resume-dialog-changed-size');
    await dialog.getByRole('button', { name: 'Resume', exact: true }).click();

    await waitForToast(page, new RegExp(`${MACHINE} is running again`), 120_000);
    const status = JSON.parse(wb().smolvm('machine', 'status', '--name', MACHINE, '--json'));
    assert.deepEqual([status.state, status.cpus, status.memory_mib, status.network], ['running', 3, 2048, true]);
    assert.deepEqual(creates().map((call) => call.argv.join(' ')), [`machine create --name ${MACHINE} --from ${join(wb().stateDir, SLUG, 'committed-smolmachine.smolmachine')} --cpus 3 --mem 2048 --net`]);
    await dismissToasts(page);
  });
});
