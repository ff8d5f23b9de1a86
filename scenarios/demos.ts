/**
 * Teaching demos: short scenarios on real processes that narrate, step by
 * step, what two-phase commit does when a node dies at the worst moment, and
 * check that it did exactly that.
 *
 *   blocking                 the coordinator dies between the votes and the decision
 *   coordinator-crash        the coordinator dies right after logging COMMIT
 *   participant-crash        a participant dies after logging PREPARED, before its vote leaves
 *   cooperative-termination  the coordinator is gone, but a peer knows the outcome
 *   heuristic                an operator settles an in-doubt participant against the decision
 */
import { check, result, type ScenarioCheck, type ScenarioContext, type ScenarioResult } from './scenario.ts';
import { call, ScenarioCluster, waitFor, type KitOptions } from './kit.ts';
import { COORDINATOR_LANE } from './timeline.ts';

/** How long a demo waits for a node to die at its crash point, to restart, or for a settlement. */
const CRASH_WAIT_MS = 15_000;
const SETTLE_WAIT_MS = 45_000;
/** How long the blocking demo waits for the participants to give up on their peers. */
const BLOCKED_WAIT_MS = 30_000;

interface DemoOutput {
  readonly checks: ScenarioCheck[];
  readonly figures: Record<string, number | string>;
  readonly txIds: string[];
}

async function withCluster(
  name: string,
  ctx: ScenarioContext,
  options: Omit<KitOptions, 'prefix'>,
  body: (c: ScenarioCluster) => Promise<DemoOutput>,
): Promise<ScenarioResult> {
  const c = await ScenarioCluster.start({ prefix: name, seed: ctx.seed, keepData: ctx.keepData === true, ...options });
  try {
    const out = await body(c);
    const timeline = ctx.timeline ? c.timeline(out.txIds.length > 0 ? { txIds: new Set(out.txIds) } : {}) : undefined;
    return result(name, out.checks, out.figures, { ...(timeline ? { timeline } : {}), lanes: c.lanes });
  } finally {
    await c.close();
    if (ctx.keepData) ctx.log(`data and node logs kept in ${c.dataDir}`);
  }
}

const put = (participant: string, key: string, value: unknown) => ({ participant, ops: [{ op: 'put', key, value }] });

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The first log line's time for a node, transaction and step (waiting briefly: pino writes asynchronously). */
async function stepTime(c: ScenarioCluster, node: string, txId: string, step: string): Promise<number | undefined> {
  return (await c.waitStep(node, txId, step))?.time;
}

/** The transaction every participant reports in doubt; undefined unless they agree on exactly one. */
async function commonInDoubt(c: ScenarioCluster, names: readonly string[]): Promise<string | undefined> {
  const lists = await Promise.all(names.map((n) => c.inDoubt(n)));
  const ids = new Set(lists.flatMap((l) => (l ?? []).map((t) => t.txId)));
  return ids.size === 1 && lists.every((l) => l?.length === 1) ? [...ids][0] : undefined;
}

async function waitStates(c: ScenarioCluster, names: readonly string[], txId: string, state: string, timeoutMs = SETTLE_WAIT_MS): Promise<boolean> {
  const done = await waitFor(async () => {
    const states = await Promise.all(names.map((n) => c.txState(n, txId)));
    return states.every((s) => s === state) ? true : undefined;
  }, timeoutMs, 150);
  return done === true;
}

// ---- blocking ---------------------------------------------------------------------------

