/**
 * A bottle's `agent-console.log`, opened read-only and following appends: a virtual document whose
 * content is the file, refreshed whenever the file changes, scrolled along as it grows while its
 * end is in view (as `tail -f`; a reader who scrolled up keeps their place).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as vscode from 'vscode';

export const AGENT_LOG_SCHEME = 'bot-bottle-log';

export class AgentLogProvider implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly registration = vscode.workspace.registerTextDocumentContentProvider(AGENT_LOG_SCHEME, this);
  private readonly closing = vscode.workspace.onDidCloseTextDocument((doc) => this.unwatch(doc.uri));
  /** Each open log's line count before its latest change: was its end in view? */
  private readonly lineCounts = new Map<string, number>();
  private readonly opening = vscode.workspace.onDidOpenTextDocument((doc) => this.countLines(doc));
  private readonly growing = vscode.workspace.onDidChangeTextDocument((event) => this.follow(event.document));

  /** The document for a log file; the path travels in the query so the title can be the bottle's name. */
  static uriFor(slug: string, path: string): vscode.Uri {
    return vscode.Uri.from({ scheme: AGENT_LOG_SCHEME, path: `/${slug} agent-console.log`, query: path });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    this.watchFile(uri);
    try {
      return await readFile(uri.query, 'utf8');
    } catch (error) {
      return vscode.l10n.t('The agent log {0} cannot be read: {1}', uri.query, (error as Error).message);
    }
  }

  dispose(): void {
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    this.lineCounts.clear();
    this.registration.dispose();
    this.closing.dispose();
    this.opening.dispose();
    this.growing.dispose();
    this.changed.dispose();
  }

  private countLines(document: vscode.TextDocument): void {
    if (document.uri.scheme === AGENT_LOG_SCHEME) this.lineCounts.set(document.uri.toString(), document.lineCount);
  }

  private follow(document: vscode.TextDocument): void {
    if (document.uri.scheme !== AGENT_LOG_SCHEME) return;
    const endBefore = (this.lineCounts.get(document.uri.toString()) ?? document.lineCount) - 1;
    this.countLines(document);
    for (const editor of vscode.window.visibleTextEditors) {
      const lastShown = editor.visibleRanges.at(-1)?.end.line ?? 0;
      if (editor.document === document && lastShown >= endBefore) revealEnd(editor);
    }
  }

  private watchFile(uri: vscode.Uri): void {
    const key = uri.toString();
    if (this.watchers.has(key)) return;
    try {
      this.watchers.set(key, watch(uri.query, { persistent: false }, () => this.changed.fire(uri)));
    } catch {
      // A log that does not exist yet has nothing to follow; reopening it will try again.
    }
  }

  private unwatch(uri: vscode.Uri): void {
    if (uri.scheme !== AGENT_LOG_SCHEME) return;
    this.watchers.get(uri.toString())?.close();
    this.watchers.delete(uri.toString());
    this.lineCounts.delete(uri.toString());
  }
}

/** Opens the log and keeps its end in view as it grows. */
export async function showAgentLog(slug: string, path: string): Promise<void> {
  const document = await vscode.workspace.openTextDocument(AgentLogProvider.uriFor(slug, path));
  revealEnd(await vscode.window.showTextDocument(document, { preview: false }));
}

function revealEnd(editor: vscode.TextEditor): void {
  const end = editor.document.lineAt(Math.max(0, editor.document.lineCount - 1)).range.end;
  editor.revealRange(new vscode.Range(end, end));
}
