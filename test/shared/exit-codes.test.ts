/** How a failed start is reported (shared/exit-codes.ts): by class and errno code, one line each. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../shared/errors.ts';
import { EXIT_CODES, explainStartFailure } from '../../shared/exit-codes.ts';
import { WalError } from '../../wal/errors.ts';

const where = { dataDir: '/data/p1', host: '127.0.0.1', port: 7001 };
const errno = (code: string, syscall: string, message = `${code}: something, ${syscall}`) => Object.assign(new Error(message), { code, syscall });

describe('explainStartFailure', () => {
  it('gives every kind of failure a code of its own', () => {
    expect(new Set(Object.values(EXIT_CODES)).size).toBe(Object.keys(EXIT_CODES).length);
  });

  it('maps each failure to its code and one line', () => {
    const cases: [unknown, number, string][] = [
      [new ConfigError('Participants p1 and p2 both reach h:1'), EXIT_CODES.config, 'p1 and p2'],
      [new WalError('WAL_LOCKED', 'WAL directory /data/p1 is in use by participant p1 (pid 7)'), EXIT_CODES.dataDirLocked, 'pid 7'],
      [new WalError('WAL_CORRUPT', 'WAL corrupt in /data/p1/1.wal at byte offset 64: bad crc.'), EXIT_CODES.walCorrupt, 'byte offset 64'],
      [new WalError('WAL_UNSUPPORTED_VERSION', 'format 9'), EXIT_CODES.walCorrupt, 'format 9'],
      [errno('EADDRINUSE', 'listen'), EXIT_CODES.cannotListen, '127.0.0.1:7001'],
      [errno('EACCES', 'listen'), EXIT_CODES.cannotListen, '127.0.0.1:7001'],
      [errno('EADDRNOTAVAIL', 'listen'), EXIT_CODES.config, 'not an address of this machine'],
      [errno('ENOSPC', 'write'), EXIT_CODES.diskFull, '/data/p1: the disk is full'],
      [new WalError('WAL_POISONED', 'poisoned', { cause: errno('ENOSPC', 'write') }), EXIT_CODES.diskFull, '/data/p1'],
      [errno('EIO', 'fsync'), EXIT_CODES.diskFull, 'the disk failed'],
      [errno('EROFS', 'mkdir'), EXIT_CODES.dataDirUnusable, 'EROFS'],
      [errno('ENOTDIR', 'mkdir'), EXIT_CODES.dataDirUnusable, '/data/p1 is not usable'],
      [errno('EACCES', 'open'), EXIT_CODES.dataDirUnusable, 'EACCES'],
    ];
    for (const [error, code, text] of cases) {
      const failure = explainStartFailure(error, where);
      expect(failure?.exitCode, String(error)).toBe(code);
      expect(failure?.message).toContain(text);
      expect(failure?.message).not.toContain('\n');
    }
  });

  it('leaves a bug a bug: unknown errors keep their stack trace', () => {
    expect(explainStartFailure(new TypeError('x is undefined'), where)).toBeUndefined();
    expect(explainStartFailure(new WalError('WAL_INVALID_ARGUMENT', 'type 0'), where)).toBeUndefined();
    expect(explainStartFailure('a string', where)).toBeUndefined();
  });
});
