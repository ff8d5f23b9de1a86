/**
 * `twopc wal inspect DIR [--json]` and `twopc wal verify DIR [--json]`. Both are read-only.
 * Exit codes: 0 intact or only a torn tail (which open repairs), 1 mid-log corruption,
 * 2 the directory could not be read at all.
 */
import type { Command } from 'commander';
import { describeIoError } from './errors.ts';
import type { InspectReport, VerifyReport } from './inspect.ts';
import { inspectWal, verifyWal } from './inspect.ts';
import type { WalFs } from './fs.ts';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly setExitCode: (code: number) => void;
  /** File system to read through; the real one by default. */
  readonly fs?: WalFs;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

export const EXIT_CORRUPT = 1;
export const EXIT_UNREADABLE = 2;

/** Adds the `wal` command group to `program`; returns the group. */
export function registerWalCommands(program: Command, io: CliIo = processIo): Command {
  const wal = program.command('wal').description('inspect and verify a write-ahead log directory (read-only)');

  wal
    .command('inspect')
    .description('list every record (LSN, type, size, payload preview); exit 1 on mid-log corruption')
    .argument('<dir>', 'the log directory')
    .option('--json', 'print one JSON object on stdout')
    .option('--limit <n>', 'list at most this many records (all are still verified)', parseLimit)
    .action(async (dir: string, options: { json?: boolean; limit?: number }) => {
      await run(io, options.json === true, async () => {
        const report = await inspectWal(dir, { ...(options.limit !== undefined ? { limit: options.limit } : {}), ...(io.fs ? { fs: io.fs } : {}) });
        io.stdout(options.json ? `${JSON.stringify(report)}\n` : formatInspect(report));
        return report;
      });
    });

  wal
    .command('verify')
    .description('check every frame; exit 0 when intact or only a torn tail, 1 on mid-log corruption')
    .argument('<dir>', 'the log directory')
    .option('--json', 'print one JSON object on stdout')
    .action(async (dir: string, options: { json?: boolean }) => {
      await run(io, options.json === true, async () => {
        const report = await verifyWal(dir, io.fs ? { fs: io.fs } : {});
        io.stdout(options.json ? `${JSON.stringify(report)}\n` : formatVerify(report));
        return report;
      });
    });

  return wal;
}

function parseLimit(value: string): number {
  const limit = Number(value);
  if (!Number.isSafeInteger(limit) || limit < 0) throw new Error('Expected `--limit` to be a non-negative integer.');
  return limit;
}

async function run(io: CliIo, json: boolean, body: () => Promise<VerifyReport>): Promise<void> {
  try {
    const report = await body();
    io.setExitCode(report.ok ? 0 : EXIT_CORRUPT);
  } catch (error) {
    const code = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'ERROR';
    const message = describeIoError(error);
    if (json) io.stdout(`${JSON.stringify({ error: { code, message } })}\n`);
    else io.stderr(`twopc wal: ${message}\n`);
    io.setExitCode(EXIT_UNREADABLE);
  }
}

function summary(report: VerifyReport): string {
  const segments = `${report.segments.length} segment${report.segments.length === 1 ? '' : 's'}`;
  const checkpoint = report.checkpoint ? `, checkpoint at LSN ${report.checkpoint.lsn} (${report.checkpoint.file})` : '';
  return `${segments}, ${report.records} records, last LSN ${report.lastLsn}${checkpoint}`;
}

export function formatVerify(report: VerifyReport): string {
  const lines: string[] = [];
  if (report.corruption) {
    const c = report.corruption;
    lines.push(`CORRUPT: ${report.dir}: segment ${c.segment} at byte offset ${c.offset}: ${c.reason}.`);
    lines.push(`Open refuses this log. Valid before it: ${summary(report)}.`);
  } else if (report.tornTail) {
    const t = report.tornTail;
    lines.push(`OK (torn tail): ${report.dir}: ${summary(report)}.`);
    lines.push(`Torn tail in segment ${t.segment} at byte offset ${t.offset} (${t.bytes} bytes): ${t.reason}.`);
    lines.push('It holds nothing that was acknowledged as durable; the next open cuts it and keeps a .broken copy. Nothing was changed.');
  } else {
    lines.push(`OK (intact): ${report.dir}: ${summary(report)}.`);
  }
  for (const warning of report.warnings) lines.push(`warning: ${warning}`);
  return `${lines.join('\n')}\n`;
}

export function formatInspect(report: InspectReport): string {
  const lines: string[] = [];
  let segment: string | undefined;
  const checkpointLsn = report.checkpoint?.lsn ?? 0;
  let previousLsn = 0;
  for (const entry of report.entries) {
    if (previousLsn > 0 && previousLsn <= checkpointLsn && entry.lsn > checkpointLsn) {
      lines.push(`  ---- checkpoint at LSN ${checkpointLsn}: the records above are covered by it ----`);
    }
    previousLsn = entry.lsn;
    if (entry.segment !== segment) {
      segment = entry.segment;
      const info = report.segments.find((s) => s.name === segment);
      lines.push(info ? `segment ${info.name}: LSN ${info.firstLsn}..${info.lastLsn}, ${info.records} records, ${info.endOffset} of ${info.fileBytes} bytes used` : `segment ${segment}`);
    }
    lines.push(`  LSN ${entry.lsn}  type ${entry.type}  ${entry.bytes} B  @${entry.offset}  ${entry.preview}`);
  }
  if (report.truncated) lines.push(`  … more records not listed (--limit ${report.entries.length})`);
  return `${lines.join('\n')}${lines.length > 0 ? '\n' : ''}${formatVerify(report)}`;
}
