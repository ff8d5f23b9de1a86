/** Byte helpers and a scripted random function for the simulated disk's exact tests. */

export const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

export const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/**
 * A random function that returns `values` in order and throws when asked for one more: a crash
 * that draws more (or fewer, checked by `drained`) numbers than the semantics need fails.
 */
export function scripted(...values: number[]): (() => number) & { drained: () => boolean } {
  const queue = [...values];
  const next = (): number => {
    const value = queue.shift();
    if (value === undefined) throw new Error('the simulated disk drew one random number more than scripted');
    return value;
  };
  return Object.assign(next, { drained: () => queue.length === 0 });
}
