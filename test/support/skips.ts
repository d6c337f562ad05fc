/**
 * mocha's spec reporter, followed by one line per skipped (pending) test, so that no skip is silent,
 * and a last line with the counts:
 *
 *   SKIPPED <full title> (<file>): <how it was skipped>
 *   tally: N passed, N failed, N skipped
 *
 * scripts/test-all.sh reads these per suite: the tally comes after the failures' details, so a
 * test whose output holds mocha's own "N passing" (one that runs mocha) cannot be counted instead.
 * mocha's this.skip() takes no reason, so each line says how the test was skipped and where.
 */
import Mocha from 'mocha';

export const SKIPPED_PREFIX = 'SKIPPED ';
export const TALLY_PREFIX = 'tally: ';

const { EVENT_HOOK_END, EVENT_RUN_END, EVENT_TEST_BEGIN, EVENT_TEST_PENDING } = Mocha.Runner.constants;

export class SpecWithSkips extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const skipped = followSkips(runner);
    runner.once(EVENT_RUN_END, () => {
      for (const line of skipped()) console.log(`  ${line}`);
      const { passes, failures, pending } = this.stats;
      console.log(`  ${TALLY_PREFIX}${passes} passed, ${failures} failed, ${pending} skipped`);
    });
  }
}

/** Watches `runner`; the returned function gives a SKIPPED line for each pending test so far. */
export function followSkips(runner: Mocha.Runner): () => string[] {
  const started = new Set<Mocha.Runnable>();
  const skippingHooks = new Map<Mocha.Suite, string>();
  const lines: string[] = [];
  runner.on(EVENT_TEST_BEGIN, (test) => started.add(test));
  runner.on(EVENT_HOOK_END, (hook: Mocha.Hook) => {
    if (hook.pending && hook.parent) skippingHooks.set(hook.parent, `this.skip() in the ${hook.originalTitle ?? hook.title} of "${hook.parent.fullTitle()}"`);
  });
  runner.on(EVENT_TEST_PENDING, (test) => {
    lines.push(`${SKIPPED_PREFIX}${test.fullTitle()} (${test.file ?? 'file unknown'}): ${howSkipped(test, started, skippingHooks)}`);
  });
  return () => [...lines];
}

function howSkipped(test: Mocha.Test, started: Set<Mocha.Runnable>, skippingHooks: Map<Mocha.Suite, string>): string {
  const ancestors: Mocha.Suite[] = [];
  for (let suite = test.parent; suite; suite = suite.parent) ancestors.push(suite);
  // A hook's this.skip() also marks the suites inside it pending, as describe.skip does.
  const byHook = ancestors.map((suite) => skippingHooks.get(suite)).find(Boolean);
  if (byHook) return byHook;
  const skippedSuite = ancestors.find((suite) => suite.pending);
  if (skippedSuite) return `describe.skip on "${skippedSuite.fullTitle()}", in the source`;
  if (!test.fn) return 'it.skip, xit or a test without a body, in the source';
  if (started.has(test)) return 'this.skip() in the test, at run time';
  return 'mocha marked it pending without saying how';
}
