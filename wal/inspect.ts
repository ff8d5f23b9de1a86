/**
 * `verifyWal` and `inspectWal`: read-only reports on a log directory, for the CLI and for
 * operators. They run the very scan recovery runs (wal/scan.ts), so "verify says intact"
 * means "open will succeed", and they never change a byte.
 */
import { heldWarning } from './dir-lock.ts';
import type { WalFs } from './fs.ts';
import { nodeFs } from './fs.ts';
import type { ScanResult } from './scan.ts';
import { scanLog } from './scan.ts';

export type WalStatus = 'intact' | 'torn-tail' | 'corrupt';

export interface VerifyReport {
  readonly dir: string;
  readonly status: WalStatus;
  /** True unless mid-log corruption was found: open will succeed. */
  readonly ok: boolean;
  readonly segments: readonly { readonly name: string; readonly firstLsn: number; readonly lastLsn: number; readonly records: number; readonly endOffset: number; readonly fileBytes: number }[];
  /** Valid records scanned (after the checkpoint, plus any before it in the first segment read). */
  readonly records: number;
  readonly lastLsn: number;
  readonly checkpoint: { readonly file: string; readonly lsn: number; readonly dataBytes: number } | null;
  readonly tornTail: { readonly segment: string; readonly offset: number; readonly bytes: number; readonly reason: string } | null;
  readonly corruption: { readonly code: string; readonly segment: string; readonly offset: number; readonly reason: string } | null;
  readonly warnings: readonly string[];
}

export interface InspectedRecord {
  readonly lsn: number;
  readonly type: number;
  readonly bytes: number;
  readonly segment: string;
  readonly offset: number;
  /** The payload as text when it is UTF-8 (usually JSON), else hex; shortened to `previewChars`. */
  readonly preview: string;
}

export interface InspectReport extends VerifyReport {
  readonly entries: readonly InspectedRecord[];
  /** True when `limit` cut the list short. */
  readonly truncated: boolean;
}

export interface ReadOptions {
  readonly fs?: WalFs;
}

export interface InspectOptions extends ReadOptions {
  /** Records to list at most. Default 100000; every record is still verified. */
  readonly limit?: number;
  /** Characters of payload preview. Default 80. */
  readonly previewChars?: number;
}

const INSPECT_LIMIT_DEFAULT = 100_000;

export async function verifyWal(dir: string, options: ReadOptions = {}): Promise<VerifyReport> {
  return report(dir, await scanLog(options.fs ?? nodeFs, dir), await holdWarning(dir, options));
}

/** Only the real disk has LOCK files whose holders can be checked. */
const holdWarning = (dir: string, options: ReadOptions): Promise<string | undefined> => (options.fs === undefined || options.fs === nodeFs ? heldWarning(dir) : Promise.resolve(undefined));

export async function inspectWal(dir: string, options: InspectOptions = {}): Promise<InspectReport> {
  const limit = options.limit ?? INSPECT_LIMIT_DEFAULT;
  const previewChars = options.previewChars ?? 80;
  const entries: InspectedRecord[] = [];
  let truncated = false;
  const scan = await scanLog(options.fs ?? nodeFs, dir, {
    visitCovered: true,
    onRecord: (lsn, type, payload, segment, offset) => {
      if (entries.length >= limit) {
        truncated = true;
        return;
      }
      entries.push({ lsn, type, bytes: payload.length, segment, offset, preview: previewOf(payload, previewChars) });
    },
  });
  return { ...report(dir, scan, await holdWarning(dir, options)), entries, truncated };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function previewOf(payload: Uint8Array, chars: number): string {
  let text: string | undefined;
  try {
    text = utf8.decode(payload);
  } catch {
    text = undefined;
  }
  // Control characters other than whitespace mean binary data that happens to decode.
  if (text !== undefined && !hasControlCharacters(text)) {
    const flat = text.replace(/\s+/g, ' ');
    return flat.length > chars ? `${flat.slice(0, chars - 1)}…` : flat;
  }
  const hexBytes = Math.max(1, Math.floor((chars - 4) / 2));
  const hex = Buffer.from(payload.subarray(0, hexBytes)).toString('hex');
  return `0x${hex}${payload.length > hexBytes ? '…' : ''}`;
}

function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) return true;
  }
  return false;
}

function report(dir: string, scan: ScanResult, held: string | undefined): VerifyReport {
  const warnings: string[] = [];
  if (held) warnings.push(held);
  for (const bad of scan.badCheckpoints) warnings.push(`checkpoint ${bad.name} is unreadable (${bad.reason}); an older checkpoint or the full log is used instead`);
  if (scan.skipped.length > 0) warnings.push(`${scan.skipped.length} segment(s) wholly covered by the checkpoint are still present; open deletes them`);
  if (scan.listing.temps.length > 0) warnings.push(`${scan.listing.temps.length} unfinished *.tmp file(s); open deletes them`);
  const status: WalStatus = scan.corruption ? 'corrupt' : scan.torn ? 'torn-tail' : 'intact';
  return {
    dir,
    status,
    ok: status !== 'corrupt',
    segments: scan.segments.map(({ name, firstLsn, lastLsn, records, endOffset, fileBytes }) => ({ name, firstLsn, lastLsn, records, endOffset, fileBytes })),
    records: scan.records,
    lastLsn: scan.lastLsn,
    checkpoint: scan.checkpoint ? { file: scan.checkpoint.name, lsn: scan.checkpoint.lsn, dataBytes: scan.checkpoint.data.length } : null,
    tornTail: scan.torn ? { segment: scan.torn.segment, offset: scan.torn.offset, bytes: scan.torn.bytes, reason: scan.torn.reason } : null,
    corruption: scan.corruption ? { ...scan.corruption } : null,
    warnings,
  };
}
