/**
 * Runs a list of named, weighted steps. Each step may defer cleanups; they run in reverse order
 * whatever happens (success, failure, cancel). Progress is reported by weight, and by the fraction
 * a step reports of itself. The signal is checked between steps and handed to each one.
 */
import { CancelledError, errorMessage, isCancelled, StepFailedError } from './errors';
import type { Log } from './log';
import type { StepTiming } from './state';

/** Cleanups run after cancel too, so they get a time limit of their own instead of the signal. */
export const CLEANUP_TIMEOUT_MS = 60_000;

export interface StepContext {
  readonly signal: AbortSignal;
  readonly log: Log;
  /** Registers undo work; it runs after the pipeline ends, latest first, even on failure or cancel. */
  defer(label: string, cleanup: () => Promise<unknown> | unknown): void;
  /** How far the current step is, 0..1, with an optional detail such as bytes copied. */
  progress(fraction: number, detail?: string): void;
  /** How long each step before this one took. */
  readonly timings: readonly StepTiming[];
}

export interface Step<S> {
  id: string;
  title: string;
  /** Share of the whole pipeline's time this step usually takes. */
  weight: number;
  /**
   * The step that makes the result the user asked for (a freeze's keep). It returns only when it
   * has committed, and throws when a cancel stopped it first. Once it has run, a cancel can undo
   * nothing: it is logged, and the steps after it finish with a signal that never aborts.
   */
  commits?: boolean;
  run(ctx: StepContext, state: S): Promise<void>;
}

export interface PipelineProgress {
  stepIndex: number;
  stepCount: number;
  stepId: string;
  stepTitle: string;
  /** The whole pipeline's progress, 0..1. */
  fraction: number;
  detail?: string;
}

export interface PipelineOptions {
  signal: AbortSignal;
  log: Log;
  onProgress?: (progress: PipelineProgress) => void;
}

interface Deferred {
  label: string;
  cleanup: () => Promise<unknown> | unknown;
}

export async function runPipeline<S>(steps: readonly Step<S>[], state: S, options: PipelineOptions): Promise<StepTiming[]> {
  const deferred: Deferred[] = [];
  const timings: StepTiming[] = [];
  const totalWeight = steps.reduce((sum, s) => sum + s.weight, 0) || 1;
  let doneWeight = 0;
  let signal = options.signal;
  try {
    for (const [index, step] of steps.entries()) {
      if (signal.aborted) throw new CancelledError();
      const report = (fraction: number, detail?: string) =>
        options.onProgress?.({
          stepIndex: index,
          stepCount: steps.length,
          stepId: step.id,
          stepTitle: step.title,
          fraction: (doneWeight + step.weight * clamp(fraction)) / totalWeight,
          detail,
        });
      const ctx: StepContext = {
        signal,
        log: options.log,
        defer: (label, cleanup) => deferred.push({ label, cleanup }),
        progress: report,
        timings,
      };
      report(0);
      options.log.info(`Step ${index + 1}/${steps.length}: ${step.title}`);
      const started = Date.now();
      await runStep(step, ctx, state, signal);
      timings.push({ id: step.id, title: step.title, ms: Date.now() - started });
      report(1);
      doneWeight += step.weight;
      if (step.commits) signal = afterCommit(step, options);
    }
    return timings;
  } finally {
    await runCleanups(deferred, options.log);
  }
}

/** The signal for the steps after a committing one: it never aborts, and a cancel is only logged. */
function afterCommit<S>(step: Step<S>, options: PipelineOptions): AbortSignal {
  const note = () => options.log.info(`Cancel came after "${step.title}" had finished: nothing is undone, the remaining steps finish.`);
  if (options.signal.aborted) note();
  else options.signal.addEventListener('abort', note, { once: true });
  return new AbortController().signal;
}

async function runStep<S>(step: Step<S>, ctx: StepContext, state: S, signal: AbortSignal): Promise<void> {
  try {
    await step.run(ctx, state);
  } catch (error) {
    if (isCancelled(error) || signal.aborted) throw new CancelledError(`Cancelled during "${step.title}"`);
    throw new StepFailedError(step.id, step.title, error);
  }
  // A committing step that returned has committed: it throws when a cancel stopped it first.
  if (signal.aborted && !step.commits) throw new CancelledError(`Cancelled during "${step.title}"`);
}

/** Cleanups never throw: each failure is logged and the rest still run. */
async function runCleanups(deferred: Deferred[], log: Log): Promise<void> {
  for (const { label, cleanup } of deferred.reverse()) {
    try {
      await cleanup();
    } catch (error) {
      log.warn(`Cleanup "${label}" failed: ${errorMessage(error)}`);
    }
  }
}

function clamp(fraction: number): number {
  return Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
}
