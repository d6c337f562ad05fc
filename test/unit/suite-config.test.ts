/**
 * Every mocha suite (each test/<suite>/.mocharc.json) fails on a committed it.only, names each
 * skipped test with how it was skipped and ends with the tally scripts/test-all.sh reads. Runs real mocha with each suite's own configuration on
 * two small files of its own instead of the suite's files.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const MOCHA = join(REPO, 'node_modules', 'mocha', 'bin', 'mocha.js');

const suites = readdirSync(join(REPO, 'test'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && readdirSync(join(REPO, 'test', entry.name)).includes('.mocharc.json'))
  .map((entry) => entry.name);

interface MochaRun {
  exitCode: number;
  output: string;
}

/** mocha with `suite`'s configuration, its spec replaced by `file`. */
function runMocha(dir: string, suite: string, file: string): Promise<MochaRun> {
  const config = JSON.parse(readFileSync(join(REPO, 'test', suite, '.mocharc.json'), 'utf8')) as Record<string, unknown>;
  const configFile = join(dir, `${suite}.mocharc.json`);
  writeFileSync(configFile, JSON.stringify({ ...config, spec: [file] }));
  return new Promise((done) => {
    execFile(process.execPath, [MOCHA, '--config', configFile], { cwd: REPO }, (error, stdout, stderr) => {
      done({ exitCode: typeof error?.code === 'number' ? error.code : error ? 1 : 0, output: stdout + stderr });
    });
  });
}

describe('mocha suite configuration', function () {
  this.timeout(60_000);
  let dir: string;
  let onlyFile: string;
  let skipFile: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'bb-suite-config-'));
    onlyFile = join(dir, 'only.test.ts');
    writeFileSync(onlyFile, "describe('focus', () => {\n  it('runs', () => undefined);\n  it.only('is focused', () => undefined);\n});\n");
    skipFile = join(dir, 'skip.test.ts');
    writeFileSync(skipFile, "describe('skips', () => {\n  it('runs', () => undefined);\n  it('skips itself', function () {\n    this.skip();\n  });\n});\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the suites', () => {
    assert.deepEqual([...suites].sort(), ['e2e', 'integration', 'sim-contract', 'unit']);
  });

  for (const suite of suites) {
    it(`${suite}: a committed it.only fails the run`, async () => {
      const run = await runMocha(dir, suite, onlyFile);
      assert.notEqual(run.exitCode, 0, run.output);
      assert.match(run.output, /\.only` forbidden/);
    });

    it(`${suite}: a skipped test is named, with how it was skipped`, async () => {
      const run = await runMocha(dir, suite, skipFile);
      assert.equal(run.exitCode, 0, run.output);
      assert.ok(run.output.endsWith(`  SKIPPED skips skips itself (${skipFile}): this.skip() in the test, at run time\n  tally: 1 passed, 0 failed, 1 skipped\n`), run.output);
    });
  }
});
