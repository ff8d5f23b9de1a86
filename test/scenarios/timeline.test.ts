import { describe, expect, it } from 'vitest';
import { buildTimeline, parseLogLines, shortReason, type LogLine } from '../../scenarios/timeline.ts';
import { escapeHtml, lanesOf, renderHtml, renderSequenceSvg } from '../../scenarios/render-html.ts';
import type { TimelineEvent } from '../../scenarios/scenario.ts';

const co = (time: number, step: string, extra: Partial<LogLine> = {}): LogLine => ({ time, node: 'coordinator', txId: 'tx-1', step, ...extra });
const pa = (node: string, time: number, step: string, extra: Partial<LogLine> = {}): LogLine => ({ time, node, txId: 'tx-1', step, ...extra });

describe('parseLogLines', () => {
  it('keeps JSON objects and skips pretty text, stack traces and a torn last line', () => {
    const text = ['{"time":1,"step":"a"}', 'twopc: crash point x reached; SIGKILL', '[1,2]', '{"time":2,"step":"b"}', '{"time":3,"st'].join('\n');
    expect(parseLogLines(text)).toEqual([
      { time: 1, step: 'a' },
      { time: 2, step: 'b' },
    ]);
  });
});

describe('buildTimeline', () => {
  const coordinator = [
    co(100, 'prepare.sent', { participant: 'p1' }),
    co(101, 'prepare.sent', { participant: 'p2' }),
    co(120, 'vote', { participant: 'p1', vote: 'yes' }),
    co(125, 'vote', { participant: 'p2', vote: 'yes' }),
    co(130, 'wal.DECISION', { forced: true, lsn: 2 }),
    co(130, 'decision.logged', { outcome: 'committed', forced: true }),
    co(131, 'decision.sent', { participant: 'p1', decision: 'commit' }),
    co(132, 'decision.sent', { participant: 'p2', decision: 'commit' }),
    co(150, 'ack', { participant: 'p1' }),
  ];
  const p1 = [pa('p1', 110, 'wal.PREPARED', { forced: true }), pa('p1', 111, 'vote-yes'), pa('p1', 140, 'committed', { via: 'coordinator' })];
  // p2 died after voting: it never logged the commit.
  const p2 = [pa('p2', 112, 'vote-yes'), pa('p2', 3000, 'in-doubt'), pa('p2', 3500, 'inquire'), pa('p2', 3600, 'committed', { via: 'inquiry' })];
  const harness: TimelineEvent[] = [{ kind: 'mark', atMs: 135, lane: 'p2', label: 'SIGKILL', mark: 'crash' }];
  const events = buildTimeline(
    [
      { lane: 'coordinator', lines: coordinator },
      { lane: 'p1', lines: p1 },
      { lane: 'p2', lines: p2 },
    ],
    harness,
  );
  const messages = events.filter((e) => e.kind === 'message');

  it('pairs each send with its receive, in time order', () => {
    const summary = messages.map((m) => (m.kind === 'message' ? `${m.lane}->${m.to} ${m.label} ${m.atMs}->${m.toAtMs ?? 'lost'}` : ''));
    expect(summary).toEqual([
      'coordinator->p1 prepare 100->110',
      'coordinator->p2 prepare 101->112',
      'p1->coordinator vote yes 111->120',
      'p2->coordinator vote yes 112->125',
      'coordinator->p1 commit 131->140',
      'coordinator->p2 commit 132->lost',
      'p1->coordinator ack committed 140->150',
      'p2->coordinator outcome? 3500->3500',
    ]);
  });

  it('marks forced writes, crashes, recovery and learning by inquiry', () => {
    const marks = events.filter((e) => e.kind === 'mark').map((e) => `${e.lane}: ${e.label}`);
    expect(marks).toEqual([
      'p1: PREPARED (forced)',
      'coordinator: DECISION committed (forced)',
      'p2: SIGKILL',
      'p2: in doubt after restart',
      'p2: committed (learned via inquiry)',
    ]);
  });

  it('filters by transaction, keeps marks without one, and caps the count', () => {
    const other = buildTimeline([{ lane: 'coordinator', lines: [co(1, 'prepare.sent', { participant: 'p1', txId: 'tx-9' }), { time: 2, step: 'recovered' }] }], [], {
      txIds: new Set(['tx-1']),
    });
    expect(other.map((e) => e.label)).toEqual(['recovered, resending 0']);
    expect(buildTimeline([{ lane: 'coordinator', lines: coordinator }], [], { eventsMax: 3 })).toHaveLength(3);
  });

  it('keeps only the chaos and its consequences with marksOnly', () => {
    const only = buildTimeline([{ lane: 'p2', lines: p2 }], harness, { marksOnly: true });
    expect(only.map((e) => e.label)).toEqual(['SIGKILL', 'in doubt after restart']);
  });

  it('shortens an inquiry failure to its cause', () => {
    expect(shortReason('http://127.0.0.1:1/v1/transactions/tx-1/outcome is unreachable (ECONNREFUSED)')).toBe('ECONNREFUSED');
    expect(shortReason('the coordinator answered HTTP 502')).toBe('HTTP 502');
  });

  it('renders a self-contained page with one lane per node and an arrow per message', () => {
    expect(lanesOf(events)).toEqual(['coordinator', 'p1', 'p2']);
    expect(lanesOf(events, ['client', 'coordinator', 'p1', 'p2', 'p3'])).toEqual(['client', 'coordinator', 'p1', 'p2', 'p3']);
    const svg = renderSequenceSvg(events, ['client', 'coordinator', 'p1', 'p2']);
    expect(svg.match(/marker-end=/g)).toHaveLength(messages.length - 1);
    expect(svg).toContain('commit (receipt not logged)');
    // The 2.8 s silence before p2's restart is drawn as a break.
    expect(svg).toMatch(/… 2\.\d+ s pass …/);
    const html = renderHtml(
      { name: 'demo', ok: false, checks: [{ name: 'a <check>', ok: false, detail: 'x & y' }], figures: { blockedMs: 2800 }, timeline: events },
      { command: 'twopc scenario run demo --seed 1', seed: 1 },
    );
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('a &lt;check&gt;');
    expect(html).toContain('x &amp; y');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|src=|href=/);
    expect(escapeHtml(`<"'&>`)).toBe('&lt;&quot;&#39;&amp;&gt;');
  });
});
