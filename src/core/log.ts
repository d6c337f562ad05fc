/**
 * Where the core writes what it does. VS Code's LogOutputChannel satisfies this shape, so the UI
 * passes its channels straight in; tests pass an in-memory one.
 */
export interface Log {
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string | Error): void;
}

export const silentLog: Log = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