export function blocking(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  return withCluster('blocking', ctx, {}, async (c) => {
    const names = c.names;
    const keys: Record<string, string> = { p1: 'alice', p2: 'bob', p3: 'carol' };
    const checks: ScenarioCheck[] = [];
    const figures: Record<string, number | string> = {};
    say('1. A coordinator and three participants, each a real process with its own WAL.');
    say('   The coordinator is armed to SIGKILL itself once every vote is in and before it logs a decision.');
    await c.arm(COORDINATOR_LANE, 'coordinator.before-decision-logged');
    const reply = await c.runTx(names.map((n) => put(n, keys[n] ?? n, 100)), 8_000);
    const exit = await c.waitCrash(COORDINATOR_LANE, CRASH_WAIT_MS, 'coordinator.before-decision-logged');
    const downAt = Date.now();
    say(`2. The client's request: ${reply.ok ? `HTTP ${reply.status}` : `no answer (${reply.error})`}. The coordinator died (${exit?.signal ?? 'still running?'}) without deciding.`);
    checks.push(check('the coordinator died after the votes, before deciding', exit?.signal === 'SIGKILL' && !reply.ok, `exit ${JSON.stringify(exit)}, client ${reply.ok ? `HTTP ${reply.status}` : reply.error}`));

    const txId = await commonInDoubt(c, names);
    if (txId === undefined) {
      checks.push(check('every participant is prepared', false, 'the participants do not report one common in-doubt transaction'));
      return { checks, figures, txIds: [] };
    }
    const locks = await Promise.all(names.map(async (n) => (await c.kvKey(n, keys[n] ?? n))?.lockedBy));
    say(`3. Every participant voted YES and logged PREPARED for ${txId}, so none may decide alone. They hold their locks:`);
    for (const [i, n] of names.entries()) say(`   ${n}: ${keys[n]} lockedBy ${locks[i] ?? '(nobody)'}`);
    checks.push(check('every participant is prepared and holds its lock', locks.every((l) => l === txId), `lockedBy ${JSON.stringify(locks)}`));

    say('4. They wait for the decision, then ask the coordinator (it is dead), then ask each other (cooperative termination)...');
    const blocked = await waitFor(async () => (names.every((n) => c.steps(n, txId, 'blocked').length > 0) ? true : undefined), BLOCKED_WAIT_MS, 250);
    const failed = names.map((n) => c.steps(n, txId, 'inquiry-failed').length);
    for (const [i, n] of names.entries()) {
      const b = c.steps(n, txId, 'blocked')[0];
      say(`   ${n}: ${failed[i]} inquiry(ies) to the coordinator failed; ${b ? `every peer is prepared too → BLOCKED after ${secs((b.time ?? downAt) - downAt)}` : 'not blocked yet'}`);
    }
    checks.push(check('their inquiries to the coordinator fail', failed.every((f) => f > 0), `failed inquiries ${JSON.stringify(failed)}`));
    checks.push(check('cooperative termination finds every peer prepared: blocked', blocked === true, blocked ? 'every participant logged blocked' : `not every participant logged blocked within ${BLOCKED_WAIT_MS} ms`));
    const stillTxId = await commonInDoubt(c, names);
    checks.push(check('blocked participants stay prepared (no unilateral decision)', stillTxId === txId, `in doubt: ${stillTxId ?? 'not the same'}`));
    say(`   Nobody alive knows the outcome: 2PC blocks. The locks stay held for as long as the coordinator is down.`);

    say('5. The coordinator restarts. Its WAL has no DECISION for this transaction, so by presumed abort the answer is "aborted".');
    await c.start(COORDINATOR_LANE);
    const aborted = await waitStates(c, names, txId, 'aborted');
    const values = await Promise.all(names.map(async (n) => c.kvKey(n, keys[n] ?? n)));
    for (const n of names) {
      const prepared = await stepTime(c, n, txId, 'vote-yes');
      const settled = await stepTime(c, n, txId, 'aborted');
      if (prepared !== undefined && settled !== undefined) figures[`${n}BlockedMs`] = settled - prepared;
      say(`   ${n}: aborted; held ${keys[n]} for ${prepared !== undefined && settled !== undefined ? secs(settled - prepared) : '?'}`);
    }
    figures.coordinatorDownMs = Date.now() - downAt;
    figures.inquiriesFailed = failed.reduce((a, b) => a + b, 0);
    checks.push(check('after the restart, presumed abort settles every participant', aborted, aborted ? 'aborted at p1..p3' : 'not every participant aborted in time'));
    checks.push(check('the locks are released and nothing was applied', values.every((v) => v?.lockedBy === undefined && v?.value === undefined), JSON.stringify(values)));
    checks.push(check('nothing is in doubt', await c.settled(), 'every participant reports an empty in-doubt list'));
    return { checks, figures, txIds: [txId] };
  });
}

