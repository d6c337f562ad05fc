/** smolvm's own failure: printed as `Error: <message>` on stderr, exit status 1 by default. */
export class SimError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** A command-line mistake, reported the way clap does (`error: ...`, usage, exit status 2). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

/** Ends the program with a status and no message (a guest exit status, a printed help text). */
export class ExitRequest extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

export function agentError(operation: string, message: string): SimError {
  return new SimError(`agent operation failed: ${operation}: ${message}`);
}

export function configError(operation: string, message: string): SimError {
  return new SimError(`config operation failed: ${operation}: ${message}`);
}

export function vmNotFound(name: string): SimError {
  return new SimError(`vm not found: ${name}`);
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Node's system errors, in the shape Rust prints io::Error: `No such file or directory (os error 2)`. */
export function osErrorText(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const known: Record<string, [string, number]> = {
    ENOENT: ['No such file or directory', 2],
    EISDIR: ['Is a directory', 21],
    ENOTDIR: ['Not a directory', 20],
    EACCES: ['Permission denied', 13],
    EEXIST: ['File exists', 17],
    ENOSPC: ['No space left on device', 28],
    ECONNREFUSED: ['Connection refused', 111],
  };
  const entry = code ? known[code] : undefined;
  return entry ? `${entry[0]} (os error ${entry[1]})` : describeError(error);
}
