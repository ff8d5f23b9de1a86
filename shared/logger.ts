/**
 * pino, one line per protocol step: `{ node, role, txId, step, lsn, forced }`.
 * Pretty-printed when stdout is a terminal, JSON lines otherwise.
 */
import { destination, pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  readonly role: 'coordinator' | 'participant' | 'cluster' | 'cli';
  readonly name: string;
  readonly level?: string;
  readonly destination?: DestinationStream;
  readonly pretty?: boolean;
  /**
   * Write each line before returning. Chaos mode sets it: a process that
   * SIGKILLs itself at a crash point must not lose the lines that lead there,
   * or the scenario timelines show messages as lost that were received.
   */
  readonly sync?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.TWOPC_LOG_LEVEL ?? 'info';
  const base = { role: options.role, node: options.name };
  if (options.destination) return pino({ level, base }, options.destination);
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (options.sync === true && !pretty) return pino({ level, base }, destination({ dest: 1, sync: true }));
  if (pretty) {
    return pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,role', translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ level, base });
}

/** A logger that writes nothing, for tests and library users who bring none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
