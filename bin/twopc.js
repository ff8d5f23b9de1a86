#!/usr/bin/env node
// Entry for `npx twopc`, one file for both ways the package is found.
// In a clone the TypeScript sources sit beside this file: they run through tsx (a devDependency),
// so the CLI needs no build step and never runs a stale dist/. An installed package ships only
// the built JavaScript (package.json `files`), which runs on plain Node.
import { existsSync } from 'node:fs';

const sources = new URL('./twopc.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/bin/twopc.js', import.meta.url).href);
}
