// Smoke test: the extension is there, activates, registers its commands, and sees the
// environment and settings the runner (test/vscode/runExtensionTests.ts) gives it.
import assert from 'node:assert/strict';
import { delimiter, join } from 'node:path';
import * as vscode from 'vscode';

const EXTENSION_ID = 'bot-bottle.bot-bottle';

describe('activation', () => {
  it(`${EXTENSION_ID} is installed and activates`, async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not among the extensions`);
    await ext.activate();
    assert.equal(ext.isActive, true);
  });

  it('registers botBottle.refresh', async () => {
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('botBottle.refresh'), 'botBottle.refresh is not a registered command');
  });

  it('runs with the environment and settings the test runner passes', () => {
    assert.equal(process.env.BOT_BOTTLE_TEST, '1');
    const runDir = process.env.BOT_BOTTLE_TEST_RUN_DIR;
    assert.ok(runDir, 'BOT_BOTTLE_TEST_RUN_DIR is not set');
    assert.equal(process.env.SMOLVM_DATA_DIR, join(runDir, 'smolvm-data'));
    const smolvm = process.env.BOT_BOTTLE_TEST_SMOLVM;
    assert.ok(smolvm, 'BOT_BOTTLE_TEST_SMOLVM is not set');
    const simBin = join(smolvm, '..');
    // code-server puts its own remote-cli folder first; the stand-in must come before anything else.
    const path = (process.env.PATH ?? '').split(delimiter).filter((p) => !p.includes('remote-cli'));
    assert.equal(path[0], simBin, `PATH does not start with the smolvm stand-in: ${process.env.PATH}`);
    const config = vscode.workspace.getConfiguration('botBottle');
    assert.equal(config.get('paths.smolvm'), smolvm);
    assert.equal(config.get('stateDir'), join(runDir, 'state'));
  });
});
