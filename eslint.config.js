import tseslint from 'typescript-eslint';

const bannedInCore = [
  { group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'http', 'https', 'net', 'crypto', 'child_process', 'zlib', 'timers', 'timers/*'],
    message: 'Protocol cores are pure: no Node builtins (do I/O in an adapter).' },
  { group: ['express', 'express/*', 'axios', 'axios/*', 'p-retry', 'pino', 'pino/*'],
    message: 'Protocol cores are pure: no HTTP or logging libraries (do I/O in an adapter).' },
];

export default tseslint.config(
  // .stryker-tmp holds a mutation run's sandbox copy of the tree while `npm run mutate` runs.
  { ignores: ['node_modules/**', 'dist/**', 'test/fixtures/consumer/**', '.twopc/**', 'coverage/**', '.stryker-tmp/**', 'reports/**', 'bin/twopc.js', 'eslint.config.js'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: bannedInCore }],
      'no-restricted-globals': ['error',
        { name: 'Date', message: 'Cores take time as an event, not from the clock.' },
        { name: 'setTimeout', message: 'Cores emit setTimer effects.' },
        { name: 'setInterval', message: 'Cores emit setTimer effects.' },
        { name: 'process', message: 'Cores do no I/O.' },
      ],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Cores take randomness as input.' }],
    },
  },
);
