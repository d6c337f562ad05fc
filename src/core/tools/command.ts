/**
 * A tool call described as data: the argv to run and how to read its result. Tool clients build
 * these and run nothing themselves; `runTool` executes one through the process runner.
 */
import type { RunOptions, RunResult, Runner } from '../run';

export interface ToolCommand<T> {
  argv: string[];
  /** Exit codes that count as success; default [0]. */
  okExitCodes?: number[];
  /** Bulky machine-readable stdout (JSON) goes to the log at trace level only. */
  quietStdout?: boolean;
  parse(result: RunResult): T;
}

/** Options given here win over the command's own, except those left undefined. */
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
