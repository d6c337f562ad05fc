// Bundles the extension (and, with --tests, the test code that must run as plain JS).
import * as esbuild from 'esbuild';
import process from 'node:process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const tsFilesUnder = (dir) =>
  existsSync(dir) ? readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f)) : [];

const production = process.argv.includes('--production');
const tests = process.argv.includes('--tests');

const common = { bundle: true, platform: 'node', target: 'node20', sourcemap: !production, logLevel: 'warning' };

await esbuild.build({
  ...common,
  entryPoints: ['src/extension.ts'],
  outfile: 'dist/extension.cjs',
  format: 'cjs',
  external: ['vscode'],
  minify: production,
});

await esbuild.build({
  ...common,
  entryPoints: ['test/sim/smolvm.ts'],
  outfile: 'out/sim/smolvm.cjs',
  format: 'cjs',
});

if (tests) {
  await esbuild.build({
    ...common,
    entryPoints: [...tsFilesUnder('test/extension'), ...tsFilesUnder('test/vscode')],
    outdir: 'out/test',
    outbase: 'test',
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
    external: ['vscode', 'mocha', 'playwright-core', '@vscode/test-electron'],
  });
}
