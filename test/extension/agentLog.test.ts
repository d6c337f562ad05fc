// Show Agent Log in a real extension host, against the smolvm stand-in: the log smolvm keeps in the
// machine's data folder (`machine data-dir`, src/cli/machine.rs:4557-4569) opens, and it follows
// what the agent appends.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';

const MACHINE = 'bot-bottle-ext-log';
const sim = async (...args: string[]) => (await promisify(execFile)(process.env.BOT_BOTTLE_TEST_SMOLVM!, args, { encoding: 'utf8' })).stdout;

/** Resolves with the document's text once `accept` holds, or fails with what it was after `ms`. */
function textWhen(document: vscode.TextDocument, accept: (text: string) => boolean, ms = 15_000): Promise<string> {
  if (accept(document.getText())) return Promise.resolve(document.getText());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      listener.dispose();
      reject(new Error(`the document never changed as expected; it reads:\n${document.getText()}`));
    }, ms);
    const listener = vscode.workspace.onDidChangeTextDocument((event) => {
      if (event.document !== document || !accept(document.getText())) return;
      clearTimeout(timer);
      listener.dispose();
      resolve(document.getText());
    });
  });
}

describe('Show Agent Log in the extension host', () => {
  before(async () => {
    await sim('machine', 'create', '--name', MACHINE, '--image', 'node:22');
    await sim('machine', 'start', '--name', MACHINE);
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await sim('machine', 'delete', '--name', MACHINE, '-f');
  });

  it("opens the bottle's agent-console.log from its data folder and follows what is appended", async () => {
    const log = join((await sim('machine', 'data-dir', '--name', MACHINE)).trim(), 'agent-console.log');
    await vscode.commands.executeCommand('botBottle.showAgentLog', 'ext-log');
    const document = vscode.window.activeTextEditor?.document;
    assert.equal(document?.uri.scheme, 'bot-bottle-log', `the active editor shows ${document?.uri.toString()}`);
    assert.equal(document.getText(), readFileSync(log, 'utf8'));
    assert.match(document.getText(), /boot complete/);

    const line = `appended at ${new Date().toISOString()}\n`;
    appendFileSync(log, line);
    assert.ok((await textWhen(document, (text) => text.endsWith(line))).endsWith(line));
    assert.equal(document.getText(), readFileSync(log, 'utf8'));
  });
});
