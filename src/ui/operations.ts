/**
 * Which bottles have an operation (freeze, resume) running in this window, and at which step: the
 * tree, the status bar and the `+busy` context value read it.
 */
import * as vscode from 'vscode';
import type { LifecycleAction } from '../core/facade';

export interface Operation {
  slug: string;
  kind: 'freeze' | 'resume' | LifecycleAction;
  /** The step now running, e.g. "Copying the archive (3/7)". */
  step: string;
}

/** What the status bar says while an operation of each kind runs, e.g. "Freezing api". */
export function operationTitle(kind: Operation['kind'], slug: string): string {
  switch (kind) {
    case 'freeze':
      return vscode.l10n.t('Freezing {0}', slug);
    case 'resume':
      return vscode.l10n.t('Resuming {0}', slug);
    case 'start':
      return vscode.l10n.t('Starting {0}', slug);
    case 'stop':
      return vscode.l10n.t('Stopping {0}', slug);
    case 'restart':
      return vscode.l10n.t('Restarting {0}', slug);
    case 'delete':
      return vscode.l10n.t('Deleting {0}', slug);
  }
}

export class Operations implements vscode.Disposable {
  private readonly running = new Map<string, Operation>();
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  get(slug: string): Operation | undefined {
    return this.running.get(slug);
  }

  all(): Operation[] {
    return [...this.running.values()];
  }

  begin(slug: string, kind: Operation['kind'], step: string): void {
    this.running.set(slug, { slug, kind, step });
    this.fire();
  }

  update(slug: string, step: string): void {
    const operation = this.running.get(slug);
    if (!operation || operation.step === step) return;
    operation.step = step;
    this.fire();
  }

  end(slug: string): void {
    if (this.running.delete(slug)) this.fire();
  }

  dispose(): void {
    this.changed.dispose();
  }

  private fire(): void {
    this.changed.fire();
  }
}
