import assert from 'node:assert/strict';
import { CancelledError } from '../../src/core/errors';
import { MemoryLog } from '../support/memoryLog';
import { StepFailedError } from '../../src/core/errors';
import { runPipeline, type PipelineProgress, type Step } from '../../src/core/pipeline';

type Trace = string[];

const step = (id: string, weight: number, body: Step<Trace>['run'] = async () => undefined): Step<Trace> => ({
  id,
  title: `Doing ${id}`,
  weight,
  run: async (ctx, trace) => {
    trace.push(`run ${id}`);
    ctx.defer(`undo ${id}`, () => trace.push(`undo ${id}`));
    await body(ctx, trace);
  },
});

describe('pipeline runner', () => {
  it('runs steps in order, then cleanups in reverse, and times each step', async () => {
    const trace: Trace = [];
    const timings = await runPipeline([step('a', 1), step('b', 1), step('c', 1)], trace, { signal: new AbortController().signal, log: new MemoryLog() });
    assert.deepEqual(trace, ['run a', 'run b', 'run c', 'undo c', 'undo b', 'undo a']);
    assert.deepEqual(timings.map((t) => t.id), ['a', 'b', 'c']);
    assert.ok(timings.every((t) => t.ms >= 0 && t.title.startsWith('Doing ')));
  });

  it('reports progress by weight, including a step’s own fraction', async () => {
    const seen: PipelineProgress[] = [];
    const steps = [step('a', 1), step('b', 3, async (ctx) => ctx.progress(0.5, '1 MB / 2 MB'))];
    await runPipeline(steps, [], { signal: new AbortController().signal, log: new MemoryLog(), onProgress: (p) => seen.push(p) });
    const half = seen.find((p) => p.detail === '1 MB / 2 MB');
    assert.ok(half);
    assert.equal(half.fraction, (1 + 1.5) / 4);
    assert.equal(half.stepIndex, 1);
    assert.equal(half.stepCount, 2);
    assert.equal(seen.at(-1)?.fraction, 1);
    assert.ok(seen.every((p, i) => i === 0 || p.fraction >= seen[i - 1].fraction), 'progress never goes back');
  });

  it('names the failing step, runs the cleanups registered so far, and skips the rest', async () => {
    const trace: Trace = [];
    const failing = step('b', 1, async () => {
      throw new Error('Error: disk full');
    });
    const error = await runPipeline([step('a', 1), failing, step('c', 1)], trace, { signal: new AbortController().signal, log: new MemoryLog() }).catch((e) => e);
    assert.ok(error instanceof StepFailedError);
    assert.equal(error.stepId, 'b');
    assert.equal(error.message, 'Doing b failed: Error: disk full');
    assert.deepEqual(trace, ['run a', 'run b', 'undo b', 'undo a']);
  });

  it('stops between steps when cancelled and still cleans up', async () => {
    const trace: Trace = [];
    const controller = new AbortController();
    const cancelling = step('a', 1, async () => controller.abort());
    const error = await runPipeline([cancelling, step('b', 1)], trace, { signal: controller.signal, log: new MemoryLog() }).catch((e) => e);
    assert.ok(error instanceof CancelledError);
    assert.match(error.message, /Cancelled during "Doing a"/);
    assert.deepEqual(trace, ['run a', 'undo a']);
  });

  it('finishes the steps after a committing one when the cancel comes once it has run, and says so', async () => {
    const trace: Trace = [];
    const controller = new AbortController();
    const log = new MemoryLog();
    const keep: Step<Trace> = { ...step('keep', 1, async () => controller.abort()), commits: true };
    const seen: boolean[] = [];
    const mirror = step('mirror', 1, async (ctx) => {
      seen.push(ctx.signal.aborted);
    });
    await runPipeline([step('pack', 1), keep, mirror], trace, { signal: controller.signal, log });
    assert.deepEqual(trace, ['run pack', 'run keep', 'run mirror', 'undo mirror', 'undo keep', 'undo pack']);
    assert.deepEqual(seen, [false]);
    assert.match(log.text, /Cancel came after "Doing keep" had finished/);
  });

  it('cancels a committing step that a cancel stopped before it committed', async () => {
    const trace: Trace = [];
    const controller = new AbortController();
    const keep: Step<Trace> = {
      ...step('keep', 1, async () => {
        controller.abort();
        throw new CancelledError();
      }),
      commits: true,
    };
    const error = await runPipeline([keep, step('mirror', 1)], trace, { signal: controller.signal, log: new MemoryLog() }).catch((e) => e);
    assert.ok(error instanceof CancelledError, String(error));
    assert.deepEqual(trace, ['run keep', 'undo keep']);
  });

  it('turns a step’s failure after cancel into a cancellation, not an error', async () => {
    const controller = new AbortController();
    const dying = step('a', 1, async () => {
      controller.abort();
      throw new Error('killed by SIGTERM');
    });
    await assert.rejects(runPipeline([dying], [], { signal: controller.signal, log: new MemoryLog() }), CancelledError);
  });

  it('keeps cleaning up when a cleanup fails, and logs it', async () => {
    const trace: Trace = [];
    const log = new MemoryLog();
    const brokenCleanup: Step<Trace> = {
      id: 'x',
      title: 'X',
      weight: 1,
      run: async (ctx) => ctx.defer('remove the archive', () => Promise.reject(new Error('gone'))),
    };
    await runPipeline([step('a', 1), brokenCleanup], trace, { signal: new AbortController().signal, log });
    assert.deepEqual(trace, ['run a', 'undo a']);
    assert.ok(log.lines.includes('Cleanup "remove the archive" failed: gone'), log.text);
  });
});
