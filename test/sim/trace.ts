/**
 * The run's trace: one line per simulator step. Every line feeds a running
 * hash (the determinism test compares hashes of two runs of one seed), and the
 * last `keep` lines are kept for the failure report, so a long run costs
 * bounded memory.
 */
import { createHash, type Hash } from 'node:crypto';

export class Trace {
  private readonly ring: string[] = [];
  private next = 0;
  private readonly hash: Hash = createHash('sha256');
  private count = 0;

  constructor(private readonly keep = 40) {}

  add(line: string): void {
    this.hash.update(line);
    this.hash.update('\n');
    this.count++;
    if (this.ring.length < this.keep) this.ring.push(line);
    else this.ring[this.next] = line;
    this.next = (this.next + 1) % this.keep;
  }

  /** Lines written so far. */
  get lines(): number {
    return this.count;
  }

  /** The last `keep` lines, oldest first. */
  tail(): string[] {
    if (this.ring.length < this.keep) return [...this.ring];
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  /** The hash of every line so far. Call once, at the end of the run. */
  digest(): string {
    return this.hash.digest('hex');
  }
}
