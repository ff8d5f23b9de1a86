/**
 * A persistent (never mutated) map with string keys that iterates in insertion order, like a
 * JavaScript Map: `set` and `delete` return a new map and leave the old one exactly as it was,
 * at O(log n) cost, sharing everything they do not touch.
 *
 * Why: the protocol cores are pure functions `step(state, event)`, and the simulator and the
 * tests keep old states and step from them again. Copying a whole `Map` on each change kept old
 * states valid at a cost that grew with every transaction in memory (issue 12; see
 * docs/performance.md, "Core step cost"). Here a change copies one path of small nodes instead.
 *
 * Two tries share the entries:
 * - by key, a hash array mapped trie (HAMT: Bagwell 2001, as in Clojure and Immutable.js) on a
 *   32-bit hash of the key (see `hashKey`), 5 bits a level, bitmap-compressed nodes, with entries
 *   whose whole hashes collide kept together in one node;
 * - by insertion order, a radix trie on a sequence number each new key gets (32 slots a level),
 *   so iteration, and `first` (the oldest entry, for bounded FIFO histories), follow insertion.
 * Setting a key already present keeps its place, as Map does; deleting and setting it again
 * moves it to the end. Depth is at most 7 levels by key and 11 by order (sequence numbers up to
 * 2^53), so every operation is bounded whatever the map holds.
 *
 * It implements ReadonlyMap, so readers (runtimes, views, tests) need not know it is not a Map.
 * Pure: no I/O, no clock, no randomness; the cores may use it.
 */

/** Bits of the hash consumed per level of the key trie, and slots per level of the order trie. */
const BITS = 5;
const WIDTH = 1 << BITS;
const MASK = WIDTH - 1;
/** Order-trie levels: 32^11 > 2^53, so a safe-integer sequence number always fits. */
const ORDER_LEVELS_MAX = 11;
const POW: readonly number[] = Array.from({ length: ORDER_LEVELS_MAX }, (_, i) => WIDTH ** i);

class Leaf<V> {
  constructor(
    readonly key: string,
    readonly value: V,
    readonly hash: number,
    readonly seq: number,
  ) {}
}

/** Entries whose keys' 32-bit hashes are equal. */
class Collision<V> {
  constructor(
    readonly hash: number,
    readonly leaves: readonly Leaf<V>[],
  ) {}
}

/** A key-trie node: `bitmap` says which of the 32 slots are present; `slots` holds only those. */
class Branch<V> {
  constructor(
    readonly bitmap: number,
    readonly slots: readonly KeySlot<V>[],
  ) {}
}

type KeySlot<V> = Leaf<V> | Collision<V> | Branch<V>;

/** An order-trie node: 32 slots, each a leaf (level 0) or a node (above), or empty. */
type OrderNode<V> = readonly (OrderSlot<V> | undefined)[];
type OrderSlot<V> = Leaf<V> | OrderNode<V>;

/** Digits of a transaction id's epoch or sequence number read as a number (15 keeps it exact). */
const ID_DIGITS_MAX = 15;
const DIGIT_0 = 48;
const DASH = 45;
/** Spreads epochs apart in the hash (the 32-bit golden ratio, as a signed integer). */
const EPOCH_SPREAD = 0x9e3779b1 | 0;

/**
 * A key's 32-bit hash, as a signed integer: V8 keeps a value in that range inline as a small
 * integer, where an unsigned one above 2^31 would be a separate heap number, one more cache line
 * to load on each comparison in a large map.
 *
 * A transaction id hashes to its sequence number (plus its epoch, spread) with the bits reversed:
 * the trie takes the low bits first, so consecutive ids share their path down to the last levels.
 * The bounded histories insert the newest ids and evict the oldest, so every step copies the same
 * few hot nodes, whose copies die young, where a scattering hash copied a different cold path each
 * time and the deep copies lived long enough to be promoted by the garbage collector (issue 12;
 * docs/performance.md, "Core step cost"). Any other key gets FNV-1a. Keys whose hashes collide are
 * still told apart (collision nodes), so the choice of hash changes cost, never answers.
 */
