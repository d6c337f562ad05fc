import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, ToolError } from '../../src/core/errors';
import { MemoryLog } from '../support/memoryLog';
import { createRunner, formatCommand, splitLines } from '../../src/core/run';
import { isAlive, waitFor } from '../support/processes';


describe('process runner', () => {
  it('passes argv through without a shell and streams every line to the log', async () => {
    const log = new MemoryLog();
    const run = createRunner(log);
    const result = await run(['printf', '%s\\n', 'a b', '$HOME', '; rm -rf /']);
    assert.equal(result.stdout, 'a b\n$HOME\n; rm -rf /');
    assert.match(log.lines[0], /^\$ printf /);
    assert.ok(log.lines.includes('  $HOME'), log.text);
    assert.ok(log.lines.includes('  ; rm -rf /'), log.text);
  });

  it('hands each \\r redraw of a progress line to onLine as it comes, and logs only the line that stays', async () => {
    // smolvm's ProgressBar writes "\\r" + line with no newline, and one "\\n" at the end (src/cli/mod.rs:114-144).
    const dir = mkdtempSync(join(tmpdir(), 'run-test-'));
    try {
      const seenFirst = join(dir, 'seen-first');
      const log = new MemoryLog();
      const seen: string[] = [];
      // The last redraw is printed only once the test has seen the first: a runner that waited for "\\n" would never see it.
      const script = [
        'printf "\\rDownloading /a -> b: 1.0 MB (1.0 MB/s)\\rDownloading /a -> b: 2.0 MB (1.0 MB/s)" >&2',
        `for i in $(seq 100); do [ -e '${seenFirst}' ] && break; sleep 0.1; done`,
        `if [ -e '${seenFirst}' ]; then printf "\\rDownloading /a -> b: 3.0 MB (1.0 MB/s)\\n" >&2; else echo "never handed on" >&2; fi`,
      ].join('; ');
      const result = await createRunner(log)(['sh', '-c', script], {
        onLine: (stream, line) => {
          seen.push(`${stream}:${line}`);
          if (line.includes('1.0 MB (')) writeFileSync(seenFirst, '');
        },
      });
      assert.deepEqual(seen, ['stderr:Downloading /a -> b: 1.0 MB (1.0 MB/s)', 'stderr:Downloading /a -> b: 2.0 MB (1.0 MB/s)', 'stderr:Downloading /a -> b: 3.0 MB (1.0 MB/s)']);
      assert.deepEqual(log.lines.filter((l) => l.startsWith('  Downloading')), ['  Downloading /a -> b: 3.0 MB (1.0 MB/s)']);
      assert.match(result.stderr, /^\rDownloading .*\rDownloading .*\rDownloading .*3\.0 MB \(1\.0 MB\/s\)$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hands on a redraw as soon as it is written, not when the next one comes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-test-'));
    try {
      const seen1 = join(dir, 'seen-1');
      const seen: string[] = [];
      // The second redraw is printed only once the test has seen the first, which no "\r" follows yet.
      const script = [
        'printf "\rDownloading /a -> b: 1.0 MB (1.0 MB/s)" >&2',
        `for i in $(seq 100); do [ -e '${seen1}' ] && break; sleep 0.1; done`,
        `if [ -e '${seen1}' ]; then printf "\rDownloading /a -> b: 2.0 MB (1.0 MB/s)\n" >&2; else echo "held back" >&2; fi`,
      ].join('; ');
      const log = new MemoryLog();
      await createRunner(log)(['sh', '-c', script], {
        onLine: (_stream, line) => {
          seen.push(line);
          if (line.endsWith('1.0 MB (1.0 MB/s)')) writeFileSync(seen1, '');
        },
      });
      assert.deepEqual(seen, ['Downloading /a -> b: 1.0 MB (1.0 MB/s)', 'Downloading /a -> b: 2.0 MB (1.0 MB/s)']);
      assert.deepEqual(log.lines.filter((l) => l.startsWith('  Downloading')), ['  Downloading /a -> b: 2.0 MB (1.0 MB/s)']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hands on a redraw cut by a chunk boundary again whole, and a line cut there only once whole', () => {
    // The chunk that ends "2.0 MB\r" may be half of "\r\n": its text is a redraw until the "\n" comes.
    const seen: Array<[string, boolean]> = [];
    const split = splitLines((text, redraw) => seen.push([text, redraw]));
    const feed = (text: string) => [...split.transform(new TextEncoder().encode(text))];
    feed('first li');
    feed('ne\r\nDown');
    feed('loading 1.0 MB\rDownloading 2.0 MB\r');
    feed('\n');
    for (const _ of split.final()) assert.fail("final() yields nothing");
    assert.deepEqual(seen, [
      ['first line', false],
      ['Downloading 1.0 MB', true],
      ['Downloading 2.0 MB', true],
      ['Downloading 2.0 MB', false],
    ]);
  });

  it('turns a bad exit status into a ToolError with the command, status and stderr tail', async () => {
    const run = createRunner(new MemoryLog());
    const error = await run(['sh', '-c', 'echo first >&2; echo "Error: boom" >&2; exit 3']).catch((e) => e);
    assert.ok(error instanceof ToolError);
    assert.equal(error.exitCode, 3);
    assert.deepEqual(error.command.slice(0, 2), ['sh', '-c']);
    assert.equal(error.reason, 'Error: boom');
    assert.match(error.stderrTail, /first\nError: boom/);
  });

  it('accepts the exit codes a caller allows', async () => {
    const result = await createRunner(new MemoryLog())(['sh', '-c', 'exit 1'], { okExitCodes: [0, 1] });
    assert.equal(result.exitCode, 1);
  });

  it('says plainly when the program does not exist', async () => {
    const error = await createRunner(new MemoryLog())(['/nonexistent/smolvm', 'machine', 'ls']).catch((e) => e);
    assert.ok(error instanceof ToolError);
    assert.equal(error.exitCode, undefined);
    assert.match(error.message, /\/nonexistent\/smolvm was not found/);
  });

  it('kills the child and its grandchild when the signal aborts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-test-'));
    try {
      const pidFile = join(dir, 'pids');
      const controller = new AbortController();
      const run = createRunner(new MemoryLog());
      // The child starts a grandchild in the background and records both pids.
      const pending = run(['sh', '-c', `sleep 300 & echo "$$ $!" > '${pidFile}'; wait`], { signal: controller.signal });
      assert.ok(await waitFor(() => readFileSync(pidFile, { flag: 'a+' }).toString().includes(' '), 5000));
      const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
      assert.ok(pids.every(isAlive));
      controller.abort();
      await assert.rejects(pending, CancelledError);
      assert.ok(await waitFor(() => !pids.some(isAlive), 3000), `still alive: ${pids.filter(isAlive)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start when already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(createRunner(new MemoryLog())(['true'], { signal: controller.signal }), CancelledError);
  });

  it('kills a command that runs past its timeout', async () => {
    const started = Date.now();
    const error = await createRunner(new MemoryLog())(['sleep', '30'], { timeoutMs: 200 }).catch((e) => e);
    assert.ok(error instanceof ToolError);
    assert.match(error.message, /did not finish within/);
    assert.ok(Date.now() - started < 5000);
  });

  it('formats a command line for the log with quotes where needed', () => {
    assert.equal(formatCommand(['smolvm', 'machine', 'cp', 'vm:/a', "/tmp/it's here"]), `smolvm machine cp vm:/a '/tmp/it'\\''s here'`);
  });
});
