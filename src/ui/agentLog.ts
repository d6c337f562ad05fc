/**
 * A bottle's `agent-console.log`, opened read-only and following appends: a virtual document whose
 * content is the file, refreshed whenever the file changes.
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
    this.registration.dispose();
    this.closing.dispose();
    this.changed.dispose();
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
  }
}

/** Opens the log and keeps its end in view as it grows. */
export async function showAgentLog(slug: string, path: string): Promise<void> {
  const document = await vscode.workspace.openTextDocument(AgentLogProvider.uriFor(slug, path));
  const editor = await vscode.window.showTextDocument(document, { preview: false });
  const end = document.lineAt(Math.max(0, document.lineCount - 1)).range.end;
  editor.revealRange(new vscode.Range(end, end));
}