export function hashKey(key: string): number {
  if (!key.startsWith('tx-')) return fnv1a(key);
  const epoch = digitsAt(key, 3, DASH);
  if (epoch === undefined) return fnv1a(key);
  const seq = digitsAt(key, epoch.end + 1, undefined);
  if (seq === undefined) return fnv1a(key);
  return reverseBits((seq.value + Math.imul(epoch.value | 0, EPOCH_SPREAD)) | 0);
}

/**
 * The number written from `start` up to the character `stop` (or the end of the key when
 * undefined), by hand rather than by a regular expression: it runs on every lookup.
 */
function digitsAt(key: string, start: number, stop: number | undefined): { value: number; end: number } | undefined {
  let value = 0;
  let i = start;
  for (; i < key.length && i - start < ID_DIGITS_MAX; i++) {
    const c = key.charCodeAt(i);
    if (c < DIGIT_0 || c > DIGIT_0 + 9) break;
    value = value * 10 + (c - DIGIT_0);
  }
  if (i === start) return undefined;
  if (stop === undefined ? i !== key.length : key.charCodeAt(i) !== stop) return undefined;
  return { value, end: i };
}

function fnv1a(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

function reverseBits(x: number): number {
  let r = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  r = ((r >>> 2) & 0x33333333) | ((r & 0x33333333) << 2);
  r = ((r >>> 4) & 0x0f0f0f0f) | ((r & 0x0f0f0f0f) << 4);
  r = ((r >>> 8) & 0x00ff00ff) | ((r & 0x00ff00ff) << 8);
  return ((r >>> 16) | (r << 16)) | 0;
}

function popcount(x: number): number {
  let n = x - ((x >>> 1) & 0x55555555);
  n = (n & 0x33333333) + ((n >>> 2) & 0x33333333);
  return (Math.imul((n + (n >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

const chunk = (hash: number, shift: number): number => (hash >>> shift) & MASK;

// ---- the key trie ------------------------------------------------------------------------

function findLeaf<V>(root: KeySlot<V> | undefined, hash: number, key: string): Leaf<V> | undefined {
  let node = root;
  for (let shift = 0; node !== undefined; shift += BITS) {
    // The hash first: a miss then never loads the stored key string (a cold cache line in a large map).
    if (node instanceof Leaf) return node.hash === hash && node.key === key ? node : undefined;
    if (node instanceof Collision) return node.hash === hash ? node.leaves.find((l) => l.key === key) : undefined;
    const bit = 1 << chunk(hash, shift);
    if ((node.bitmap & bit) === 0) return undefined;
    node = node.slots[popcount(node.bitmap & (bit - 1))];
  }
  return undefined;
}

const hashOf = <V>(slot: Leaf<V> | Collision<V>): number => slot.hash;

/**
 * A branch holding `a` and `b`, whose hashes differ: they part at a shift of at most 30 (the
 * last chunk holds the hash's top 2 bits), so the recursion ends within 7 levels.
 */
function pair<V>(a: Leaf<V> | Collision<V>, b: Leaf<V>, shift: number): Branch<V> {
  const ca = chunk(hashOf(a), shift);
  const cb = chunk(b.hash, shift);
  if (ca === cb) return new Branch(1 << ca, [pair(a, b, shift + BITS)]);
  return new Branch((1 << ca) | (1 << cb), ca < cb ? [a, b] : [b, a]);
}

/** `leaf` in place of the entry with its key, or added. */
function putLeaf<V>(node: KeySlot<V> | undefined, leaf: Leaf<V>, shift: number): KeySlot<V> {
  if (node === undefined) return leaf;
  if (node instanceof Leaf) {
    if (node.key === leaf.key) return leaf;
    return node.hash === leaf.hash ? new Collision(leaf.hash, [node, leaf]) : pair(node, leaf, shift);
  }
  if (node instanceof Collision) {
    if (node.hash !== leaf.hash) return pair(node, leaf, shift);
    const i = node.leaves.findIndex((l) => l.key === leaf.key);
    return new Collision(node.hash, i < 0 ? [...node.leaves, leaf] : node.leaves.map((l, j) => (j === i ? leaf : l)));
  }
  const bit = 1 << chunk(leaf.hash, shift);
  const at = popcount(node.bitmap & (bit - 1));
  const slots = node.slots.slice();
  if ((node.bitmap & bit) === 0) {
    slots.splice(at, 0, leaf);
    return new Branch(node.bitmap | bit, slots);
  }
  slots[at] = putLeaf(slots[at], leaf, shift + BITS);
  return new Branch(node.bitmap, slots);
}

/** Without the entry for `key` (which is present); a branch left with one entry collapses into it. */
function dropLeaf<V>(node: KeySlot<V>, hash: number, key: string, shift: number): KeySlot<V> | undefined {
  if (node instanceof Leaf) return undefined;
  if (node instanceof Collision) {
    const rest = node.leaves.filter((l) => l.key !== key);
    return rest.length === 1 ? rest[0] : new Collision(node.hash, rest);
  }
  const bit = 1 << chunk(hash, shift);
  const at = popcount(node.bitmap & (bit - 1));
  const child = dropLeaf(node.slots[at] as KeySlot<V>, hash, key, shift + BITS);
  if (child === undefined) {
    if (node.slots.length === 1) return undefined;
    const slots = node.slots.filter((_, i) => i !== at);
    const only = slots[0];
    // Below the root, a lone entry moves up: lookups stop at the first leaf, whatever its depth.
    if (shift > 0 && slots.length === 1 && only !== undefined && !(only instanceof Branch)) return only;
    return new Branch(node.bitmap & ~bit, slots);
  }
  if (shift > 0 && node.slots.length === 1 && !(child instanceof Branch)) return child;
  const slots = node.slots.slice();
  slots[at] = child;
  return new Branch(node.bitmap, slots);
}

// ---- the order trie ----------------------------------------------------------------------

const slotAt = (seq: number, level: number): number => Math.floor(seq / (POW[level] as number)) % WIDTH;

function emptyOrderNode<V>(): (OrderSlot<V> | undefined)[] {
  return new Array<OrderSlot<V> | undefined>(WIDTH).fill(undefined);
}

function putOrdered<V>(node: OrderNode<V> | undefined, level: number, leaf: Leaf<V>): OrderNode<V> {
  const next = node === undefined ? emptyOrderNode<V>() : node.slice();
  const i = slotAt(leaf.seq, level);
  next[i] = level === 0 ? leaf : putOrdered(next[i] as OrderNode<V> | undefined, level - 1, leaf);
  return next;
}

/** Without the leaf numbered `seq` (which is present); an emptied node is dropped from its parent. */
function dropOrdered<V>(node: OrderNode<V>, level: number, seq: number): OrderNode<V> | undefined {
  const i = slotAt(seq, level);
  const child = level === 0 ? undefined : dropOrdered(node[i] as OrderNode<V>, level - 1, seq);
  const next = node.slice();
  next[i] = child;
  return next.some((s) => s !== undefined) ? next : undefined;
}

function* walk<V>(node: OrderNode<V>, level: number): Generator<Leaf<V>, void, undefined> {
  for (const slot of node) {
    if (slot === undefined) continue;
    if (level === 0) yield slot as Leaf<V>;
    else yield* walk(slot as OrderNode<V>, level - 1);
  }
}

function firstLeaf<V>(node: OrderNode<V>, level: number): Leaf<V> | undefined {
  let n: OrderNode<V> = node;
  for (let l = level; l > 0; l--) {
    const child = n.find((s) => s !== undefined);
    if (child === undefined) return undefined;
    n = child as OrderNode<V>;
  }
  return n.find((s) => s !== undefined) as Leaf<V> | undefined;
}

// ---- the map -----------------------------------------------------------------------------

export class PersistentMap<K extends string, V> implements ReadonlyMap<K, V> {
  private static readonly EMPTY = new PersistentMap<string, never>(undefined, undefined, 0, 0, 0);

  private constructor(
    private readonly byKey: KeySlot<V> | undefined,
    private readonly byOrder: OrderNode<V> | undefined,
    /** The order trie's top level: it numbers sequence numbers below 32^(top+1). */
    private readonly top: number,
    private readonly nextSeq: number,
    readonly size: number,
  ) {}

  static empty<K extends string, V>(): PersistentMap<K, V> {
    return PersistentMap.EMPTY as unknown as PersistentMap<K, V>;
  }

  /** The same entries in the same order; a PersistentMap is returned as it is, anything else is copied once. */
  static from<K extends string, V>(entries: Iterable<readonly [K, V]> | undefined): PersistentMap<K, V> {
    if (entries instanceof PersistentMap) return entries as PersistentMap<K, V>;
    let m = PersistentMap.empty<K, V>();
    for (const [k, v] of entries ?? []) m = m.set(k, v);
    return m;
  }

  get(key: K): V | undefined {
    return findLeaf(this.byKey, hashKey(key), key)?.value;
  }

  has(key: K): boolean {
    return findLeaf(this.byKey, hashKey(key), key) !== undefined;
  }

  set(key: K, value: V): PersistentMap<K, V> {
    const hash = hashKey(key);
    const old = findLeaf(this.byKey, hash, key);
    if (old !== undefined && Object.is(old.value, value)) return this;
    const seq = old?.seq ?? this.nextSeq;
    if (!Number.isSafeInteger(seq)) throw new RangeError('PersistentMap: sequence numbers exhausted.');
    const leaf = new Leaf(key, value, hash, seq);
    let top = this.top;
    let byOrder = this.byOrder;
    while (seq >= (POW[top] as number) * WIDTH) {
      // Grow a level: the old root becomes the new root's first slot.
      const root = emptyOrderNode<V>();
      root[0] = byOrder;
      byOrder = byOrder === undefined ? undefined : root;
      top += 1;
    }
    const byKey = putLeaf(this.byKey, leaf, 0);
    const nextSeq = old === undefined ? this.nextSeq + 1 : this.nextSeq;
    return new PersistentMap(byKey, putOrdered(byOrder, top, leaf), top, nextSeq, old === undefined ? this.size + 1 : this.size);
  }

  delete(key: K): PersistentMap<K, V> {
    const hash = hashKey(key);
    const old = findLeaf(this.byKey, hash, key);
    if (old === undefined || this.byKey === undefined || this.byOrder === undefined) return this;
    if (this.size === 1) return PersistentMap.empty();
    return new PersistentMap(dropLeaf(this.byKey, hash, key, 0), dropOrdered(this.byOrder, this.top, old.seq), this.top, this.nextSeq, this.size - 1);
  }

  /**
   * Without the oldest entry (for bounded FIFO histories): the same as `delete` of `first()`'s
   * key, but it neither hashes that key again nor looks it up by key, so it never loads the old
   * key's string, a cold cache line once the map is large.
   */
  dropFirst(): PersistentMap<K, V> {
    const leaf = this.byOrder === undefined ? undefined : firstLeaf(this.byOrder, this.top);
    if (leaf === undefined || this.byKey === undefined || this.byOrder === undefined) return this;
    if (this.size === 1) return PersistentMap.empty();
    return new PersistentMap(dropLeaf(this.byKey, leaf.hash, leaf.key, 0), dropOrdered(this.byOrder, this.top, leaf.seq), this.top, this.nextSeq, this.size - 1);
  }

  /** The oldest entry (the first in iteration order), if any. */
  first(): readonly [K, V] | undefined {
    const leaf = this.byOrder === undefined ? undefined : firstLeaf(this.byOrder, this.top);
    return leaf === undefined ? undefined : [leaf.key as K, leaf.value];
  }

  *entries(): MapIterator<[K, V]> {
    if (this.byOrder === undefined) return;
    for (const leaf of walk(this.byOrder, this.top)) yield [leaf.key as K, leaf.value];
  }

  *keys(): MapIterator<K> {
    if (this.byOrder === undefined) return;
    for (const leaf of walk(this.byOrder, this.top)) yield leaf.key as K;
  }

  *values(): MapIterator<V> {
    if (this.byOrder === undefined) return;
    for (const leaf of walk(this.byOrder, this.top)) yield leaf.value;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }

  get [Symbol.toStringTag](): string {
    return 'PersistentMap';
  }
}
