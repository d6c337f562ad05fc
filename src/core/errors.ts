/** Errors the UI knows how to explain. Each carries a message fit to show a user as it is. */

/**
 * A child process ended badly: the command, its exit status and the tail of its stderr, with the
 * tool's own error line when its client knows how to find it (smolvm's, in tools/smolvmRules.ts).
 */
export class ToolError extends Error {
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderrTail: string,
    detail?: string,
    readonly toolReason?: string,
  ) {
    super(detail ?? ToolError.describe(command, exitCode, toolReason ?? lastLine(stderrTail)));
    this.name = 'ToolError';
  }

  /** The most telling line of stderr: the tool's own error line when known, else the last line. */
  get reason(): string {
    return this.toolReason ?? lastLine(this.stderrTail);
  }

  private static describe(command: readonly string[], exitCode: number | undefined, reason: string): string {
    const tool = command[0]?.split('/').pop() ?? 'command';
    const status = exitCode === undefined ? 'could not be started' : `exited with status ${exitCode}`;
    return reason ? `${tool} ${status}: ${reason}` : `${tool} ${status}`;
  }
}

/** The last non-empty line as a terminal would show it: a progress bar's `\r` redraws leave only the last. */
function lastLine(text: string): string {
  const line = text.split('\n').map((l) => l.slice(l.lastIndexOf('\r') + 1).trim()).filter(Boolean).at(-1);
  return line ?? '';
}

/** A step failed: says which, with the cause's own message. */
export class StepFailedError extends Error {
  constructor(
    readonly stepId: string,
    readonly stepTitle: string,
    override readonly cause: unknown,
  ) {
    super(`${stepTitle} failed: ${errorMessage(cause)}`);
    this.name = 'StepFailedError';
  }
}

/** The user (or a caller's AbortSignal) cancelled the work. */
export class CancelledError extends Error {
  constructor(
    message = 'Cancelled',
    /** What the work had already changed before it stopped, in the user's words; undefined when nothing. */
    readonly aftermath?: string,
  ) {
    super(message);
    this.name = 'CancelledError';
  }
}

/** Input the user can fix: a bad name, a path smolvm would misread, a missing file. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

export function isCancelled(error: unknown): error is CancelledError {
  return error instanceof CancelledError;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** File-system error codes in words a user understands. */
const FS_ERROR_WORDS: Readonly<Record<string, string>> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'the operation is not permitted',
  ENOENT: 'the file or folder does not exist',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder, not a file',
  ENAMETOOLONG: 'the name is too long',
  EIO: 'the disk reported an input/output error',
  EBUSY: 'it is in use, e.g. a mount point',
};

/** A file-system error in plain words with its code, e.g. "the disk is full (ENOSPC)"; else its message. */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const words = code ? FS_ERROR_WORDS[code] : undefined;
  return words ? `${words} (${code})` : errorMessage(error);
}
