/**
 * Every CLI flag can also come from the environment as TWOPC_<FLAG>
 * (`--lock-wait-ms` ← TWOPC_LOCK_WAIT_MS), for containers.
 */
import { InvalidArgumentError, Option } from 'commander';
import { BLOCKING_SYNC_MS_LIMIT, BLOCKING_SYNC_MS_MAX_DEFAULT, SYNC_POLICIES } from '../wal/options.ts';
import { ConfigError } from './errors.ts';
import { HEAP_GROWING_PERCENT_DEFAULTS, HEAP_GROWING_PERCENT_MAX } from './heap-growing.ts';
import { SERVER_LIMITS_DEFAULT, type ServerLimits } from './http/limits.ts';
import { checkParticipants, parseServiceUrl } from './urls.ts';

export function envName(flags: string): string {
  const long = /--([a-z0-9-]+)/.exec(flags)?.[1];
  if (!long) throw new Error(`option ${flags} has no long name`);
  return `TWOPC_${long.replace(/-/g, '_').toUpperCase()}`;
}

/** An option that also reads TWOPC_<FLAG>. */
export function opt(flags: string, description: string): Option {
  return new Option(flags, description).env(envName(flags));
}

export function intArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`Expected \`${name}\` to be an integer from ${min} to ${max}, got "${value}".`);
    }
    return n;
  };
}

/** A number (fractions allowed) from `min` to `max`. */
export function numberArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = value.trim() === '' ? Number.NaN : Number(value);
    if (!(n >= min && n <= max)) throw new InvalidArgumentError(`Expected \`${name}\` to be a number from ${min} to ${max}, got "${value}".`);
    return n;
  };
}

/**
 * --wal-blocking-sync-ms (wal/options.ts `blockingSyncMsMax`): a WAL batch's fdatasync holds the
 * event loop while blocking syncs average at most this long, else it goes to libuv's thread pool
 * for a while; 0 keeps every sync in the thread pool. No default here: each service applies the
 * WAL's own (BLOCKING_SYNC_MS_MAX_DEFAULT) unless told.
 */
export function walBlockingSyncOpt(): Option {
  return opt(
    '--wal-blocking-sync-ms <ms>',
    `a WAL batch's fdatasync blocks the event loop while blocking ones average at most this long (default ${BLOCKING_SYNC_MS_MAX_DEFAULT}; 0: always libuv's thread pool)`,
  ).argParser(numberArg('wal-blocking-sync-ms', 0, BLOCKING_SYNC_MS_LIMIT));
}

/** The WAL's sync policies are the --fsync modes; one list, so they cannot drift apart. */
export const FSYNC_MODES = SYNC_POLICIES;
export type FsyncMode = (typeof FSYNC_MODES)[number];

export function fsyncOpt(): Option {
  return opt('--fsync <mode>', 'WAL sync policy').choices(FSYNC_MODES).default('group');
}

/** pino's levels, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * --log-level (TWOPC_LOG_LEVEL). At `info` a node logs its life (start, recovery, warnings);
 * every protocol step and WAL record is at `debug`, which the scenario harness turns on to draw
 * its timelines.
 */
export function logLevelOpt(): Option {
  return opt('--log-level <level>', 'log level (protocol steps are debug)').choices(LOG_LEVELS);
}

/** --token and --chaos: every command that starts a node takes them. */
export function accessOpts(): Option[] {
  return [
    opt('--token <token>', 'require Authorization: Bearer <token>'),
    opt('--chaos', 'enable crash points and /v1/chaos').default(false),
  ];
}

/** What `twopc coordinator` and `twopc participant` both take: where to listen, where the WAL lives, how it syncs. */
export function serviceOpts(): Option[] {
  return [
    opt('--port <n>', 'port to listen on').argParser(intArg('port', 0, 65535)).makeOptionMandatory(),
    opt('--host <host>', 'address to bind').default('127.0.0.1'),
    opt('--data <dir>', 'directory for the WAL').makeOptionMandatory(),
    fsyncOpt(),
    logLevelOpt(),
    ...accessOpts(),
    ...httpLimitOpts(),
  ];
}

/**
 * --heap-growing-percent (shared/heap-growing.ts): how far this process's old generation may
 * grow past its live data before V8 collects it again; less memory for more full collections.
 */
