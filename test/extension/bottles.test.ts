// The Bottles view, commands and settings inside a real extension host, against the smolvm
// stand-in (SMOLVM_DATA_DIR and botBottle.* settings come from test/vscode/runExtensionTests.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { BotBottleApi } from '../../src/extension';
import { BottlesTree } from '../../src/ui/bottlesTree';

const smolvm = () => process.env.BOT_BOTTLE_TEST_SMOLVM!;
/** Runs the stand-in without blocking the extension host. */
const sim = async (...args: string[]) => (await promisify(execFile)(smolvm(), args, { encoding: 'utf8' })).stdout;
const config = () => vscode.workspace.getConfiguration('botBottle');

async function api(): Promise<BotBottleApi> {
  const extension = vscode.extensions.getExtension<BotBottleApi>('bot-bottle.bot-bottle')!;
  return extension.activate();
}

/**
 * The view's rows for the extension's current bottles, drawn by the view's own tree provider: its
 * roots, each with its children.
 */
function viewItems(bottleBottle: BotBottleApi): Array<vscode.TreeItem & { children: vscode.TreeItem[] }> {
  const never = () => new vscode.Disposable(() => undefined);
  const tree = new BottlesTree({ bottles: bottleBottle.bottles(), failure: undefined, onDidChange: never }, { get: () => undefined, onDidChange: never });
  return tree.getChildren().map((node) => ({ ...tree.getTreeItem(node), children: tree.getChildren(node).map((child) => tree.getTreeItem(child)) }));
}

/** How long ago, as a row says it. */
const AGO = String.raw`(just now|\d+ (min|h|d) ago)`;

/** The view's rows as `label: description [contextValue]`, after a refresh. */
async function rows(): Promise<string[]> {
  const bottleBottle = await api();
  await bottleBottle.refresh();
  return viewItems(bottleBottle).map((item) => `${String(item.label)}: ${String(item.description)} [${item.contextValue}]`);
}

async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let value = await read();
  while (!accept(value) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    value = await read();
  }
  return value;
}

function frozenOnly(stateDir: string, slug: string): void {
  mkdirSync(join(stateDir, slug), { recursive: true });
  const footer = Buffer.alloc(64);
  footer.write('SMOLPACK');
  writeFileSync(join(stateDir, slug, 'committed-smolmachine.smolmachine'), Buffer.concat([Buffer.from('not a real pack'), footer]));
}

