import { defineConfig } from 'vitest/config';

// The test files a mutation run (`npm run mutate`, stryker.config.mjs) may use. Stryker runs each mutant
// against the tests that reached it, so a slow test that reaches many mutants multiplies the run: only
// in-process tests that finish in milliseconds to a few seconds belong here. Left out:
// - the simulator's tests (test/sim): they reach every mutant and stretch a run to hours on 2 cores;
// - real processes (test/integration, test/scenarios, the embedded-service and WAL CLI tests): their
//   child processes run the unmutated code, so they can kill nothing;
// - the HTTP service suites (coordinator/http, participant/server, shared/app): seconds per run, and
//   what they reach in the cores the core and runtime tests reach directly;
// - the two services' runtime tests (test/*/runtime): they run a core under real timers, so a
//   mutant that stops a reply hangs them until Stryker's timeout (and a runner restart) each time.
//   The host and the driver have their own tests here (test/shared/runtime-host, driver*).
// docs/testing.md says which mutants only those other layers would catch.
export default defineConfig({
  test: {
    include: [
      'test/coordinator/core/**/*.test.ts',
      'test/participant/core/**/*.test.ts',
      'test/participant/resources/**/*.test.ts',
      'test/shared/driver*.test.ts',
      'test/shared/runtime-host.test.ts',
      'test/wal/**/*.test.ts',
    ],
    // The WAL CLI test runs one case in a child process; the PostgreSQL suites need a running server
    // (CI starts one, a developer's machine may not) and reach the mutated files only through the
    // shared port suite, which the kv, durable and inventory runs already run in process.
    // The exhaustive WAL runs (truncation at every byte offset, power loss at every sync boundary,
    // the model property) take seconds each, and every WAL mutant reaches them: they would stretch
    // a WAL run to hours here. The WAL's unit, port-suite (memory and simulated disk), corruption,
    // recovery and fsync-failure tests stay in; the real-disk port run repeats the simulated one.
    exclude: [
      'test/wal/cli.test.ts',
      'test/participant/resources/postgres*.test.ts',
      'test/wal/truncation.test.ts',
      'test/wal/power-loss.test.ts',
      'test/wal/model.property.test.ts',
      'test/wal/file-log-node.test.ts',
    ],
    // One module graph for all files: Stryker switches mutants through a global, so nothing needs
    // re-importing between runs, and a run pays no per-file import cost. These tests keep no module state.
    isolate: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
