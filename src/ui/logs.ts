/** One log channel per concern: what the extension did, and what every child tool printed. */
import * as vscode from 'vscode';

export class Logs implements vscode.Disposable {
  /** "Bot Bottle": what the extension did and why. */
  readonly main = vscode.window.createOutputChannel('Bot Bottle', { log: true });
  /** "Bot Bottle: Tools": every child command line and its output. */
  readonly tools = vscode.window.createOutputChannel('Bot Bottle: Tools', { log: true });

  showTools(): void {
    this.tools.show(true);
  }

  showMain(): void {
    this.main.show(true);
  }

  dispose(): void {
    this.main.dispose();
    this.tools.dispose();
  }
}
