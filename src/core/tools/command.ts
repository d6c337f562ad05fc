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

export async function runTool<T>(run: Runner, command: ToolCommand<T>, options: RunOptions = {}): Promise<T> {
  const result = await run(command.argv, {
    okExitCodes: command.okExitCodes,
    quietStdout: command.quietStdout,
    ...options,
  });
  return command.parse(result);
}
