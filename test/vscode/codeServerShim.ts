// Stands in for the desktop `code` executable that @vscode/test-electron's runTests() launches:
// takes the same arguments (--extensionDevelopmentPath=, --extensionTestsPath=, --user-data-dir=,
// --extensions-dir=, a folder) and runs the extension tests in code-server + Chromium instead.
//
// code-server runs with the smoke-test driver on; the page gets codeAutomationLog and
// codeAutomationExit before it loads, and the workbench opens with a payload naming the
// extension under development and the tests. The workbench runs the suite in the real (Node)
// extension host and calls codeAutomationExit(code): that code is this process's exit code.
// Everything in this process's environment reaches the extension host (code-server passes its
// environment on, and the payload's extensionEnvironment repeats the keys named in
// BOT_BOTTLE_EXTENSION_ENV_KEYS, so a login shell cannot replace them).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { format } from 'node:util';
import { launchBrowser, type BrowserSession } from './browser';
import { startCodeServer, type CodeServer } from './codeServer';

interface ShimArgs {
  extensionDevelopmentPaths: string[];
  extensionTestsPath?: string;
  userDataDir?: string;
  extensionsDir?: string;
  folder?: string;
}

function parseArgs(argv: string[]): ShimArgs {
  const out: ShimArgs = { extensionDevelopmentPaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(a);
    if (!m) {
      out.folder ??= resolve(a);
      continue;
    }
    const [, key, inline] = m;
    const takesValue = ['extensionDevelopmentPath', 'extensionTestsPath', 'user-data-dir', 'extensions-dir'].includes(key);
    const value = inline ?? (takesValue ? argv[++i] : undefined);
    if (value === undefined) continue;
    if (key === 'extensionDevelopmentPath') out.extensionDevelopmentPaths.push(resolve(value));
    else if (key === 'extensionTestsPath') out.extensionTestsPath = resolve(value);
    else if (key === 'user-data-dir') out.userDataDir = resolve(value);
    else if (key === 'extensions-dir') out.extensionsDir = resolve(value);
    // Desktop-only flags (--no-sandbox, --disable-updates, ...) mean nothing here.
  }
  return out;
}

function say(line: string): void {
  process.stdout.write(line.endsWith('\n') ? line : `${line}\n`);
}

/** Workbench errors that mean nothing here (no internet, no GitHub sign-in, no vsda). */
const NOISE = /ENOTFOUND|ERR_NAME_NOT_RESOLVED|authentication provider|vsda|open-vsx\.org|^Canceled|\[DefaultAccount\]|took \d+ms|No search provider registered/;
const SUITE_START = /^extension tests: \d+ file\(s\)/;

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (!args.extensionTestsPath || args.extensionDevelopmentPaths.length === 0) {
    say('code-server shim: need --extensionDevelopmentPath=... and --extensionTestsPath=...');
    return 2;
  }
  const timeoutMs = Number(process.env.BOT_BOTTLE_EXTENSION_TEST_TIMEOUT ?? 300_000);
  const scratch = mkdtempSync(join(tmpdir(), 'bb-shim-'));
  const folder = args.folder ?? join(scratch, 'workspace');
  mkdirSync(folder, { recursive: true });

  let server: CodeServer | undefined;
  let browser: BrowserSession | undefined;
  let timer: NodeJS.Timeout | undefined;
  const verbose = process.env.BOT_BOTTLE_CS_VERBOSE === '1';
  const started = Date.now();
  try {
    server = await startCodeServer({
      folder,
      userDataDir: args.userDataDir,
      extensionsDir: args.extensionsDir,
      smokeTestDriver: true,
    });
    say(`code-server ${server.url} ready in ${Date.now() - started} ms (pid ${server.pid})`);
    browser = await launchBrowser();
    const page = browser.page;

    let finish!: (code: number) => void;
    const exited = new Promise<number>((res) => (finish = res));
    // The suite's lines (mocha's reporter, console.* in tests and in the extension) and the
    // workbench's own log arrive here alike, console.log-style ('%s', args). Until the suite
    // starts only errors are shown; noise that means nothing offline is dropped; everything
    // is shown with BOT_BOTTLE_CS_VERBOSE=1 (=2 adds the raw arguments).
    let suiteStarted = false;
    await page.exposeFunction('codeAutomationLog', (type: string, logArgs: unknown) => {
      const list = Array.isArray(logArgs) ? (logArgs as unknown[]) : [logArgs];
      if (process.env.BOT_BOTTLE_CS_VERBOSE === '2') say(`[raw ${type}] ${JSON.stringify(list)}`);
      const text = format(...list);
      if (SUITE_START.test(text)) suiteStarted = true;
      const isError = type === 'error' || type === 'warn';
      const show = verbose || (isError ? !NOISE.test(text) : suiteStarted && type !== 'debug' && type !== 'trace');
      if (!show) return;
      let lines = text.split('\n');
      // The workbench's own stack traces say nothing about the suite: keep their first line.
      if (isError && !verbose && lines.some((l) => /\/static\/out\/vs\//.test(l))) lines = lines.slice(0, 1);
      for (const line of lines) say(isError ? `[${type}] ${line}` : line);
    });
    await page.exposeFunction('codeAutomationExit', (code: number) => finish(Number(code) || 0));
    let over = false;
    void server.exited.then((c) => {
      if (over) return; // stopped by us, below
      say(`code-server shim: code-server exited during the run (${c})\n${server?.logTail() ?? ''}`);
      finish(1);
    });
    page.on('crash', () => {
      say('code-server shim: the browser page crashed');
      finish(1);
    });

    const authority = `${server.host}:${server.port}`;
    const remote = (p: string): string => `vscode-remote://${authority}${p}`;
    const payload: [string, string][] = args.extensionDevelopmentPaths.map((p) => ['extensionDevelopmentPath', remote(p)]);
    payload.push(['extensionTestsPath', remote(args.extensionTestsPath)]);
    const keys = (process.env.BOT_BOTTLE_EXTENSION_ENV_KEYS ?? '').split(',').filter((k) => k !== '');
    const extEnv = Object.fromEntries(keys.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
    if (keys.length > 0) payload.push(['extensionEnvironment', JSON.stringify(extEnv)]);
    const url = `${server.url}?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;

    let gaveUp = false;
    const timedOut = new Promise<number>((res) => {
      timer = setTimeout(() => {
        gaveUp = true;
        say(`code-server shim: TIMEOUT: the extension tests did not finish within ${timeoutMs / 1000} s ` +
          '(set BOT_BOTTLE_EXTENSION_TEST_TIMEOUT in ms to change it; BOT_BOTTLE_CS_VERBOSE=1 shows the workbench log)');
        res(124);
      }, timeoutMs);
    });
    await page.goto(url);
    const code = await Promise.race([exited, timedOut]);
    over = true;
    if (!gaveUp) say(`code-server shim: the workbench reported exit code ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (code !== 0 && verbose) say(server.logTail());
    return code;
  } finally {
    if (timer) clearTimeout(timer);
    await browser?.close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`code-server shim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
