import { describe, expect, it } from 'vitest';
import { EventQueue } from './queue.ts';

describe('EventQueue', () => {
  it('runs events in (time, sequence) order and moves the clock to each', () => {
    const q = new EventQueue<string>();
    q.after(5, 'c');
    q.after(1, 'a');
    q.after(5, 'd');
    q.after(1, 'b');
    q.after(0, 'first');
    const order: string[] = [];
    const times: number[] = [];
    for (let e = q.pop(); e; e = q.pop()) {
      order.push(e.event);
      times.push(q.now);
    }
    expect(order).toEqual(['first', 'a', 'b', 'c', 'd']);
    expect(times).toEqual([0, 1, 1, 5, 5]);
  });

  it('never schedules into the past', () => {
    const q = new EventQueue<string>();
    q.after(10, 'x');
    q.pop();
    q.at(3, 'late');
    expect(q.pop()).toMatchObject({ at: 10, event: 'late' });
  });

  it('keeps many interleaved events in order', () => {
    const q = new EventQueue<number>();
    const due: number[] = [];
    for (let i = 0; i < 500; i++) {
      const at = (i * 7919) % 101;
      due.push(at);
      q.at(at, i);
    }
    const popped: number[] = [];
    for (let e = q.pop(); e; e = q.pop()) popped.push(e.at);
    expect(popped).toEqual([...due].sort((a, b) => a - b));
  });

  it('refuses to grow past its bound', () => {
    const q = new EventQueue<number>(3);
    q.after(1, 1);
    q.after(1, 2);
    q.after(1, 3);
    expect(() => q.after(1, 4)).toThrow(/exceeds 3 events/);
  });
});
