import type { Log } from '../../src/core/log';

/** Collects every line, for tests to read. */
export class MemoryLog implements Log {
  readonly lines: string[] = [];
  trace(message: string): void { this.lines.push(message); }
  debug(message: string): void { this.lines.push(message); }
  info(message: string): void { this.lines.push(message); }
  warn(message: string): void { this.lines.push(message); }
  error(message: string | Error): void { this.lines.push(String(message instanceof Error ? message.message : message)); }
  get text(): string { return this.lines.join('\n'); }
}
