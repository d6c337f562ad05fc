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
