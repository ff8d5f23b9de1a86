/** What one run counts: messages, faults injected by kind, crashes and restarts. */
export class Stats {
  messages = 0;
  crashes = 0;
  restarts = 0;
  /** Node crashes in the final power cycle, counted apart from the injected ones. */
  powerCycles = 0;
  steps = 0;
  /** Effects the driver ran while a laned resource call was still in flight: its lanes at work. */
  overtakes = 0;
  /** Forced writes whose fdatasync took simulated time, and resource applies that did. */
  slowSyncs = 0;
  slowApplies = 0;
  readonly faults: Record<string, number> = {};
  /** Batch requests sent, the messages they carried, and those carrying more than one message. */
  batches = 0;
  batchedMessages = 0;
  sharedBatches = 0;

  batch(messages: number): void {
    this.batches++;
    this.batchedMessages += messages;
    if (messages > 1) this.sharedBatches++;
  }

  fault(kind: string, n = 1): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + n;
  }
}
