import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

/** The project's own lint configuration, applied to code as if it sat at `filePath`. */
async function lint(code: string, filePath: string): Promise<string[]> {
  const [result] = await new ESLint().lintText(code, { filePath });
  return result.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('lint rules that keep the layers apart', function () {
  this.timeout(60_000);

  it('fails on a vscode import under src/core', async () => {
    const messages = await lint("import * as vscode from 'vscode';\nexport const x = vscode.version;\n", 'src/core/example.ts');
    assert.deepEqual(messages, ["no-restricted-imports: 'vscode' import is restricted from being used. src/core must not import vscode: keep VS Code in src/ui."]);
  });

  it('allows the same import in src/ui', async () => {
    assert.deepEqual(await lint("import * as vscode from 'vscode';\nexport const x = vscode.version;\n", 'src/ui/example.ts'), []);
  });

  it('fails on child_process anywhere in src but the process runner', async () => {
    const code = "import { spawn } from 'node:child_process';\nexport const s = spawn;\n";
    assert.equal((await lint(code, 'src/ui/example.ts')).length, 1);
    assert.equal((await lint(code, 'src/core/tools/example.ts')).length, 1);
    assert.deepEqual(await lint(code, 'src/core/run.ts'), []);
  });
});

describe('lint rules that keep src/ui on the facade and tools/ pure', function () {
  this.timeout(60_000);
  const uses = (from: string, names = 'x') => `import { ${names} } from '${from}';\nexport const y = ${names};\n`;

  it('refuses every core module but the facade, errors and format in src/ui and extension.ts', async () => {
    for (const module of ['../core/tools/smolvm', '../core/run', '../core/names', '../core/state', '../core/freeze/smolmachines', '../core/services']) {
      const messages = await lint(uses(module), 'src/ui/example.ts');
      assert.deepEqual(messages.map((m) => m.split(':')[0]), ['no-restricted-imports'], `${module}: ${messages.join('; ')}`);
    }
    assert.equal((await lint(uses('./core/resume'), 'src/extension.ts')).length, 1);
    for (const module of ['../core/facade', '../core/errors', '../core/format']) assert.deepEqual(await lint(uses(module), 'src/ui/example.ts'), [], module);
  });

  it('refuses names, state, freeze and settings in src/core/tools, and running anything there', async () => {
    for (const module of ['../names', '../state', '../freeze/context', '../settings', '../executables']) {
      const messages = await lint(uses(module), 'src/core/tools/example.ts');
      assert.deepEqual(messages.map((m) => m.split(':')[0]), ['@typescript-eslint/no-restricted-imports'], `${module}: ${messages.join('; ')}`);
    }
    assert.equal((await lint(uses('../run', 'createRunner'), 'src/core/tools/example.ts')).length, 1, 'a value import from run.ts');
    assert.equal((await lint(uses('execa'), 'src/core/tools/example.ts')).length, 1, 'execa');
    assert.deepEqual(await lint("import type { ToolCommand } from '../run';\nexport type T = ToolCommand<void>;\n", 'src/core/tools/example.ts'), []);
    assert.deepEqual(await lint(uses('../errors', 'UserError'), 'src/core/tools/example.ts'), []);
  });
});
