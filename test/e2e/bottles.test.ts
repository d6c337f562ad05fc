// The extension as a user meets it: the packaged VSIX in code-server, driven through Chromium.
// Freezes here take the docker image path against real tools (docker on podman, Distribution,
// skopeo), so that the Tools log shows every tool a freeze runs.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { activityBarItem, contextMenu, notifications, openView, outputText, runCommand, statusBarItem, treeItem, waitForViewContent } from '../vscode/browser';
import { startContainerService, type ContainerService } from '../support/containers';
import { isAlive } from '../support/processes';
import { readSimLog, type LoggedCall } from '../support/sim';
import { dismissToasts, extensionLog, ROOT, useWorkbench, waitForToast } from './support';

const README_SHOTS = join(ROOT, 'media', 'screenshots');
/** What bot-bottle would have written for the demo bottle: the view shows its label. */
const DEMO_API_METADATA = Buffer.from('{"label": "Fix the login", "backend": "smolmachines", "future_key": [1]}\n');
const botBottleDir = (env: Record<string, string>, slug: string) => join(env.HOME!, '.bot-bottle', 'state', slug);

/**
 * Takes a screenshot into out/screenshots; with UPDATE_README_SCREENSHOTS=1 also into
 * media/screenshots, the README's pictures (so that a test run leaves the tree clean).
 */