describe('the Bottles view', () => {
  before(async () => {
    await sim('machine', 'create', '--name', 'bot-bottle-ext-run', '--image', 'node:22');
    await sim('machine', 'start', '--name', 'bot-bottle-ext-run');
    await sim('machine', 'create', '--name', 'bot-bottle-ext-made', '--image', 'alpine');
    await sim('machine', 'create', '--name', 'not-a-bottle', '--image', 'alpine');
    frozenOnly(config().get<string>('stateDir')!, 'ext-frozen');
  });

  it('registers the view and its commands', async () => {
    await api();
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['botBottle.refresh', 'botBottle.freeze', 'botBottle.resume', 'botBottle.openShell', 'botBottle.exportSnapshot', 'botBottle.deleteSnapshot']) {
      assert.ok(commands.includes(id), `${id} is registered`);
    }
    await vscode.commands.executeCommand('botBottle.bottles.focus');
  });

  it("shows the stand-in's bottles and the frozen-only state folder, each state as itself", async () => {
    const shown = await rows();
    assert.ok(shown.some((r) => new RegExp(String.raw`^ext-run: running · ${AGO} · node:22 \[bottle\+running\]$`).test(r)), shown.join('\n'));
    assert.ok(shown.some((r) => new RegExp(String.raw`^ext-made: created · ${AGO} · alpine \[bottle\+machine\]$`).test(r)), shown.join('\n'));
    assert.ok(shown.some((r) => new RegExp(String.raw`^ext-frozen: snapshot · ${AGO} \[bottle\+frozen\]$`).test(r)), shown.join('\n'));
    assert.ok(!shown.some((r) => r.startsWith('not-a-bottle')), 'machines without the prefix are not bottles');

    await sim('sim', 'set-state', '-n', 'bot-bottle-ext-made', 'unreachable');
    assert.ok((await rows()).some((r) => new RegExp(String.raw`^ext-made: unreachable · ${AGO} · alpine`).test(r)), 'unreachable is shown as unreachable');
    await sim('sim', 'set-state', '-n', 'bot-bottle-ext-made', 'clear');
  });

  it('lists a snapshot under its bottle', async () => {
    const frozen = viewItems(await api()).find((item) => item.label === 'ext-frozen')!;
    assert.equal(frozen.children.length, 1);
    assert.equal(frozen.children[0].contextValue, 'snapshot');
    assert.match(String(frozen.children[0].description), new RegExp(String.raw`^${AGO} · \d+ B$`), 'how long ago, then the size');
  });

  it('takes a changed setting without a reload', async () => {
    const stateDir = config().get<string>('stateDir')!;
    const elsewhere = join(stateDir, '..', 'other-state');
    mkdirSync(elsewhere, { recursive: true });
    try {
      await config().update('stateDir', elsewhere, vscode.ConfigurationTarget.Global);
      const shown = await eventually(rows, (r) => !r.some((row) => row.startsWith('ext-frozen')));
      assert.ok(!shown.some((r) => r.startsWith('ext-frozen')), 'the old state folder is no longer read');
      assert.ok(shown.some((r) => r.startsWith('ext-run')), 'machines are still listed');

      await config().update('machinePrefix', 'not-a-', vscode.ConfigurationTarget.Global);
      const renamed = await eventually(rows, (r) => r.some((row) => row.startsWith('bottle:')));
      assert.ok(renamed.some((r) => r.startsWith('bottle: created')), renamed.join('\n'));
    } finally {
      await config().update('stateDir', stateDir, vscode.ConfigurationTarget.Global);
      await config().update('machinePrefix', undefined, vscode.ConfigurationTarget.Global);
    }
    assert.ok((await eventually(rows, (r) => r.some((row) => row.startsWith('ext-frozen')))).some((r) => r.startsWith('ext-frozen')));
  });

  it("shows what bot-bottle's own files say: a label and backend, and a bottle its commit left", async () => {
    const home = process.env.HOME!;
    assert.ok(home.startsWith(process.env.BOT_BOTTLE_TEST_RUN_DIR!), `HOME (${home}) is the test run's own, not a real one`);
    const state = join(home, '.bot-bottle', 'state');
    mkdirSync(join(state, 'ext-made'), { recursive: true });
    writeFileSync(join(state, 'ext-made', 'metadata.json'), JSON.stringify({ label: 'Fix the login', backend: 'smolmachines', cwd: '/work/app', extra: 1 }));
    frozenOnly(state, 'ext-theirs');
    writeFileSync(join(state, 'ext-theirs', 'committed-image'), join(state, 'ext-theirs', 'committed-smolmachine.smolmachine'));
    try {
      const shown = await rows();
      assert.ok(shown.some((r) => new RegExp(String.raw`^ext-made: Fix the login · smolmachines · created · ${AGO} · alpine \[bottle\+machine\]$`).test(r)), shown.join('\n'));
      assert.ok(shown.some((r) => new RegExp(String.raw`^ext-theirs: snapshot · ${AGO} \[bottle\+frozen\]$`).test(r)), shown.join('\n'));
      const made = viewItems(await api()).find((item) => item.label === 'ext-made')!;
      assert.match((made.tooltip as vscode.MarkdownString).value, /Working folder: \/work\/app/);
    } finally {
      rmSync(join(home, '.bot-bottle'), { recursive: true, force: true });
    }
  });

  it('shows a missing smolvm in the view, not as an error pop-up', async () => {
    const smolvmPath = config().get<string>('paths.smolvm');
    try {
      await config().update('paths.smolvm', '/nonexistent/smolvm', vscode.ConfigurationTarget.Global);
      const shown = await eventually(rows, (r) => r.length === 0);
      assert.deepEqual(shown, [], 'the tree is empty so that the welcome view with "Set smolvm Path" shows');
    } finally {
      await config().update('paths.smolvm', smolvmPath, vscode.ConfigurationTarget.Global);
    }
  });
});

