/**
 * The coordinator asks each of its participants for its in-doubt list, for the
 * dashboard's read-only view where no `twopc cluster` process serves the lab (a
 * compose deployment). Each ask is bounded in time, a few run at once, and
 * concurrent surveys share one sweep: however many pages are open, the
 * participants see at most one list request each per sweep.
 */
import { createHttpClient, type HttpClient } from '../shared/http/client.ts';
import { systemClock } from '../shared/clock.ts';
import type { z } from '../shared/schemas.ts';
import type { participantsInDoubtSchema } from '../shared/schemas.ts';

export type ParticipantsInDoubt = z.infer<typeof participantsInDoubtSchema>;
type ParticipantReport = ParticipantsInDoubt['participants'][number];

/** How long one participant has to answer before it is reported unreachable. */
export const IN_DOUBT_ASK_TIMEOUT_MS = 2_000;
/** Participants asked at once: a coordinator of many participants does not open a socket to each at one time. */
export const IN_DOUBT_ASKS_IN_FLIGHT_MAX = 8;
/** An error text longer than this is cut: it is shown on a page, not a log. */
const ERROR_TEXT_LENGTH_MAX = 200;

export interface InDoubtSurveyOptions {
  /** name → base URL, the coordinator's configured participants. */
  readonly participants: Readonly<Record<string, string>>;
  /** Sends the coordinator's token, if it has one. */
  readonly http: HttpClient;
  readonly now: () => number;
}

function errorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.length > ERROR_TEXT_LENGTH_MAX ? `${text.slice(0, ERROR_TEXT_LENGTH_MAX)}…` : text;
}

async function askOne(http: HttpClient, name: string, url: string): Promise<ParticipantReport> {
  try {
    const res = await http.get<{ transactions?: unknown; error?: { message?: unknown } }>(`${url}/v1/2pc/transactions?state=prepared`, {
      timeoutMs: IN_DOUBT_ASK_TIMEOUT_MS,
      retries: 0,
    });
    if (res.status !== 200 || !Array.isArray(res.data.transactions)) {
      const message = typeof res.data?.error?.message === 'string' ? `: ${res.data.error.message}` : '';
      return { name, url, reachable: true, error: errorText(`answered ${res.status}${message}`) };
    }
    return { name, url, reachable: true, transactions: res.data.transactions as ParticipantReport['transactions'] };
  } catch (e) {
    return { name, url, reachable: false, error: errorText(e) };
  }
}

/** Returns the survey function; calls made while a sweep runs get that sweep's answer. */
export function createInDoubtSurvey(options: InDoubtSurveyOptions): () => Promise<ParticipantsInDoubt> {
  const entries = Object.entries(options.participants);
  let sweep: Promise<ParticipantsInDoubt> | undefined;

  async function run(): Promise<ParticipantsInDoubt> {
    const askedAt = options.now();
    const reports: ParticipantReport[] = new Array<ParticipantReport>(entries.length);
    let next = 0;
    // A fixed pool of workers takes the participants in order: at most IN_DOUBT_ASKS_IN_FLIGHT_MAX asks at once.
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const i = next++;
        const [name, url] = entries[i] as [string, string];
        reports[i] = await askOne(options.http, name, url);
      }
    };
    await Promise.all(Array.from({ length: Math.min(IN_DOUBT_ASKS_IN_FLIGHT_MAX, entries.length) }, worker));
    return { askedAt, participants: reports };
  }

  return () => {
    sweep ??= run().finally(() => {
      sweep = undefined;
    });
    return sweep;
  };
}

/**
 * The survey a coordinator process serves (standalone or an HA member), on its own HTTP client so
 * the dashboard never queues behind, or holds sockets of, the protocol's messages. `close` ends the client.
 */
export function openInDoubtSurvey(participants: Readonly<Record<string, string>>, token: string | undefined): { survey: () => Promise<ParticipantsInDoubt>; close: () => void } {
  const http = createHttpClient({ ...(token !== undefined && { token }), timeoutMs: IN_DOUBT_ASK_TIMEOUT_MS });
  return { survey: createInDoubtSurvey({ participants, http, now: systemClock.now }), close: () => http.close() };
}
