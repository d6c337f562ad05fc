/** What every tool client shares: a parser for commands whose output means nothing, and its error. */

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
