import { describe, expect, it } from 'vitest';
import { createPrng } from '../../scenarios/prng.ts';
import type { Message, SimEvent } from './messages.ts';
import { Network } from './network.ts';
import { NO_FAULTS } from './profile.ts';
import { EventQueue } from './queue.ts';
import { Stats } from './stats.ts';

function setup() {
  const queue = new EventQueue<SimEvent>();
  const procs: Record<string, { up: boolean; incarnation: number }> = { a: { up: true, incarnation: 1 }, b: { up: true, incarnation: 1 } };
  const stats = new Stats();
  const net = new Network(queue, createPrng(1), NO_FAULTS, stats, (n) => procs[n] ?? { up: false, incarnation: 0 });
  const drain = (): Message[] => {
    const out: Message[] = [];
    for (let e = queue.pop(); e; e = queue.pop()) if (e.event.kind === 'deliver') out.push(e.event.msg);
    return out;
  };
  return { queue, procs, stats, net, drain };
}

const prepare = (callId: number): Message => ({
  kind: 'request',
  callId,
  from: 'a',
  to: 'b',
  payload: { type: 'commit', body: { txId: 'tx-1-1' as never } },
});

describe('the simulated network', () => {
  it('delivers a request to a live process and binds the call to its incarnation', () => {
    const { net, procs } = setup();
    expect(net.arrive(prepare(1))).toBe('taken');
    // A duplicate on the same connection is taken again; after a restart it is not.
    expect(net.arrive(prepare(1))).toBe('taken');
    procs['b'] = { up: true, incarnation: 2 };
    expect(net.arrive(prepare(1))).toBe('reset');
  });

  it('refuses a request to a dead process, tells the caller, and never executes a later copy', () => {
    const { net, procs, drain } = setup();
    procs['b'] = { up: false, incarnation: 1 };
    expect(net.arrive(prepare(7))).toBe('refused');
    expect(drain()).toEqual([{ kind: 'failure', callId: 7, from: 'b', to: 'a', error: 'unreachable' }]);
    procs['b'] = { up: true, incarnation: 2 };
    expect(net.arrive(prepare(7))).toBe('refused');
  });

  it('drops messages on a cut link, one way only', () => {
    const { net, stats, drain } = setup();
    net.cutLink('a', 'b');
    net.send(prepare(1));
    net.send({ kind: 'response', callId: 1, from: 'b', to: 'a', status: 200, body: {} });
    expect(drain().map((m) => m.kind)).toEqual(['response']);
    expect(stats.faults['partition-drop']).toBe(1);
    net.mendLink('a', 'b');
    net.send(prepare(2));
    expect(drain()).toHaveLength(1);
  });

  it('never duplicates a client transaction request, which is not idempotent', () => {
    const queue = new EventQueue<SimEvent>();
    const stats = new Stats();
    const net = new Network(queue, createPrng(3), { ...NO_FAULTS, duplicateP: 1 }, stats, () => ({ up: true, incarnation: 1 }));
    net.faultsOn = true;
    net.send({ kind: 'request', callId: 1, from: 'client', to: 'coordinator', payload: { type: 'runWhole', branches: [], index: 0 } });
    net.send(prepare(2));
    expect(queue.size).toBe(3);
    expect(stats.faults['duplicate']).toBe(1);
  });
});
