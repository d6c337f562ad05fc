/** Core progress and cancellation <-> a cancellable progress notification and the busy-bottle list. */
import * as vscode from 'vscode';
import type { PipelineProgress } from '../core/facade';
import type { Operation, Operations } from './operations';

export type Work<T> = (signal: AbortSignal, onProgress: (progress: PipelineProgress) => void) => Promise<T>;

export function stepLabel(progress: PipelineProgress): string {
  return `${progress.stepTitle} (${progress.stepIndex + 1}/${progress.stepCount})`;
}

/** Runs `work` behind a notification titled e.g. "Freezing api" with a Cancel button. */
export function withOperationProgress<T>(operations: Operations, slug: string, kind: Operation['kind'], title: string, work: Work<T>): Promise<T> {
  return Promise.resolve(
    vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
      const controller = new AbortController();
      const cancel = token.onCancellationRequested(() => controller.abort());
      let reported = 0;
      const onProgress = (p: PipelineProgress) => {
        const label = stepLabel(p);
        const increment = Math.max(0, (p.fraction - reported) * 100);
        reported = Math.max(reported, p.fraction);
        progress.report({ message: p.detail ? `${label}: ${p.detail}` : label, increment });
        operations.update(slug, label);
      };
      operations.begin(slug, kind, vscode.l10n.t('Starting'));
      try {
        return await work(controller.signal, onProgress);
      } finally {
        cancel.dispose();
        operations.end(slug);
      }
    }),
  );
}