async function readmeShot(shot: Promise<string>, name: string): Promise<void> {
  const path = await shot;
  if (process.env.UPDATE_README_SCREENSHOTS !== '1') return;
  mkdirSync(README_SHOTS, { recursive: true });
  copyFileSync(path, join(README_SHOTS, `${name}.png`));
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
async function rowMenu(page: Page, simLog: string, row: RegExp, item: string): Promise<void> {
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

/** The `machine create` calls the stand-in logged. */
function creates(simLog: string): LoggedCall[] {
  return readSimLog(simLog).filter((call) => call.argv[0] === 'machine' && call.argv[1] === 'create');
}

/** The input box of a step of Resume's Change Size…, once it shows. */
async function sizeStep(page: Page, slug: string, step: number): Promise<Locator> {
  const widget = page.locator('.quick-input-widget');
  await widget.locator('.quick-input-title').filter({ hasText: `Size of the resumed ${slug} (${step}/4)` }).waitFor({ timeout: 30_000 });
  return widget.locator('input').first();
}

/** Expands a row once it has children (the tree re-renders it as collapsible after a refresh). */
async function expand(page: Page, row: RegExp): Promise<void> {
  const item = page.getByRole('treeitem', { name: row }).and(page.locator('[aria-expanded]')).first();
  await item.waitFor({ timeout: 30_000 });
  if ((await item.getAttribute('aria-expanded')) === 'false') await item.locator('.monaco-tl-twistie').click();
}



describe('the Bottles view in a real VS Code', function () {
  let containers: ContainerService;
  const callsDir = mkdtempSync(join(tmpdir(), 'bb-e2e-calls-'));
  /** Every smolvm call of this workbench (the stand-in's SMOLVM_SIM_LOG). */
  const simLog = join(callsDir, 'smolvm-calls.jsonl');
  before(async () => {
    containers = await startContainerService();
  });
  after(async () => {
    await containers?.stop();
    rmSync(callsDir, { recursive: true, force: true });
  });

  const wb = useWorkbench(() => ({
    demo: true,
    env: {
      ...containers.env,
      SMOLVM_SIM_DELAY: 'cp=2500',
      SMOLVM_SIM_LOG: simLog,
      // demo-docs's copy takes about 3 s (a ~9.5 MB archive) and its size is unknown: the freeze
      // asks `stat` for it first, and failing that leaves what smolvm's download progress knows
      // (src/cli/machine.rs:4979-4992).
      SMOLVM_SIM_CP_RATE: '3000000@bot-bottle-demo-docs',
      SMOLVM_SIM_FAIL: 'exec:stat@bot-bottle-demo-docs',
    },
    settings: { 'botBottle.freeze.imageBuilder': 'docker', 'botBottle.refreshInterval': 0 },
    beforeStart: (w) => {
      mkdirSync(botBottleDir(w.env, 'demo-api'), { recursive: true });
      writeFileSync(join(botBottleDir(w.env, 'demo-api'), 'metadata.json'), DEMO_API_METADATA);
    },
  }));

  it('opens from the activity bar and lists the demo bottles with their states', async () => {
    const { page } = wb();
    await activityBarItem(page, 'Bot Bottle').waitFor({ timeout: 60_000 });
    await openView(page, 'Bot Bottle');
    await waitForViewContent(page);
    await treeItem(page, /^demo-api.*Fix the login · smolmachines · running/).waitFor({ timeout: 30_000 });
    await treeItem(page, /^demo-docs.*running/).waitFor({ timeout: 30_000 });
  });

  it('shows a machine created meanwhile after Refresh', async () => {
    const { page } = wb();
    wb().smolvm('machine', 'create', '--name', 'bot-bottle-e2e-third', '--image', 'node:22');
    assert.equal(await treeItem(page, /^e2e-third/).count(), 0, 'not shown before the refresh');
    await page.locator('.part.sidebar .actions-container .action-label[aria-label="Refresh"]').first().click();
    await treeItem(page, /^e2e-third.*created/).waitFor({ timeout: 30_000 });
  });

  it('freezes a bottle from its context menu, with the step in a progress notification, and lists the snapshot', async () => {
    const { page } = wb();
    await rowMenu(page, simLog, /^demo-api/, 'Freeze Bottle');
    const progress = await waitForToast(page, /Freezing demo-api.*\(\d\/\d\)/s, 60_000);
    assert.match(progress, /(Checking that the bottle answers|Archiving the root filesystem|Copying the archive) \(\d\/9\)/);
    await treeItem(page, /^demo-api.*Copying the archive/).waitFor({ timeout: 30_000 });
    await readmeShot(wb().screenshot('freeze-progress'), 'freeze-progress');

    const done = await waitForToast(page, /Froze demo-api: a .* snapshot in /);
    assert.match(done, /Reveal/);
    assert.match(done, /Export/);
    await expand(page, /^demo-api/);
    await treeItem(page, /^Snapshot of demo-api, \d{4}-\d\d-\d\d \d\d:\d\d, [\d.]+ [KM]?B$/).waitFor({ timeout: 30_000 });
    await page.mouse.move(900, 500);
    await readmeShot(wb().screenshot('freeze-done'), 'freeze-done');

    // Left where `bot-bottle resume demo-api` looks, bot-bottle's own metadata.json as it was.
    const named = readFileSync(join(botBottleDir(wb().env, 'demo-api'), 'committed-image'), 'utf8');
    assert.equal(named, join(botBottleDir(wb().env, 'demo-api'), 'committed-smolmachine.smolmachine'));
    assert.equal(readFileSync(named).subarray(-64, -56).toString('latin1'), 'SMOLPACK');
    assert.ok(existsSync(join(botBottleDir(wb().env, 'demo-api'), '.preserve')));
    assert.deepEqual(readFileSync(join(botBottleDir(wb().env, 'demo-api'), 'metadata.json')), DEMO_API_METADATA);

    const shown = await outputText(page, 'Bot Bottle: Tools');
    assert.match(shown, /docker rmi bot-bottle-committed-demo-api:latest/, 'the Tools channel shows the end of the freeze: its cleanup');
    await readmeShot(wb().screenshot('tools-log'), 'tools-log');
    await dismissToasts(page);
  });

  it('the Tools log holds the tar, docker build and pack create command lines', async () => {
    const { page } = wb();
    // The output editor draws only the lines in view: filter the channel down to each line.
    const filter = page.locator('.part.panel input[placeholder^="Filter"]').first();
    const wanted: Array<[string, RegExp]> = [
      ['tar --create', /smolvm machine exec --name bot-bottle-demo-api -- tar --create --gzip --exclude=\.\/proc/],
      ['docker build', /docker build --tag bot-bottle-committed-demo-api:latest/],
      ['pack create', /smolvm pack create --image 127\.0\.0\.1:\d+\/bot-bottle-committed:[0-9a-f]{16} -o /],
    ];
    for (const [words, line] of wanted) {
      await filter.fill(words);
      await page.waitForTimeout(700);
      // Long lines wrap: join the drawn rows back into log lines.
      assert.match((await page.locator('.part.panel .output-view .view-lines').innerText()).replace(/\u00a0/g, ' ').replace(/\n/g, ''), line);
    }
    await filter.fill('');
  });

  it('starts a freeze from the status-bar button, which shows only while a bottle runs; a copy of unknown size shows bytes and rate', async () => {
    const { page } = wb();
    const button = statusBarItem(page, 'Freeze');
    await button.waitFor({ timeout: 30_000 });
    await button.click();
    const pick = page.locator('.quick-input-widget .monaco-list-row').filter({ hasText: 'demo-docs' }).first();
    await pick.waitFor({ timeout: 30_000 });
    await pick.click();
    const copying = await waitForToast(page, /Freezing demo-docs.*Copying the archive \(\d\/9\): [\d.]+ [KMG]?B copied/s, 60_000);
    await wb().screenshot('freeze-copy-unknown-size');
    assert.match(copying, /Copying the archive \(\d\/9\): [\d.]+ [KMG]?B copied, [\d.]+ [KMG]?B\/s$/m, 'bytes and smolvm’s rate');
    assert.doesNotMatch(copying, /%| of /, 'no share of a total that is not known');
    await waitForToast(page, /Froze demo-docs/);
    await dismissToasts(page);

    for (const name of ['bot-bottle-demo-api', 'bot-bottle-demo-docs']) wb().smolvm('machine', 'stop', '--name', name);
    await runCommand(page, 'Bot Bottle: Refresh');
    await statusBarItem(page, 'Freeze').waitFor({ state: 'hidden', timeout: 30_000 });
    wb().smolvm('machine', 'start', '--name', 'bot-bottle-demo-api');
    await runCommand(page, 'Bot Bottle: Refresh');
    await statusBarItem(page, 'Freeze').waitFor({ timeout: 30_000 });
  });

  it('exports a snapshot: both files land where the dialog said', async () => {
    const { page } = wb();
    await rowMenu(page, simLog, /^demo-api/, 'Export Snapshot…');
    const target = join(wb().workspace, 'exported', 'api-copy');
    mkdirSync(join(wb().workspace, 'exported'), { recursive: true });
    const input = page.locator('.quick-input-widget input').first();
    await input.waitFor({ timeout: 30_000 });
    // The file dialog fills in its default path a moment after it opens: wait for it, then replace it.
    for (let i = 0; i < 50 && !(await input.inputValue()).endsWith('demo-api'); i++) await page.waitForTimeout(100);
    await input.press('Control+a');
    await input.pressSequentially(target, { delay: 5 });
    await page.waitForTimeout(500);
    await page.locator('.quick-input-widget').getByRole('button', { name: 'OK' }).click();
    await waitForToast(page, /Exported the snapshot of demo-api/, 30_000);
    const written = readdirSync(wb().workspace, { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('api-copy') || f.includes('.smolmachine'));
    assert.deepEqual(written.sort(), ['exported/api-copy', 'exported/api-copy.smolmachine']);
    await dismissToasts(page);
  });

  it('before resuming a bottle whose machine is gone, says what will not come back; Escape in Change Size… creates nothing', async () => {
    const { page } = wb();
    wb().smolvm('machine', 'delete', '--name', 'bot-bottle-demo-docs', '-f');
    await runCommand(page, 'Bot Bottle: Refresh');
    await treeItem(page, /^demo-docs.*snapshot ·/).waitFor({ timeout: 30_000 });
    await readmeShot(wb().screenshot('tree'), 'tree');
    const createsBefore = creates(simLog).length;
    await rowMenu(page, simLog, /^demo-docs/, 'Resume Bottle');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 30_000 });
    const said = await dialog.innerText();
    // The demo bottle was made with --net --cpus 2 --mem 2048 (test/sim/demo.ts).
    assert.match(said, /bot-bottle-demo-docs will be created from the snapshot with: network on, 2 CPUs, 2048 MiB memory\./);
    assert.match(said, /Not carried over \(set these again after resuming\):\n• its egress allow-list \(--allow-cidr, --allow-host\), if it had one/);
    await wb().screenshot('resume-dialog');

    await dialog.getByRole('button', { name: 'Change Size…' }).click();
    const cpus = await sizeStep(page, 'demo-docs', 1);
    assert.equal(await cpus.inputValue(), '2', 'the recorded CPUs are the default');
    await cpus.press('Enter');
    await sizeStep(page, 'demo-docs', 2);
    await page.locator('.quick-input-widget').getByRole('button', { name: 'Back' }).click();
    await (await sizeStep(page, 'demo-docs', 1)).press('Enter');
    const memory = await sizeStep(page, 'demo-docs', 2);
    assert.equal(await memory.inputValue(), '2048');
    await memory.press('Escape');
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 10_000 });
    assert.equal(await dialog.count(), 0, 'no dialog comes back after Escape');
    assert.equal(creates(simLog).length, createsBefore, 'smolvm was not asked to create a machine');
    assert.doesNotMatch(wb().smolvm('machine', 'ls'), /bot-bottle-demo-docs/);
  });

  it('resumes it with Change Size… set to 3 CPUs: the dialog shows the new size, the machine gets it', async () => {
    const { page } = wb();
    await rowMenu(page, simLog, /^demo-docs/, 'Resume Bottle');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.getByRole('button', { name: 'Change Size…' }).click();
    const cpus = await sizeStep(page, 'demo-docs', 1);
    await cpus.fill('0');
    await page.locator('.quick-input-widget').getByText('smolvm needs at least 1 CPU.').waitFor({ timeout: 10_000 });
    await wb().screenshot('resume-size-refused');
    await cpus.press('Enter');
    assert.equal(await cpus.inputValue(), '0', 'a refused value does not move on');
    await cpus.fill('3');
    await cpus.press('Enter');
    for (const step of [2, 3, 4]) await (await sizeStep(page, 'demo-docs', step)).press('Enter');
    await dialog.waitFor({ timeout: 30_000 });
    assert.match(await dialog.innerText(), /bot-bottle-demo-docs will be created from the snapshot with: network on, 3 CPUs, 2048 MiB memory\./);
    await wb().screenshot('resume-dialog-changed-size');
    await dialog.getByRole('button', { name: 'Resume', exact: true }).click();

    await waitForToast(page, /bot-bottle-demo-docs is running again/, 120_000);
    await treeItem(page, /^demo-docs.*running/).waitFor({ timeout: 30_000 });
    const status = JSON.parse(wb().smolvm('machine', 'status', '--name', 'bot-bottle-demo-docs', '--json'));
    assert.deepEqual([status.state, status.cpus, status.memory_mib, status.network], ['running', 3, 2048, true]);
    assert.match(creates(simLog).at(-1)?.argv.join(' ') ?? '', / --from \S+\.smolmachine --cpus 3 --mem 2048 --net$/);
    const log = extensionLog(wb());
    assert.match(log, /Size chosen for the resume: 3 CPUs, 2048 MiB memory\n.*Carried over: network on, 3 CPUs, 2048 MiB memory\n/);
    assert.match(log, /Not carried over: its egress allow-list/);
    await dismissToasts(page);
  });

  it('asks before deleting a snapshot, and keeps it when told no', async () => {
    const { page } = wb();
    const sidecar = join(wb().stateDir, 'demo-api', 'committed-smolmachine.smolmachine');
    await rowMenu(page, simLog, /^demo-api/, 'Delete Snapshot…');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 30_000 });
    assert.match(await dialog.innerText(), /Delete the snapshot of demo-api\?/);
    await readmeShot(wb().screenshot('delete-confirm'), 'delete-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.ok(existsSync(sidecar), 'Cancel keeps the snapshot');

    await rowMenu(page, simLog, /^demo-api/, 'Delete Snapshot…');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await treeItem(page, /^demo-api.*running/).waitFor({ timeout: 30_000 });
    for (let i = 0; i < 50 && existsSync(sidecar); i++) await page.waitForTimeout(100);
    assert.ok(!existsSync(sidecar), 'Delete removes the snapshot');
    assert.deepEqual(await notifications(page), []);
  });
});

describe('when smolvm is not found', () => {
  const wb = useWorkbench({ settings: { 'botBottle.paths.smolvm': '/nonexistent/smolvm' } });

  it('shows the welcome view with a button to set its path', async () => {
    const { page } = wb();
    await openView(page, 'Bot Bottle');
    const welcome = page.locator('.part.sidebar .welcome-view-content');
    await welcome.getByText('smolvm was not found').waitFor({ timeout: 60_000 });
    await welcome.getByRole('button', { name: 'Set smolvm Path' }).waitFor();
    await readmeShot(wb().screenshot('smolvm-missing'), 'smolvm-missing');
  });
});
