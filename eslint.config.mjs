// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const CHILD_PROCESS = [
  { name: 'child_process', message: 'Run processes through src/core/run.ts.' },
  { name: 'node:child_process', message: 'Run processes through src/core/run.ts.' },
  { name: 'execa', message: 'Run processes through src/core/run.ts.' },
];
const VSCODE = { name: 'vscode', message: 'src/core must not import vscode: keep VS Code in src/ui.' };

export default tseslint.config(
  { ignores: ['dist/', 'out/', 'node_modules/', '.vscode-test/', 'dist-vsix/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', { paths: CHILD_PROCESS }],
    },
  },
  {
    // The core is the product's brain and must stay testable without VS Code.
    files: ['src/core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [VSCODE, ...CHILD_PROCESS] }] },
  },
  {
    // Tool clients build argv and parse output: they run nothing and know nothing of bottles or settings.
    files: ['src/core/tools/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': ['error', {
        paths: [
          VSCODE,
          ...CHILD_PROCESS,
          { name: '../run', allowTypeImports: true, message: 'Tool clients describe commands; they do not run them (types only from run.ts).' },
        ],
        patterns: [{
          regex: '^\\.\\./(?!errors$|run$)',
          message: 'Tool clients know no bottles, names, state, settings or freeze steps: import only errors (and types from run).',
        }],
      }],
    },
  },
  {
    // The UI talks to the core through one facade, with the core's errors and formatting.
    files: ['src/ui/**/*.ts', 'src/extension.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: CHILD_PROCESS,
        patterns: [{
          regex: '(^|/)core/(?!(facade|errors|format)$)',
          message: 'src/ui reaches the core through core/facade.ts (and core/errors.ts, core/format.ts) only.',
        }],
      }],
    },
  },
  {
    files: ['src/core/run.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
