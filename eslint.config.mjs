// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'out/', 'node_modules/', '.vscode-test/', 'dist-vsix/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { paths: [{ name: 'child_process', message: 'Run processes through src/core/run.ts.' }, { name: 'node:child_process', message: 'Run processes through src/core/run.ts.' }] }],
    },
  },
  {
    // The core is the product's brain and must stay testable without VS Code.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [
          { name: 'vscode', message: 'src/core must not import vscode: keep VS Code in src/ui.' },
          { name: 'child_process', message: 'Run processes through src/core/run.ts.' },
          { name: 'node:child_process', message: 'Run processes through src/core/run.ts.' },
        ],
      }],
    },
  },
  {
    files: ['src/core/run.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