// ---- coordinator-crash --------------------------------------------------------------------

export function coordinatorCrash(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  return withCluster('coordinator-crash', ctx, {}, async (c) => {
    const names = c.names;
    const checks: ScenarioCheck[] = [];
    const figures: Record<string, number | string> = {};
    say('1. The coordinator is armed to die right after its COMMIT decision is forced to its WAL, before anyone hears it.');
    await c.arm(COORDINATOR_LANE, 'coordinator.after-decision-logged');
    const reply = await c.runTx(names.map((n) => put(n, `order-${n}`, 'shipped')), 8_000);
    const exit = await c.waitCrash(COORDINATOR_LANE, CRASH_WAIT_MS, 'coordinator.after-decision-logged');
    const downAt = Date.now();
    say(`2. The client hears nothing (${reply.ok ? `HTTP ${reply.status}` : reply.error}): the decision exists only in the dead coordinator's WAL.`);
    checks.push(check('the coordinator died after logging its decision', exit?.signal === 'SIGKILL' && !reply.ok, `exit ${JSON.stringify(exit)}`));
    const txId = await commonInDoubt(c, names);
    if (txId === undefined) {
      checks.push(check('every participant is in doubt', false, 'no common in-doubt transaction'));
      return { checks, figures, txIds: [] };
    }
    say(`3. Every participant voted YES for ${txId} and is in doubt: it may neither commit nor abort on its own.`);
    const asked = await waitFor(async () => (names.every((n) => c.steps(n, txId, 'inquiry-failed').length > 0) ? true : undefined), BLOCKED_WAIT_MS, 250);
    say(`   They ask the coordinator: ${asked ? 'no answer' : 'not asked yet'}; they ask each other: everyone is prepared, so nobody knows.`);
    checks.push(check('participants stay in doubt while the coordinator is down', asked === true && (await commonInDoubt(c, names)) === txId, 'each logged a failed inquiry and still reports the transaction prepared'));

    say('4. The coordinator restarts, reads DECISION commit from its WAL and resends COMMIT.');
    await c.start(COORDINATOR_LANE);
    const committed = await waitStates(c, names, txId, 'committed');
    const values = await Promise.all(names.map(async (n) => (await c.kvKey(n, `order-${n}`))?.value));
    for (const n of names) {
      const prepared = await stepTime(c, n, txId, 'vote-yes');
      const settled = await stepTime(c, n, txId, 'committed');
      if (prepared !== undefined && settled !== undefined) figures[`${n}InDoubtMs`] = settled - prepared;
      say(`   ${n}: committed after ${prepared !== undefined && settled !== undefined ? secs(settled - prepared) : '?'} in doubt`);
    }
    figures.coordinatorDownMs = Date.now() - downAt;
    const view = await waitFor(async () => {
      const v = await c.coordinatorTx(txId);
      return v?.outcome === 'committed' ? v : undefined;
    }, SETTLE_WAIT_MS);
    checks.push(check('after the restart every participant commits', committed, committed ? 'committed at p1..p3' : 'not committed everywhere in time'));
    checks.push(check('the committed values are applied once', values.every((v) => v === 'shipped'), JSON.stringify(values)));
    checks.push(check('the coordinator reports the outcome it logged', view?.outcome === 'committed', `GET /v1/transactions/${txId}: ${JSON.stringify(view ?? null)}`));
    checks.push(check('nothing is in doubt', await c.settled(), 'every participant reports an empty in-doubt list'));
    return { checks, figures, txIds: [txId] };
  });
}

// ---- participant-crash --------------------------------------------------------------------

