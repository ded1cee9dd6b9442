import { afterEach, describe, expect, it, vi } from 'vitest';
import { Alarm, MAX_TIMER_DELAY_MS, TimerIndex } from '../../src/server/timer-index.ts';

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('TimerIndex', () => {
  it('pops due ids earliest first, equal times in scheduling order', () => {
    const t = new TimerIndex();
    t.schedule('c', 30);
    t.schedule('a', 10);
    t.schedule('b1', 20);
    t.schedule('d', 40);
    t.schedule('b2', 20);
    expect(t.size).toBe(5);
    expect(t.peek()).toEqual({ id: 'a', atMs: 10 });
    expect(t.popDue(9)).toEqual([]);
    expect(t.popDue(20)).toEqual(['a', 'b1', 'b2']);
    expect(t.size).toBe(2);
    expect(t.popDue(100)).toEqual(['c', 'd']);
    expect(t.peek()).toBeUndefined();
    expect(t.popDue(1000)).toEqual([]);
  });

  it('cancels and reschedules in place', () => {
    const t = new TimerIndex();
    for (const [id, at] of [['a', 10], ['b', 20], ['c', 30], ['d', 40]] as const) t.schedule(id, at);
    expect(t.cancel('b')).toBe(true);
    expect(t.cancel('b')).toBe(false);
    expect(t.has('b')).toBe(false);
    expect(t.reschedule('d', 5)).toBe(true);
    expect(t.reschedule('zz', 5)).toBe(false);
    expect(t.has('zz')).toBe(false);
    expect(t.reschedule('a', 35)).toBe(true);
    t.schedule('c', 1); // scheduling a known id moves it
    expect(t.size).toBe(3);
    expect(t.timeOf('a')).toBe(35);
    expect(t.popDue(100)).toEqual(['c', 'd', 'a']);
  });

  it('stays a valid heap through many random operations', () => {
    const rand = prng(42);
    const t = new TimerIndex();
    const model = new Map<string, number>();
    let now = 0;
    for (let i = 0; i < 10_000; i++) {
      const id = `l${Math.floor(rand() * 500)}`;
      const r = rand();
      if (r < 0.45) {
        const at = now + Math.floor(rand() * 1000);
        t.schedule(id, at);
        model.set(id, at);
      } else if (r < 0.6) {
        expect(t.cancel(id)).toBe(model.delete(id));
      } else if (r < 0.75) {
        const at = now + Math.floor(rand() * 1000);
        expect(t.reschedule(id, at)).toBe(model.has(id));
        if (model.has(id)) model.set(id, at);
      } else {
        now += Math.floor(rand() * 50);
        const due = t.popDue(now);
        const times = due.map((d) => model.get(d)!);
        for (const d of due) expect(model.get(d)!).toBeLessThanOrEqual(now);
        expect(times).toEqual([...times].sort((a, b) => a - b));
        for (const d of due) model.delete(d);
        for (const at of model.values()) if (at <= now) expect.fail(`${at} was due at ${now} but not popped`);
      }
      if (t.size !== model.size) expect.fail(`size ${t.size}, expected ${model.size}`);
      let min = Infinity;
      for (const at of model.values()) min = Math.min(min, at);
      if ((t.peek()?.atMs ?? Infinity) !== min) expect.fail(`peek ${t.peek()?.atMs}, expected ${min}`);
    }
  });
});

describe('Alarm', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps one timer for the earliest time it was asked for', () => {
    vi.useFakeTimers();
    const fired: number[] = [];
    const alarm = new Alarm(() => fired.push(Date.now()));
    const start = Date.now();
    alarm.set(start + 1000, start);
    alarm.set(start + 5000, start); // later: the armed timer covers it
    expect(alarm.armedAt).toBe(start + 1000);
    alarm.set(start + 500, start); // earlier: re-armed
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(499);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([start + 500]);
    expect(alarm.armedAt).toBeUndefined();
    vi.advanceTimersByTime(10_000);
    expect(fired).toHaveLength(1);
  });

  it('caps the delay at 2^31-1 ms instead of firing at once', () => {
    vi.useFakeTimers();
    let fired = 0;
    const alarm = new Alarm(() => fired++);
    alarm.set(Date.now() + 10 * MAX_TIMER_DELAY_MS, Date.now());
    vi.advanceTimersByTime(MAX_TIMER_DELAY_MS - 1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
  });

  it('fires at once for a time already past, and can be cleared', () => {
    vi.useFakeTimers();
    let fired = 0;
    const alarm = new Alarm(() => fired++);
    alarm.set(Date.now() - 50, Date.now());
    vi.advanceTimersByTime(0);
    expect(fired).toBe(1);
    alarm.set(Date.now() + 10, Date.now());
    alarm.clear();
    vi.advanceTimersByTime(100);
    expect(fired).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not keep the process alive', () => {
    const alarm = new Alarm(() => undefined);
    alarm.set(Date.now() + 60_000, Date.now());
    const timer = (alarm as unknown as { timer: NodeJS.Timeout }).timer;
    expect(timer.hasRef()).toBe(false);
    alarm.clear();
  });
});
