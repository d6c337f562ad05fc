// `npm run test:extension`: runs test/extension/**/*.test.ts (bundled to out/test/extension) in a
// real VS Code extension host with @vscode/test-electron's runTests().
//
// Here desktop VS Code cannot be downloaded, so runTests() launches codeServerShim instead of
// `code`: code-server + Chromium, same arguments, same exit code. Set BOT_BOTTLE_VSCODE=desktop
// to let test-electron download desktop VS Code instead, or BOT_BOTTLE_VSCODE=/path/to/code.
//
// The extension host gets: SMOLVM_DATA_DIR (a fresh folder), PATH with test/sim/bin (the smolvm
// stand-in) first, BOT_BOTTLE_TEST=1, BOT_BOTTLE_TEST_RUN_DIR, BOT_BOTTLE_TEST_SMOLVM; and user
// settings botBottle.paths.smolvm (the stand-in) and botBottle.stateDir (a fresh folder).
// BOT_BOTTLE_TEST_GREP=<regexp> runs only matching tests.
import { runTests } from '@vscode/test-electron';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { chromiumPath } from './browser';
import { codeServerInstall, repoRoot, writeUserSettings } from './codeServer';

function fail(message: string): never {
  process.stderr.write(`\nextension tests: ${message}\n`);
  process.exit(1);
}

async function main(): Promise<number> {
  const root = repoRoot();
  const mode = process.env.BOT_BOTTLE_VSCODE ?? 'code-server';
  const extensionDevelopmentPath = resolve(process.env.BOT_BOTTLE_DEV_EXTENSION ?? root);
  const extensionTestsPath = join(root, 'out/test/extension/index.cjs');
  const shimScript = join(root, 'out/test/vscode/codeServerShim.cjs');

  if (!existsSync(extensionTestsPath)) fail(`${extensionTestsPath} is missing: run node scripts/build.mjs --tests`);
  if (!existsSync(join(extensionDevelopmentPath, 'package.json'))) fail(`no extension at ${extensionDevelopmentPath}`);
  if (mode === 'code-server') {
    try {
      codeServerInstall(root);
      chromiumPath();
    } catch (err) {
      fail((err as Error).message);
    }
    if (!existsSync(shimScript)) fail(`${shimScript} is missing: run node scripts/build.mjs --tests`);
  }

  const runDir = mkdtempSync(join(tmpdir(), 'bb-extension-tests-'));
  const workspace = join(runDir, 'workspace');
  const userDataDir = join(runDir, 'user-data');
  const extensionsDir = join(runDir, 'extensions');
  const smolvmData = join(runDir, 'smolvm-data');
  const stateDir = join(runDir, 'state');
  // A freeze also writes into ~/.bot-bottle: the run's own HOME, never the user's.
  const home = join(runDir, 'home');
  for (const d of [workspace, userDataDir, extensionsDir, smolvmData, stateDir, home]) mkdirSync(d, { recursive: true });

  const simBin = join(root, 'test/sim/bin');
  const smolvm = join(simBin, 'smolvm');
  const extensionEnv: Record<string, string> = {
    SMOLVM_DATA_DIR: smolvmData,
    HOME: home,
    PATH: `${simBin}${delimiter}${process.env.PATH ?? ''}`,
    BOT_BOTTLE_TEST: '1',
    BOT_BOTTLE_TEST_RUN_DIR: runDir,
    BOT_BOTTLE_TEST_SMOLVM: smolvm,
  };
  if (process.env.BOT_BOTTLE_TEST_GREP) extensionEnv.BOT_BOTTLE_TEST_GREP = process.env.BOT_BOTTLE_TEST_GREP;
  writeUserSettings(userDataDir, {
    'botBottle.paths.smolvm': smolvm,
    'botBottle.stateDir': stateDir,
  });

  let vscodeExecutablePath: string | undefined;
  if (mode === 'code-server') {
    // runTests() spawns its executable without a shell: give it a tiny one that runs the shim with this Node.
    vscodeExecutablePath = join(runDir, 'code');
    writeFileSync(vscodeExecutablePath, `#!/bin/sh\nexec '${process.execPath}' '${shimScript}' "$@"\n`);
    chmodSync(vscodeExecutablePath, 0o755);
  } else if (mode !== 'desktop') {
    vscodeExecutablePath = resolve(mode);
  }

  let captured = '';
  const tee = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      captured += chunk.toString();
      if (captured.length > 1_000_000) captured = captured.slice(-500_000);
      process.stdout.write(chunk, cb);
    },
  });

  const started = Date.now();
  let code: number;
  try {
    code = await runTests({
      vscodeExecutablePath,
      extensionDevelopmentPath,
      extensionTestsPath,
      launchArgs: [workspace, `--user-data-dir=${userDataDir}`, `--extensions-dir=${extensionsDir}`],
      extensionTestsEnv: { ...extensionEnv, BOT_BOTTLE_EXTENSION_ENV_KEYS: Object.keys(extensionEnv).join(',') },
      stdout: tee,
    });
  } catch (err) {
    const c = (err as { code?: number }).code;
    code = typeof c === 'number' && c !== 0 ? c : 1;
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = [...captured.matchAll(/^\s*(\d+) passed, (\d+) failed\s*$/gm)].pop();
  if (!summary) {
    process.stderr.write(`\nextension tests: FAILED after ${seconds} s: the suite never reported "N passed, N failed" ` +
      `(exit code ${code}); it did not run (see the log above)\n`);
    return code === 0 ? 1 : code;
  }
  const passed = Number(summary[1]);
  const failed = Number(summary[2]);
  if (passed + failed === 0) {
    process.stderr.write(`\nextension tests: FAILED: 0 tests ran (${seconds} s)\n`);
    return 1;
  }
  if (code !== 0 || failed > 0) {
    process.stderr.write(`\nextension tests: FAILED: ${passed} passed, ${failed} failed, exit code ${code} (${seconds} s)\n`);
    return code === 0 ? 1 : code;
  }
  process.stdout.write(`\nextension tests: ${passed} passed, 0 failed (${seconds} s)\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)),
);
