/**
 * Where the core writes what it does. VS Code's LogOutputChannel satisfies this shape, so the UI
 * passes its channels straight in; tests pass an in-memory log.
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

/** Collects every line: for tests, and for showing the tail of a failure. */
export class MemoryLog implements Log {
  readonly lines: string[] = [];
  trace(message: string): void { this.lines.push(message); }
  debug(message: string): void { this.lines.push(message); }
  info(message: string): void { this.lines.push(message); }
  warn(message: string): void { this.lines.push(message); }
  error(message: string | Error): void { this.lines.push(String(message instanceof Error ? message.message : message)); }
  get text(): string { return this.lines.join('\n'); }
}
