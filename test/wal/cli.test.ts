/**
 * `wal inspect` and `wal verify`: output, exit codes, --json, and that they never change a
 * byte. Most cases run in-process through registerWalCommands; one runs the real process.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerWalCommands } from '../../wal/cli.ts';
import { openFileLog } from '../../wal/file-log.ts';
import { tempDir } from './helpers/temp-dir.ts';

const SEGMENT_BYTES = 4096;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function makeLog(records = 120): Promise<{ dir: string; segments: string[] }> {
  const { dir, remove } = await tempDir('twopc-wal-cli-');
  cleanups.push(remove);
  const { log } = await openFileLog(dir, { segmentBytes: SEGMENT_BYTES, syncPolicy: 'none' });
  for (let i = 1; i <= records; i++) await log.append(1 + (i % 3), new TextEncoder().encode(JSON.stringify({ txId: `tx-${i}`, state: 'prepared', note: 'n'.repeat(i % 40) })));
  await log.append(7, Uint8Array.from([0, 1, 2, 250, 251, 252]));
  await log.close();
  const segments = (await readdir(dir)).filter((name) => name.endsWith('.wal')).sort();
  return { dir, segments };
}

async function digest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(dir)).sort()) hash.update(name).update(await readFile(path.join(dir, name)));
  return hash.digest('hex');
}

async function flip(file: string, offset: number): Promise<void> {
  const bytes = await readFile(file);
  bytes[offset] = (bytes[offset] ?? 0) ^ 0xff;
  await writeFile(file, bytes);
}

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const program = new Command().name('twopc').exitOverride();
  registerWalCommands(program, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text), setExitCode: (c) => (code = c) });
  await program.parseAsync(['node', 'twopc', ...args]);
  return { stdout, stderr, code };
}

describe('wal verify', () => {
  it('says an intact log is intact, exit 0', async () => {
    const { dir } = await makeLog();
    const text = await cli('wal', 'verify', dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^OK \(intact\): .* 121 records, last LSN 121/);
    const json = await cli('wal', 'verify', dir, '--json');
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(json.stdout.trim().split('\n')).toHaveLength(1);
    expect(report).toMatchObject({ status: 'intact', ok: true, records: 121, lastLsn: 121, corruption: null, tornTail: null });
  });

  it('reports a torn tail with exit 0 and changes nothing', async () => {
    const { dir, segments } = await makeLog();
    const last = path.join(dir, segments.at(-1) ?? '');
    const inspect = JSON.parse((await cli('wal', 'inspect', dir, '--json')).stdout) as { entries: { offset: number }[] };
    await flip(last, (inspect.entries.at(-1)?.offset ?? 0) + 2);
    const before = await digest(dir);
    const text = await cli('wal', 'verify', dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/OK \(torn tail\)/);
    expect(text.stdout).toMatch(/Torn tail in segment \d{20}\.wal at byte offset \d+/);
    const json = JSON.parse((await cli('wal', 'verify', dir, '--json')).stdout) as { status: string; tornTail: { segment: string } };
    expect(json.status).toBe('torn-tail');
    expect(json.tornTail.segment).toBe(segments.at(-1));
    expect(await digest(dir)).toBe(before);
  });

  it('reports mid-log corruption with exit 1, naming segment and offset, and changes nothing', async () => {
    const { dir, segments } = await makeLog();
    expect(segments.length).toBeGreaterThanOrEqual(2);
    const first = segments[0] ?? '';
    await flip(path.join(dir, first), 100);
    const before = await digest(dir);
    const text = await cli('wal', 'verify', dir);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(new RegExp(`^CORRUPT: .*segment ${first} at byte offset \\d+: frame CRC mismatch`));
    const json = await cli('wal', 'verify', dir, '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'corrupt', ok: false, corruption: { code: 'WAL_CORRUPT', segment: first } });
    expect(await digest(dir)).toBe(before);
  });

  it('exits 2 with a clear message when the directory cannot be read', async () => {
    const text = await cli('wal', 'verify', '/nonexistent/twopc-wal');
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/ENOENT/);
    const json = await cli('wal', 'verify', '/nonexistent/twopc-wal', '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'ENOENT' } });
  });
});

describe('wal inspect', () => {
  it('lists LSN, type, size, offset and a payload preview', async () => {
    const { dir } = await makeLog(30);
    const text = await cli('wal', 'inspect', dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^segment 00000000000000000001\.wal: LSN 1\.\.31, 31 records/);
    expect(text.stdout).toMatch(/ {2}LSN 1 {2}type 2 {2}\d+ B {2}@32 {2}\{"txId":"tx-1","state":"prepared","note":"n"\}/);
    expect(text.stdout).toMatch(/LSN 31 {2}type 7 {2}6 B {2}@\d+ {2}0x000102fafbfc/);
    const json = JSON.parse((await cli('wal', 'inspect', dir, '--json', '--limit', '5')).stdout) as { entries: unknown[]; truncated: boolean; records: number };
    expect(json.entries).toHaveLength(5);
    expect(json.truncated).toBe(true);
    expect(json.records).toBe(31);
    expect(json.entries[0]).toMatchObject({ lsn: 1, type: 2, segment: '00000000000000000001.wal', offset: 32 });
  });

  it('shortens long previews', async () => {
    const { dir, remove } = await tempDir();
    cleanups.push(remove);
    const { log } = await openFileLog(dir, { segmentBytes: SEGMENT_BYTES });
    await log.append(1, new TextEncoder().encode(JSON.stringify({ long: 'x'.repeat(500) })));
    await log.close();
    const json = JSON.parse((await cli('wal', 'inspect', dir, '--json')).stdout) as { entries: { preview: string; bytes: number }[] };
    expect(json.entries[0]?.preview.length).toBeLessThanOrEqual(80);
    expect(json.entries[0]?.preview.endsWith('…')).toBe(true);
  });
});

describe('wal CLI as a real process', () => {
  it('prints exactly one JSON object and exits 1 on corruption', async () => {
    const { dir, segments } = await makeLog();
    await flip(path.join(dir, segments[0] ?? ''), 40);
    const script = fileURLToPath(new URL('./fixtures/wal-cli.ts', import.meta.url));
    const result = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', script, 'wal', 'verify', dir, '--json'], { timeout: 30_000 }, (error, stdout) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 99) : 0, stdout });
      });
    });
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ status: 'corrupt', corruption: { segment: segments[0] } });
  });
});
