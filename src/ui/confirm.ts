/** Questions before something that cannot be undone. */
import * as vscode from 'vscode';

/**
 * A modal question whose primary (default) button keeps everything: VS Code makes the first
 * button that is not the close affordance the primary one, so the destructive choice comes second.
 */
export async function confirmDestructive(question: string, detail: string, destructive: string, keep = vscode.l10n.t('Keep')): Promise<boolean> {
  const keepItem: vscode.MessageItem = { title: keep };
  const destroyItem: vscode.MessageItem = { title: destructive };
  return (await vscode.window.showWarningMessage(question, { modal: true, detail }, keepItem, destroyItem)) === destroyItem;
}