export function heapGrowingOpt(role: keyof typeof HEAP_GROWING_PERCENT_DEFAULTS): Option {
  return opt('--heap-growing-percent <n>', "V8's old generation may grow to (1 + n/100) x what the last full collection kept (0: V8's own factor, up to 4x)")
    .argParser(intArg('heap-growing-percent', 0, HEAP_GROWING_PERCENT_MAX))
    .default(HEAP_GROWING_PERCENT_DEFAULTS[role]);
}

/** The HTTP server's bounds an operator may need to size (shared/http/limits.ts has the rest and the why). */
export function httpLimitOpts(): Option[] {
  return [
    opt('--connections-max <n>', 'open connections at once; more are closed on arrival')
      .argParser(intArg('connections-max', 1, 65_536))
      .default(SERVER_LIMITS_DEFAULT.connectionsMax),
    opt('--request-timeout-ms <n>', 'how long a client may take to send a whole request; slower ones get a 408')
      .argParser(intArg('request-timeout-ms', 100, 600_000))
      .default(SERVER_LIMITS_DEFAULT.requestTimeoutMs),
    opt('--drain-ms-max <n>', 'on SIGTERM, how long requests in flight may take to finish before their connections are cut')
      .argParser(intArg('drain-ms-max', 1, 600_000))
      .default(SERVER_LIMITS_DEFAULT.drainMsMax),
  ];
}

/** The limits `listen` takes, from the parsed options of httpLimitOpts. */
export function httpLimitsOf(o: { connectionsMax: number; requestTimeoutMs: number; drainMsMax: number }): Partial<ServerLimits> {
  return { connectionsMax: o.connectionsMax, requestTimeoutMs: o.requestTimeoutMs, drainMsMax: o.drainMsMax };
}

/** Runs a check that throws ConfigError as a commander argument parser, so the CLI reports it as a usage error. */
function asArgParser<T>(check: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return check(value);
    } catch (error) {
      if (error instanceof ConfigError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}

/**
 * Parses `p1=http://127.0.0.1:7001,p2=...` into a name → URL map, each URL in normal form
 * (shared/urls.ts); refuses a malformed URL and two names for one participant.
 */
export const parseParticipants = asArgParser((value: string): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`Expected participants as name=URL[,name=URL...], got "${part}".`);
    const name = part.slice(0, eq);
    if (Object.hasOwn(out, name)) throw new ConfigError(`Participant "${name}" is listed twice.`);
    out[name] = part.slice(eq + 1);
  }
  return checkParticipants(out);
});

/** An argument parser for a service's base URL (`--coordinator`). */
export function serviceUrlArg(flag: string): (value: string) => string {
  return asArgParser((value) => parseServiceUrl(value, flag));
}

/** Parses `http://h:1,http://h:2` (names allowed, `p2=http://h:2`) into base URLs in normal form (shared/urls.ts). */
export const parsePeers = asArgParser((value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => parseServiceUrl(/^[A-Za-z0-9_.-]{1,64}=/.test(part) ? part.slice(part.indexOf('=') + 1) : part, '--peers')),
);

/** Parses `--coordinator URL[,URL...]` (every member of an HA group; one URL otherwise) into base URLs in normal form. */
/** --advertise-url: the one URL other members and clients reach this service by. */
export const parseAdvertiseUrl = asArgParser((value: string): string => parseServiceUrl(value.trim(), '--advertise-url'));

export const parseCoordinatorUrls = asArgParser((value: string): string[] => {
  const urls = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((u) => parseServiceUrl(u, '--coordinator'));
  if (urls.length === 0) throw new ConfigError('Expected --coordinator to be a URL (or URL,URL,... for an HA group).');
  return urls;
});

/**
 * `--no-batching`: one HTTP request per protocol message, the path before batching. Batching is
 * on by default. Commander treats the environment variable of a boolean flag as set whatever its
 * value, so TWOPC_BATCHING is read here instead, and only `true` or `false` (or 1/0) are accepted.
 */
export function batchingOpt(): Option {
  return new Option('--no-batching', 'one HTTP request per protocol message instead of batches (env TWOPC_BATCHING=false)');
}

/** Whether batching is on, from the parsed `--no-batching` and TWOPC_BATCHING; a value other than true/false/1/0 is a ConfigError. */
export function batchingOf(fromCli: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (fromCli === false) return false;
  const raw = env.TWOPC_BATCHING;
  if (raw === undefined || raw === '') return true;
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new ConfigError(`Expected TWOPC_BATCHING to be true or false, got "${raw}".`);
}