export function participantCrash(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  return withCluster('participant-crash', ctx, {}, async (c) => {
    const names = c.names;
    const checks: ScenarioCheck[] = [];
    const figures: Record<string, number | string> = {};
    say('1. p2 is armed to die right after PREPARED is forced to its WAL, before its YES vote leaves.');
    await c.arm('p2', 'participant.after-prepare-logged');
    const branches = names.map((n) => ({ participant: n, ops: [{ op: 'add', key: 'stock', amount: 5 }] }));
    const reply = await c.runTx(branches, 10_000);
    const exit = await c.waitCrash('p2', CRASH_WAIT_MS, 'participant.after-prepare-logged');
    const txId = reply.ok && typeof reply.body.txId === 'string' ? reply.body.txId : undefined;
    say(`2. The coordinator never got p2's vote, so it aborted: the client hears ${reply.ok ? `${String(reply.body.outcome)} (${String(reply.body.reason ?? '')})` : `nothing (${reply.error})`}.`);
    checks.push(check('p2 died after logging PREPARED, before voting', exit?.signal === 'SIGKILL', `exit ${JSON.stringify(exit)}`));
    checks.push(check('the client is told aborted', reply.ok && reply.body.outcome === 'aborted', reply.ok ? JSON.stringify(reply.body) : reply.error));
    if (txId === undefined) return { checks, figures, txIds: [] };
    const others = names.filter((n) => n !== 'p2');
    const othersAborted = await waitStates(c, others, txId, 'aborted', 15_000);
    say(`3. ${others.join(' and ')} aborted and released their locks; p2 is down, and its WAL says it voted yes.`);

    say('4. Everyone p2 could learn the outcome from is paused (SIGSTOP), and p2 restarts from its WAL.');
    const witnesses = [COORDINATOR_LANE, ...others];
    for (const w of witnesses) c.pause(w);
    let view: { txId: string; keys?: readonly string[] }[] | undefined;
    let lockedBy: string | undefined;
    try {
      await c.start('p2');
      view = await c.inDoubt('p2');
      lockedBy = (await c.kvKey('p2', 'stock'))?.lockedBy;
    } finally {
      for (const w of witnesses) c.resume(w);
    }
    const mine = view?.find((t) => t.txId === txId);
    say(`   p2 recovered ${txId} as PREPARED: in doubt, holding ${JSON.stringify(mine?.keys ?? [])} (stock lockedBy ${lockedBy ?? 'nobody'}).`);
    say('   Having voted yes (as far as its WAL knows), it may not abort on its own, even though everyone else already has.');
    checks.push(check('p2 comes back in doubt and holds its lock', mine !== undefined && lockedBy === txId, `in doubt ${JSON.stringify(view)}, lockedBy ${lockedBy}`));

    say('5. The others resume; p2 asks the coordinator, which answers "aborted", and p2 aborts.');
    const settled = await waitStates(c, ['p2'], txId, 'aborted');
    const how = (await c.waitStep('p2', txId, 'aborted'))?.via ?? 'unknown';
    const values = await Promise.all(names.map(async (n) => c.kvKey(n, 'stock')));
    say(`   p2 aborted (via ${how}); stock at p1..p3: ${JSON.stringify(values.map((v) => v?.value ?? null))}, no locks held.`);
    const prepared = c.steps('p2', txId, 'wal.PREPARED')[0]?.time;
    const done = c.steps('p2', txId, 'aborted')[0]?.time;
    if (prepared !== undefined && done !== undefined) figures.p2InDoubtMs = done - prepared;
    figures.p2LearnedVia = how;
    checks.push(check('the other participants aborted', othersAborted, others.join(', ')));
    checks.push(check('p2 settles to abort, like everyone else', settled, settled ? `via ${how}` : 'p2 did not abort in time'));
    checks.push(check('nothing applied, no lock left', values.every((v) => v?.value === undefined && v?.lockedBy === undefined), JSON.stringify(values)));
    checks.push(check('nothing is in doubt', await c.settled(), 'every participant reports an empty in-doubt list'));
    return { checks, figures, txIds: [txId] };
  });
}

