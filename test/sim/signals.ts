/**
 * Signals. smolvm's CLI sets no SIGTERM or SIGHUP handler (only `serve` does, src/cli/serve.rs:705),
 * so the default action ends it at once, without running destructors: the children it started are
 * left running (src/process.rs:2537-2539 says so of SIGINT before its guard). The stand-in does
 * the same: Node's default for these signals exits without a word, and nothing of ours cleans up
 * after a caller that signalled only us. A process-group kill is what ends everything.
 */

/** A reader that went away (`smolvm ... | head`) ends us quietly, as it would a Rust CLI. */
export function exitQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(process.exitCode ?? 1);
      throw error;
    });
  }
}

/** With a terminal attached, Ctrl-C belongs to the guest command, not to us. */
export function leaveInterruptsToGuest(): void {
  process.removeAllListeners('SIGINT');
  process.on('SIGINT', () => undefined);
}