describe('botBottle.freeze in the extension host', function () {
  this.timeout(180_000);

  it('freezes the bottle it is given, and leaves the snapshot where bot-bottle resume looks', async () => {
    const botBottleDir = join(process.env.HOME!, '.bot-bottle', 'state', 'ext-run');
    mkdirSync(botBottleDir, { recursive: true });
    const metadata = Buffer.from('{"label": "kept as it is", "unknown": true}\n');
    writeFileSync(join(botBottleDir, 'metadata.json'), metadata);
    await vscode.commands.executeCommand('botBottle.freeze', 'ext-run');
    const stateDir = config().get<string>('stateDir')!;
    assert.ok(existsSync(join(stateDir, 'ext-run', 'committed-smolmachine.smolmachine')), 'the sidecar was written');
    const named = readFileSync(join(botBottleDir, 'committed-image'), 'utf8');
    assert.equal(named, join(botBottleDir, 'committed-smolmachine.smolmachine'));
    const packed = readFileSync(named);
    assert.equal(packed.subarray(packed.length - 64, packed.length - 56).toString('latin1'), 'SMOLPACK');
    assert.deepEqual(packed, readFileSync(join(stateDir, 'ext-run', 'committed-smolmachine.smolmachine')));
    assert.ok(existsSync(join(botBottleDir, '.preserve')));
    assert.deepEqual(readFileSync(join(botBottleDir, 'metadata.json')), metadata, 'metadata.json is byte-identical');
    const row = await eventually(async () => viewItems(await api()).find((item) => item.label === 'ext-run'), (item) => item?.children.length === 1);
    assert.equal(row?.contextValue, 'bottle+running+frozen');
  });

  it('asks which bottle to freeze when run from the palette, and freezes the one picked', async () => {
    const stateDir = config().get<string>('stateDir')!;
    const before = JSON.parse(readFileSync(join(stateDir, 'ext-run', 'snapshot.json'), 'utf8')).createdAt;
    const freezing = vscode.commands.executeCommand('botBottle.freeze');
    await new Promise((r) => setTimeout(r, 1500));
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await freezing;
    const after = JSON.parse(readFileSync(join(stateDir, 'ext-run', 'snapshot.json'), 'utf8')).createdAt;
    assert.notEqual(after, before, 'a new snapshot replaced the old one');
  });
});

describe('the tree redraws only what changed', () => {
  it('keeps each row as one object, redraws nothing for an unchanged list and only the changed row otherwise', () => {
    const changes = new vscode.EventEmitter<void>();
    const never = () => new vscode.Disposable(() => undefined);
    const running = { slug: 'a', machineName: 'bot-bottle-a', machine: { name: 'bot-bottle-a', state: 'running' } };
    const other = { slug: 'b', machineName: 'bot-bottle-b', machine: { name: 'bot-bottle-b', state: 'created' } };
    let bottles = [running, other];
    const tree = new BottlesTree({ get bottles() { return bottles; }, failure: undefined, onDidChange: changes.event }, { get: () => undefined, onDidChange: never });
    const redrawn: unknown[] = [];
    tree.onDidChangeTreeData((node) => redrawn.push(node));
    const [rowA, rowB] = tree.getChildren();

    bottles = [{ ...running }, { ...other }];
    changes.fire();
    assert.deepEqual(redrawn, [], 'the same list looks the same: nothing is redrawn');

    bottles = [{ ...running, machine: { ...running.machine, state: 'stopped' } }, { ...other }];
    changes.fire();
    assert.equal(redrawn.length, 1);
    assert.equal(redrawn[0], rowA, 'only the changed row, as the same object');
    assert.deepEqual(tree.getChildren(), [rowA, rowB]);

    bottles = [{ ...other }];
    changes.fire();
    assert.equal(redrawn.at(-1), undefined, 'a bottle gone: the whole list is redrawn');
    assert.deepEqual(tree.getChildren(), [rowB]);
    changes.dispose();
  });
});
