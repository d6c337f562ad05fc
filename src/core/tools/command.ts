/**
 * A tool client builds a command and knows how to read its output; it runs nothing itself.
 * The caller runs the command through a Runner, so every process goes through src/core/run.ts.
 */
import type { RunOptions, RunResult, Runner } from '../run';

export interface ToolCommand<T> {
  readonly argv: readonly string[];
  /** Exit codes that count as success; the Runner's default ([0]) when absent. */
  readonly okExitCodes?: readonly number[];
  /** Bulky machine-readable stdout (JSON) goes to the trace level of the log only. */
  readonly quietStdout?: boolean;
  parse(result: RunResult): T;
}

/** Runs a tool command and parses its result. Options given here win over the command's own. */
export async function runTool<T>(run: Runner, command: ToolCommand<T>, options: RunOptions = {}): Promise<T> {
  const result = await run(command.argv, {
    okExitCodes: command.okExitCodes,
    quietStdout: command.quietStdout,
    ...withoutUndefined(options),
  });
  return command.parse(result);
}

/** For commands whose output means nothing beyond their exit status. */
export function noOutput(): void {
  return undefined;
}

/** A parse error that says which tool printed what, so the log tells the story. */
export class UnexpectedOutputError extends Error {
  constructor(tool: string, expected: string, output: string) {
    const shown = output.trim().slice(0, 200) || '<nothing>';
    super(`${tool} printed ${JSON.stringify(shown)} where ${expected} was expected`);
    this.name = 'UnexpectedOutputError';
  }
}

function withoutUndefined(options: RunOptions): RunOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}
