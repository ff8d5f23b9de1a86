import { describe, expect, it } from 'vitest';
import { TwopcError } from '../../shared/errors.ts';
import { batchMessageSchema, createTransactionSchema, opSchema, parse, parseAt, prepareSchema } from '../../shared/schemas.ts';

function rejects(schema: Parameters<typeof parse>[0], value: unknown): string {
  try {
    parse(schema, value);
  } catch (e) {
    expect(e).toBeInstanceOf(TwopcError);
    expect((e as TwopcError).status).toBe(400);
    return (e as TwopcError).message;
  }
  throw new Error('expected a rejection');
}

describe('schemas', () => {
  it('accepts each op of the contract', () => {
    expect(parse(opSchema, { op: 'put', key: 'k', value: { a: 1 } })).toEqual({ op: 'put', key: 'k', value: { a: 1 } });
    expect(parse(opSchema, { op: 'add', key: 'k', amount: -5, min: 0 })).toEqual({ op: 'add', key: 'k', amount: -5, min: 0 });
    expect(parse(opSchema, { op: 'delete', key: 'k' })).toEqual({ op: 'delete', key: 'k' });
    expect(parse(opSchema, { op: 'read', key: 'k' })).toEqual({ op: 'read', key: 'k' });
  });

  it.each([
    [{ op: 'add', key: 'k', amount: '5' }, 'Expected `amount` to be a finite number'],
    [{ op: 'add', key: 'k', amount: 5, mni: 0 }, 'Unknown field `mni`'],
    [{ op: 'put', key: 'k' }, 'Missing field `value`'],
    [{ op: 'rename', key: 'k' }, 'Expected `op` to be one of'],
    [{ op: 'read', key: '' }, 'at least 1 characters'],
    [[], 'Expected `body` to be an object, got an array.'],
  ])('rejects %j with a message naming the field', (value, message) => {
    expect(rejects(opSchema, value)).toContain(message);
  });

  it('names nested paths', () => {
    const msg = rejects(createTransactionSchema, { branches: [{ participant: 'p1', ops: [{ op: 'add', key: 'k', amount: null }] }] });
    expect(msg).toContain('branches[0].ops[0].amount');
  });

  it("passes another resource's ops through the coordinator, checked for shape and size only", () => {
    const sql = { op: 'sql', text: 'UPDATE accounts SET balance = balance - $1 WHERE id = $2', params: [5, 'a'] };
    expect(parse(createTransactionSchema, { branches: [{ participant: 'pg', ops: [sql, { op: 'reserve', sku: 'w', qty: 1 }] }] })).toEqual({
      branches: [{ participant: 'pg', ops: [sql, { op: 'reserve', sku: 'w', qty: 1 }] }],
    });
    expect(rejects(createTransactionSchema, { branches: [{ participant: 'pg', ops: [{ op: 5 }] }] })).toContain('`branches[0].ops[0].op` to be a string');
    expect(rejects(createTransactionSchema, { branches: [{ participant: 'pg', ops: ['UPDATE x'] }] })).toContain('`branches[0].ops[0]` to be an object');
    expect(rejects(createTransactionSchema, { branches: [{ participant: 'pg', ops: [{ op: 'sql', text: 'x'.repeat(70_000) }] }] })).toContain('at most 65536 bytes');
  });

  it('rejects unknown top-level fields and bounds list sizes', () => {
    expect(rejects(createTransactionSchema, { timeoutMS: 5 })).toContain('Unknown field `timeoutMS`');
    const ops = Array.from({ length: 300 }, () => ({ op: 'read', key: 'k' }));
    expect(rejects(createTransactionSchema, { branches: [{ participant: 'p1', ops }] })).toContain('at most 256 items');
  });

  it('validates prepare bodies, including the coordinator URL', () => {
    const ok = { txId: 'tx-1-1', coordinator: 'http://127.0.0.1:1', participants: ['http://127.0.0.1:2'], ops: [] };
    expect(parse(prepareSchema(), ok)).toEqual(ok);
    expect(rejects(prepareSchema(), { ...ok, coordinator: 'file:///etc/passwd' })).toContain('coordinator');
    expect(rejects(prepareSchema(), { ...ok, txId: 'a b' })).toContain('txId');
  });

  // Valid input is parsed without zod's options (its fast path) and invalid input again with them:
  // each rejection must still carry our wording, from the batch body's root, and the 400.
  it('words a bad batch message from the body root, as the single route would', () => {
    const message = batchMessageSchema(prepareSchema());
    const rejection = (value: unknown): string => {
      try {
        parseAt(message, value, ['messages', 2]);
      } catch (e) {
        expect((e as TwopcError).status).toBe(400);
        return (e as TwopcError).message;
      }
      throw new Error('expected a rejection');
    };
    expect(rejection({ type: 'commit', body: { txId: 'bad id' } })).toBe('Expected `messages[2].body.txId` to match /^[A-Za-z0-9._:-]+$/.');
    expect(rejection({ type: 'nope' })).toBe('Expected `messages[2].type` to be one of "prepare", "commit", "abort", got string "nope".');
    expect(rejection({ type: 'prepare', body: { txId: 't', coordinator: 'http://a', participants: [], ops: [{ op: 'put', key: 'k', value: 'x'.repeat(17_000) }] } })).toBe(
      'Expected `messages[2].body.ops[0].value` to be at most 16384 bytes of JSON, got 17002.',
    );
    const ok = { type: 'prepare', body: { txId: 't-1', coordinator: 'http://a', participants: ['http://b'], ops: [{ op: 'add', key: 'k', amount: -1, min: 0 }] } };
    expect(parseAt(message, ok, ['messages', 0])).toEqual(ok);
  });
});
