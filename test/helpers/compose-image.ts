/**
 * The Docker image as tests without a Docker engine can have it: the Dockerfile's final stage
 * read instruction by instruction, and its /app built as the build stage builds it (dist/ from
 * tsconfig.build.json, beside package.json and the dependencies). compose.test.ts and
 * compose-ha.test.ts run their compose files' services on it as local processes.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';

export interface ComposeService {
  image?: string;
  command: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}

const run = promisify(execFile);
export const root = path.resolve(import.meta.dirname, '../..');
/** The unprivileged user the processes run as when the test runs as root (`nobody`; the image's is `node`). */
export const UNPRIVILEGED_ID = 65_534;
const BUILD_TIMEOUT_MS = 240_000;

/** A compose file's services, YAML merge keys (`<<: *anchor`) applied. */
export function loadCompose(file: string): Record<string, ComposeService> {
  const doc = parseYaml(fs.readFileSync(path.join(root, file), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  return doc.services;
}

/** The instructions of the Dockerfile's last stage, the one that ships, by keyword (continuation lines joined). */
export function finalStage(): { keyword: string; args: string }[] {
  const text = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const from = lines.map((l) => l.split(/\s+/)[0]?.toUpperCase()).lastIndexOf('FROM');
  return lines.slice(from).map((l) => {
    const [keyword = '', ...rest] = l.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
  });
}

/** The last instruction of the final stage with this keyword, its arguments as written. */
export function instruction(keyword: string): string | undefined {
  return finalStage().filter((i) => i.keyword === keyword).at(-1)?.args;
}

/** Builds the image's /app under `dataDir/app` and returns its path. */
export async function buildImageApp(dataDir: string): Promise<string> {
  const app = path.join(dataDir, 'app');
  await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')], {
    timeout: BUILD_TIMEOUT_MS,
  });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(app, 'package.json'));
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(app, 'node_modules'), 'dir');
  // mkdtemp makes the directory private to its owner; the unprivileged user must reach the image and its data.
  if (process.getuid?.() === 0) fs.chmodSync(dataDir, 0o755);
  return app;
}
