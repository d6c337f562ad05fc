// Show Agent Log in a real extension host, against the smolvm stand-in: the log smolvm keeps in the
// machine's data folder (`machine data-dir`, src/cli/machine.rs:4557-4569) opens, and it follows
// what the agent appends: the text, and the view while its end is shown.
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

/** The last line `editor` shows, once `accept` holds for it (the view redraws after the model changes). */
async function lastShownLine(editor: vscode.TextEditor, accept: (line: number) => boolean, ms = 15_000): Promise<number> {
  const shown = () => editor.visibleRanges.at(-1)?.end.line ?? -1;
  for (const end = Date.now() + ms; !accept(shown()) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
  return shown();
}

const manyLines = (tag: string) => Array.from({ length: 200 }, (_, i) => `${tag} ${i}\n`).join('');

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

  it('keeps the end of the log in view as it grows, unless the reader scrolled up', async () => {
    const log = join((await sim('machine', 'data-dir', '--name', MACHINE)).trim(), 'agent-console.log');
    await vscode.commands.executeCommand('botBottle.showAgentLog', 'ext-log');
    const editor = vscode.window.activeTextEditor!;
    appendFileSync(log, manyLines('grown'));
    await textWhen(editor.document, (text) => text.endsWith('grown 199\n'));
    const end = editor.document.lineCount - 1;
    assert.ok((await lastShownLine(editor, (line) => line >= end)) >= end, `the view stopped at line ${editor.visibleRanges.at(-1)?.end.line} of ${end}`);

    editor.revealRange(new vscode.Range(0, 0, 0, 0), vscode.TextEditorRevealType.AtTop);
    const top = await lastShownLine(editor, (line) => line < end - 100);
    assert.ok(top < end - 100, 'scrolled to the top');
    appendFileSync(log, manyLines('unread'));
    await textWhen(editor.document, (text) => text.endsWith('unread 199\n'));
    assert.equal(await lastShownLine(editor, (line) => line !== top, 1000), top, 'the reader keeps their place');
  });
});
