import { appendFileSync, readSync } from 'node:fs';

export function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** smolvm's byte formatting: 1024-based, one decimal (`1.5 GB`, `42.0 MB`, `12 B`). */
export function formatBytes(bytes: number): string {
  const units: Array<[string, number]> = [
    ['GB', 1024 ** 3],
    ['MB', 1024 ** 2],
    ['KB', 1024],
  ];
  for (const [unit, size] of units) {
    if (bytes >= size) return `${(bytes / size).toFixed(1)} ${unit}`;
  }
  return `${bytes} B`;
}

/** `SMOLVM_SIM_LOG`: one JSON line per invocation so tests can assert what was called. */
export function logInvocation(argv: readonly string[]): void {
  const file = process.env.SMOLVM_SIM_LOG;
  if (!file) return;
  const entry = { time: new Date().toISOString(), pid: process.pid, argv, cwd: process.cwd() };
  appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

/** One line from stdin, or undefined when stdin is closed or not readable. */
export function readStdinLine(): string | undefined {
  const buffer = Buffer.alloc(1);
  let line = '';
  for (;;) {
    let count: number;
    try {
      count = readSync(0, buffer, 0, 1, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      return line || undefined;
    }
    if (count === 0) return line || undefined;
    const char = buffer.toString('utf8');
    if (char === '\n') return line;
    line += char;
  }
}
