import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // Real processes and real fsyncs: two workers keep a 2-core machine honest.
    pool: 'forks',
    maxWorkers: 2,
  },
});
