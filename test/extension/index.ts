// The mocha entry the extension host loads (extensionTestsPath = out/test/extension/index.cjs).
// scripts/build.mjs bundles each test/extension/**/*.test.ts to its own .test.cjs next to this
// file, so the suite is whatever .test.cjs files sit below this file's folder.
// Ends with a line "N passed, N failed" that runExtensionTests checks; 0 tests is a failure.
// As in the other suites: a committed it.only fails the run, and each skipped test is named.
import Mocha from 'mocha';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SpecWithSkips } from '../support/skips';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.cjs'))
    .sort()
    .map((f) => join(dir, f));
}

export function run(): Promise<void> {
  const mocha = new Mocha({
    ui: 'bdd',
    color: false,
    reporter: SpecWithSkips,
    forbidOnly: true,
    timeout: Number(process.env.BOT_BOTTLE_MOCHA_TIMEOUT ?? 60_000),
    ...(process.env.BOT_BOTTLE_TEST_GREP ? { grep: process.env.BOT_BOTTLE_TEST_GREP } : {}),
  });
  const files = testFiles(__dirname);
  for (const f of files) mocha.addFile(f);
  console.log(`extension tests: ${files.length} file(s) under ${__dirname}`);

  return new Promise((resolve, reject) => {
    try {
      const runner = mocha.run(() => {
        const { passes, failures } = runner.stats ?? { passes: 0, failures: 0 };
        // Alone on its line, as runExtensionTests reads it; the reporter's tally above has the skips.
        console.log(`${passes} passed, ${failures} failed`);
        if (failures > 0) reject(new Error(`${failures} extension test(s) failed`));
        else if (passes === 0) reject(new Error('0 extension tests ran'));
        else resolve();
      });
    } catch (err) {
      console.error(err);
      console.log('0 passed, 1 failed');
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
