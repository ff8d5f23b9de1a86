#!/usr/bin/env node
// Merges mutation reports of runs over different files (`stryker run --mutate <some files>
// --incrementalFile <one per run>`) into one incremental file, so a first measurement can be taken
// in chunks that each fit a turn on a shared machine. Test and mutant ids are numbers local to each
// run: they are renumbered, tests matched by file and name. A file in several reports keeps the
// last one's result. Usage: node scripts/stryker-merge.mjs OUT IN...
import { readFileSync, writeFileSync } from 'node:fs';

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) {
  console.error('usage: node scripts/stryker-merge.mjs OUT IN...');
  process.exit(2);
}

const reports = inputs.map((path) => JSON.parse(readFileSync(path, 'utf8')));
const merged = { ...reports.at(-1), files: {}, testFiles: {} };
const testIds = new Map(); // "file\0name" -> new id
const testsByFile = new Map(); // file -> Map(new id -> test)
let nextMutantId = 0;

for (const report of reports) {
  const local = new Map(); // this report's test id -> new id
  for (const [file, { tests, ...rest }] of Object.entries(report.testFiles ?? {})) {
    if (!testsByFile.has(file)) testsByFile.set(file, { rest, tests: new Map() });
    for (const test of tests) {
      const key = `${file}\0${test.name}`;
      if (!testIds.has(key)) testIds.set(key, String(testIds.size));
      const id = testIds.get(key);
      local.set(test.id, id);
      testsByFile.get(file).tests.set(id, { ...test, id });
    }
  }
  const remap = (ids) => ids?.map((id) => local.get(id)).filter((id) => id !== undefined);
  for (const [file, result] of Object.entries(report.files)) {
    merged.files[file] = {
      ...result,
      mutants: result.mutants.map((m) => ({
        ...m,
        id: String(nextMutantId++),
        ...(m.coveredBy ? { coveredBy: remap(m.coveredBy) } : {}),
        ...(m.killedBy ? { killedBy: remap(m.killedBy) } : {}),
      })),
    };
  }
}
for (const [file, { rest, tests }] of testsByFile) merged.testFiles[file] = { ...rest, tests: [...tests.values()] };

writeFileSync(out, JSON.stringify(merged));
const counts = Object.values(merged.files).flatMap((f) => f.mutants);
console.log(`${out}: ${Object.keys(merged.files).length} files, ${counts.length} mutants, ${testIds.size} tests`);
