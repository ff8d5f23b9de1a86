#!/usr/bin/env node
// Entry for `npx twopc`: registers tsx so the TypeScript sources run without a build step.
import { register } from 'tsx/esm/api';

register();
await import('./twopc.ts');
