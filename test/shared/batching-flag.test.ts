/** `--no-batching` and TWOPC_BATCHING: on by default, off by the flag or by the variable, and a bad value is a ConfigError. */
import { describe, expect, it } from 'vitest';
import { batchingOf } from '../../shared/cli-options.ts';
import { ConfigError } from '../../shared/errors.ts';

describe('batchingOf', () => {
  it('is on by default and off with --no-batching, whatever the environment says', () => {
    expect(batchingOf(true, {})).toBe(true);
    expect(batchingOf(undefined, {})).toBe(true);
    expect(batchingOf(false, {})).toBe(false);
    expect(batchingOf(false, { TWOPC_BATCHING: 'true' })).toBe(false);
  });

  it('reads TWOPC_BATCHING as true/false or 1/0 when the flag is absent', () => {
    expect(batchingOf(true, { TWOPC_BATCHING: 'false' })).toBe(false);
    expect(batchingOf(true, { TWOPC_BATCHING: ' FALSE ' })).toBe(false);
    expect(batchingOf(true, { TWOPC_BATCHING: '0' })).toBe(false);
    expect(batchingOf(true, { TWOPC_BATCHING: '1' })).toBe(true);
    expect(batchingOf(true, { TWOPC_BATCHING: '' })).toBe(true);
  });

  it('refuses any other value with a ConfigError naming it', () => {
    expect(() => batchingOf(true, { TWOPC_BATCHING: 'no' })).toThrow(ConfigError);
    expect(() => batchingOf(true, { TWOPC_BATCHING: 'no' })).toThrow(/TWOPC_BATCHING.*"no"/);
  });
});
