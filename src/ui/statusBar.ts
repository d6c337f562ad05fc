/** `$(archive) Freeze` while a bottle runs; during a freeze, the step, and a click opens the tools log. */
import * as vscode from 'vscode';
import { isRunning, type Bottle } from '../core/facade';
import { operationTitle, type Operations } from './operations';

export class FreezeStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('botBottle.freeze', vscode.StatusBarAlignment.Left, 50);
  private bottles: readonly Bottle[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly operations: Operations,
    private enabled: boolean,
  ) {
    this.item.name = vscode.l10n.t('Bot Bottle: Freeze');
    this.disposables.push(this.item, operations.onDidChange(() => this.update()));
    this.update();
  }

  setBottles(bottles: readonly Bottle[]): void {
    this.bottles = bottles;
    this.update();
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.update();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  private update(): void {
    const busy = this.operations.all();
    if (!this.enabled || (busy.length === 0 && !this.bottles.some(isRunning))) {
      this.item.hide();
      return;
    }
    if (busy.length > 0) {
      const [first] = busy;
      const verb = operationTitle(first.kind, first.slug);
      this.item.text = `$(loading~spin) ${verb}: ${first.step}${busy.length > 1 ? ` (+${busy.length - 1})` : ''}`;
      this.item.tooltip = vscode.l10n.t('Show what the tools are doing');
      this.item.command = 'botBottle.showToolLog';
    } else {
      this.item.text = `$(archive) ${vscode.l10n.t('Freeze')}`;
      this.item.tooltip = vscode.l10n.t('Freeze a running bottle into a snapshot');
      this.item.command = 'botBottle.freeze';
    }
    this.item.show();
  }
}