// ---- cooperative-termination ----------------------------------------------------------------

export function cooperativeTermination(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  // Participant proxies only: a proxy in front of a dead coordinator would answer 502, which the
  // participants read as "the coordinator answered", so they would not ask their peers.
  return withCluster('cooperative-termination', ctx, { proxies: true, coordinatorProxy: false }, async (c) => {
    const names = c.names;
    const checks: ScenarioCheck[] = [];
    const figures: Record<string, number | string> = {};
    say('1. Fault proxies sit between the coordinator and each participant. The proxies of p2 and p3 hold every COMMIT (hang);');
    say('   the coordinator is armed to die as soon as the first participant (p1) acknowledges COMMIT.');
    for (const n of ['p2', 'p3']) c.proxies.get(n)?.setRules([{ match: { pathPrefix: '/v1/2pc/commit' }, fault: 'hang', probability: 1 }]);
    await c.arm(COORDINATOR_LANE, 'coordinator.after-first-commit-sent');
    const reply = await c.runTx(names.map((n) => put(n, `seat-${n}`, 'booked')), 8_000);
    const exit = await c.waitCrash(COORDINATOR_LANE, CRASH_WAIT_MS, 'coordinator.after-first-commit-sent');
    c.healProxies();
    c.mark('p2', 'fault', 'hung COMMIT dropped');
    c.mark('p3', 'fault', 'hung COMMIT dropped');
    checks.push(check('the coordinator died after the first COMMIT was acknowledged', exit?.signal === 'SIGKILL', `exit ${JSON.stringify(exit)}, client ${reply.ok ? `HTTP ${reply.status}` : reply.error}`));
    const p1List = await c.inDoubt('p1');
    const lists = await Promise.all(['p2', 'p3'].map((n) => c.inDoubt(n)));
    const txId = lists[0]?.[0]?.txId;
    if (txId === undefined) {
      checks.push(check('p2 and p3 are in doubt', false, JSON.stringify(lists)));
      return { checks, figures, txIds: [] };
    }
    const p1State = await c.txState('p1', txId);
    say(`2. p1 committed ${txId} (${p1State}); the hung COMMITs to p2 and p3 were dropped: they are in doubt, and the coordinator is dead.`);
    checks.push(check('p1 knows the outcome; p2 and p3 are in doubt', p1State === 'committed' && p1List?.length === 0 && lists.every((l) => l?.some((t) => t.txId === txId)), JSON.stringify({ p1State, lists })));

    say('3. p2 and p3 ask the coordinator (connection refused), then ask their peers. p1 answers "committed".');
    const settled = await waitStates(c, ['p2', 'p3'], txId, 'committed');
    const via = await Promise.all(['p2', 'p3'].map(async (n) => (await c.waitStep(n, txId, 'committed'))?.via ?? 'unknown'));
    for (const [i, n] of ['p2', 'p3'].entries()) say(`   ${n}: committed via ${via[i]}`);
    const downStill = !c.coordinator.running;
    checks.push(check('p2 and p3 commit from a peer, without the coordinator', settled && downStill && via.every((v) => v.startsWith('peer')), `via ${JSON.stringify(via)}, coordinator ${downStill ? 'still down' : 'running'}`));
    const values = await Promise.all(names.map(async (n) => (await c.kvKey(n, `seat-${n}`))?.value));
    checks.push(check('the values are applied everywhere', values.every((v) => v === 'booked'), JSON.stringify(values)));
    for (const n of ['p2', 'p3']) {
      const prepared = await stepTime(c, n, txId, 'vote-yes');
      const done = await stepTime(c, n, txId, 'committed');
      if (prepared !== undefined && done !== undefined) figures[`${n}InDoubtMs`] = done - prepared;
    }

    say('4. The coordinator restarts, resends COMMIT, hears every acknowledgement and finishes the transaction.');
    await c.start(COORDINATOR_LANE);
    const finished = await waitFor(async () => ((await c.coordinatorTx(txId))?.state === 'committed' ? true : undefined), SETTLE_WAIT_MS, 200);
    checks.push(check('the coordinator finishes the transaction after its restart', finished === true, JSON.stringify(await c.coordinatorTx(txId))));
    checks.push(check('nothing is in doubt', await c.settled({ coordinator: true }), 'no participant in doubt, nothing unfinished at the coordinator'));
    return { checks, figures, txIds: [txId] };
  });
}

