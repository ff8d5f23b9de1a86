/**
 * withRetries (shared/http/client.ts): the first attempt runs before p-retry is set up, and p-retry
 * takes over only after it failed, replaying that failure as its own first attempt. These pin what a
 * caller sees: how many attempts are made, and what comes back, for each kind of outcome.
 */
import { describe, expect, it } from 'vitest';
import { TransportError, withRetries, type HttpResult } from '../../shared/http/client.ts';

const URL = 'http://p1.test';
const fast = { retryMinMs: 1, retryMaxMs: 2 };

/** An attempt that plays `outcomes` in order (a status, or an error to throw), and counts its calls. */
function scripted(outcomes: readonly (number | Error)[]) {
  let calls = 0;
  const attempt = (): Promise<HttpResult<unknown>> => {
    const o = outcomes[Math.min(calls, outcomes.length - 1)] as number | Error;
    calls++;
    return o instanceof Error ? Promise.reject(o) : Promise.resolve({ status: o, data: { n: calls } });
  };
  return { attempt, calls: () => calls };
}

describe('withRetries', () => {
  it('makes one attempt when it succeeds, and answers with it', async () => {
    const s = scripted([200]);
    expect(await withRetries(URL, s.attempt, { retries: 2, ...fast })).toEqual({ status: 200, data: { n: 1 } });
    expect(s.calls()).toBe(1);
  });

  it('answers a 4xx at once: it is an answer, not a failure', async () => {
    const s = scripted([409, 200]);
    expect(await withRetries(URL, s.attempt, { retries: 2, ...fast })).toMatchObject({ status: 409 });
    expect(s.calls()).toBe(1);
  });

  it('retries after a 5xx or a thrown error, and answers with the first success', async () => {
    const fiveHundred = scripted([503, 200]);
    expect(await withRetries(URL, fiveHundred.attempt, { retries: 2, ...fast })).toEqual({ status: 200, data: { n: 2 } });
    expect(fiveHundred.calls()).toBe(2);
    const thrown = scripted([new TransportError('reset', 'cut', URL), new TransportError('timeout', 'slow', URL), 200]);
    expect(await withRetries(URL, thrown.attempt, { retries: 2, ...fast })).toEqual({ status: 200, data: { n: 3 } });
    expect(thrown.calls()).toBe(3);
  });

  it('makes 1 + retries attempts at most; a 5xx still answers with its status, silence rejects', async () => {
    const fiveHundred = scripted([500]);
    expect(await withRetries(URL, fiveHundred.attempt, { retries: 2, ...fast })).toEqual({ status: 500, data: { n: 3 } });
    expect(fiveHundred.calls()).toBe(3);
    const silent = scripted([new TransportError('unreachable', 'refused', URL)]);
    await expect(withRetries(URL, silent.attempt, { retries: 2, ...fast })).rejects.toMatchObject({ code: 'unreachable' });
    expect(silent.calls()).toBe(3);
  });

  it('throws an error isFinal names after one attempt, as it was thrown', async () => {
    const refused = new TransportError('reset', 'refused for good', URL);
    const s = scripted([refused, 200]);
    await expect(withRetries(URL, s.attempt, { retries: 2, ...fast, isFinal: (e) => e === refused })).rejects.toBe(refused);
    expect(s.calls()).toBe(1);
  });

  it('with no retries, makes exactly one attempt whatever it answers', async () => {
    const s = scripted([503]);
    expect(await withRetries(URL, s.attempt, { retries: 0, ...fast })).toMatchObject({ status: 503 });
    expect(s.calls()).toBe(1);
  });
});
