/**
 * Which bottles have an operation (freeze, resume) running in this window, and at which step: the
 * tree, the status bar and the `+busy` context value read it.
 */
import * as vscode from 'vscode';

export interface Operation {
  slug: string;
  kind: 'freeze' | 'resume';
  /** The step now running, e.g. "Copying the archive (3/7)". */
  step: string;
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