// ---- heuristic ------------------------------------------------------------------------------

export function heuristic(ctx: ScenarioContext): Promise<ScenarioResult> {
  const say = ctx.log;
  return withCluster('heuristic', ctx, {}, async (c) => {
    const names = c.names;
    const checks: ScenarioCheck[] = [];
    const figures: Record<string, number | string> = {};
    say('1. The coordinator dies right after forcing DECISION commit to its WAL; every participant is in doubt.');
    await c.arm(COORDINATOR_LANE, 'coordinator.after-decision-logged');
    await c.runTx(names.map((n) => put(n, `invoice-${n}`, 'paid')), 8_000);
    const exit = await c.waitCrash(COORDINATOR_LANE, CRASH_WAIT_MS, 'coordinator.after-decision-logged');
    checks.push(check('the coordinator died after logging commit', exit?.signal === 'SIGKILL', JSON.stringify(exit)));
    const txId = await commonInDoubt(c, names);
    if (txId === undefined) {
      checks.push(check('every participant is in doubt', false, 'no common in-doubt transaction'));
      return { checks, figures, txIds: [] };
    }
    say(`2. An operator, tired of p1 holding its locks, settles ${txId} at p1 by hand: ABORT (the coordinator had decided commit).`);
    const atMs = Date.now();
    const settled = await call('POST', `${c.node('p1').url}/v1/2pc/transactions/${encodeURIComponent(txId)}/heuristic`, { outcome: 'aborted' }, 5_000);
    const r = settled.ok ? settled : undefined;
    c.events.push({ kind: 'message', atMs, lane: 'client', to: 'p1', toAtMs: atMs, label: 'operator: heuristic abort', message: 'client', txId });
    say(`   p1 answers ${JSON.stringify(r?.body ?? null)}: the heuristic decision is logged (forced) and its locks are released.`);
    checks.push(check('the operator settles p1 by hand', r?.status === 200 && r.body.state === 'aborted', JSON.stringify(r ?? null)));

    say('3. The coordinator restarts and resends COMMIT. p2 and p3 commit; p1 answers with its heuristic abort.');
    await c.start(COORDINATOR_LANE);
    const committed = await waitStates(c, ['p2', 'p3'], txId, 'committed');
    const view = await waitFor(async () => {
      const v = await c.coordinatorTx(txId);
      return v?.outcome === 'heuristic-mixed' ? v : undefined;
    }, SETTLE_WAIT_MS, 200);
    const values = await Promise.all(names.map(async (n) => (await c.kvKey(n, `invoice-${n}`))?.value));
    say(`   The coordinator reports: ${JSON.stringify(view ?? null)}`);
    say(`   Values at p1..p3: ${JSON.stringify(values)}: atomicity was broken by hand, and the system says so.`);
    figures.coordinatorOutcome = String(view?.outcome ?? 'unknown');
    checks.push(check('p2 and p3 follow the coordinator and commit', committed, committed ? 'committed' : 'not committed in time'));
    checks.push(check('the coordinator reports heuristic-mixed', view?.outcome === 'heuristic-mixed', JSON.stringify(view ?? null)));
    checks.push(check('p1 kept its heuristic abort; p2 and p3 applied the commit', values[0] === undefined && values[1] === 'paid' && values[2] === 'paid', JSON.stringify(values)));
    checks.push(check('nothing is in doubt', await c.settled(), 'every participant reports an empty in-doubt list'));
    return { checks, figures, txIds: [txId] };
  });
}
