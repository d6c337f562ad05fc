/**
 * Stand-ins for a real tool that misbehave for one subcommand and pass everything else to the real
 * tool: fail with a message, hang (with a child, as real tools have), or start slowly. A hanging or
 * slow one first writes `marker` (JSON `{"pid"}`, as the smolvm stand-in's SMOLVM_SIM_MARKERS do),
 * so that a test cancels while it is really there.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Misbehaviour = 'fail' | 'hang' | 'slow';

/** How long a slow tool waits before doing its job: longer than any test waits to cancel it. */
export const SLOW_SECONDS = 30;

/** Writes `<dir>/<name>` that misbehaves when its first argument is `subcommand`. */
export function misbehavingTool(dir: string, name: string, realTool: string, subcommand: string, how: Misbehaviour, marker: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}-${subcommand}-${how}`);
  const mark = `printf '{"pid":%d}' $$ > '${marker}.tmp' && mv '${marker}.tmp' '${marker}'`;
  const action = {
    fail: `echo "Error: simulated ${name} ${subcommand} failure" >&2; exit 1`,
    hang: `sleep 3600 & ${mark}; wait`,
    slow: `${mark}; sleep ${SLOW_SECONDS}; exec '${realTool}' "$@"`,
  }[how];
  writeFileSync(path, `#!/bin/sh\nif [ "$1" = '${subcommand}' ]; then ${action}; fi\nexec '${realTool}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}
