// Mutation testing of the protocol cores, the effect driver and the host; the WAL file by file (docs/testing.md).
// `npm run mutate` runs it incrementally: reports/stryker-incremental.json (committed) holds the last
// result of every mutant, so only mutants in changed code, or covered by changed tests, run again.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  coverageAnalysis: 'perTest',
  // Mutants that run while a module loads (constants, top-level tables) need every test and a fresh
  // module graph per mutant: hours here. They are listed as ignored, not scored (docs/testing.md).
  ignoreStatic: true,
  // Every file here has its results in the incremental file: a file without them costs a full run of
  // its mutants (the WAL's 2,952 were measured in seven chunks, each a turn of 3 to 37 minutes here,
  // and then re-run after their tests; docs/testing.md, "The WAL"). wal/'s benchmark script,
  // CLI wiring, re-exports and types are not scored (docs/testing.md, "The WAL", says why).
  mutate: [
    'coordinator/core/**/*.ts',
    'participant/core/**/*.ts',
    'shared/driver.ts',
    'shared/runtime.ts',
    'wal/**/*.ts',
    '!wal/bench.ts',
    '!wal/cli.ts',
    '!wal/index.ts',
    '!wal/log.ts',
  ],
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  // Two test runners on the two cores. Where the machine is shared, run it under `nice -n 19`, so it
  // uses only idle CPU (docs/testing.md, "Mutation testing").
  concurrency: 2,
  timeoutMS: 10_000,
  // The dry run runs every selected test once with coverage: minutes on a loaded 2-core machine.
  dryRunTimeoutMinutes: 30,
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  // break: the score recorded in docs/testing.md; a run below it fails (exit code 1).
  thresholds: { high: 90, low: 85, break: 95 },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
