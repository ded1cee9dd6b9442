// Deadlines for many ids with one timer: a binary min-heap keyed by time (ties
// in scheduling order) with an id -> position map, so schedule, cancel and
// reschedule are O(log n); and an Alarm that keeps a single setTimeout armed
// for the earliest deadline.

interface Slot {
  id: string;
  atMs: number;
  /** Scheduling order, so equal times pop first-in first-out. */
  seq: number;
}

export class TimerIndex {
  private readonly heap: Slot[] = [];
  private readonly positions = new Map<string, number>();
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  has(id: string): boolean {
    return this.positions.has(id);
  }

  /** When `id` is due, or undefined if it is not scheduled. */
  timeOf(id: string): number | undefined {
    const i = this.positions.get(id);
    return i === undefined ? undefined : this.heap[i].atMs;
  }

  /** Schedules `id` at `atMs`, moving it if it is already scheduled. */
  schedule(id: string, atMs: number): void {
    if (Number.isNaN(atMs)) throw new RangeError(`invalid time for ${id}: NaN`);
    const i = this.positions.get(id);
    if (i !== undefined) {
      this.move(i, atMs);
      return;
    }
    const slot: Slot = { id, atMs, seq: this.seq++ };
    this.heap.push(slot);
    this.positions.set(id, this.heap.length - 1);
    this.up(this.heap.length - 1);
  }

  /** Moves a scheduled `id` to `atMs`; returns false (and does nothing) if it is not scheduled. */
  reschedule(id: string, atMs: number): boolean {
    if (Number.isNaN(atMs)) throw new RangeError(`invalid time for ${id}: NaN`);
    const i = this.positions.get(id);
    if (i === undefined) return false;
    this.move(i, atMs);
    return true;
  }

  /** Removes `id`; returns false if it was not scheduled. */
  cancel(id: string): boolean {
    const i = this.positions.get(id);
    if (i === undefined) return false;
    this.removeAt(i);
    return true;
  }

  /** The earliest entry, without removing it. */
  peek(): { id: string; atMs: number } | undefined {
    const top = this.heap[0];
    return top === undefined ? undefined : { id: top.id, atMs: top.atMs };
  }

  /** Removes and returns, earliest first, every id due at or before `nowMs`. */
  popDue(nowMs: number): string[] {
    const due: string[] = [];
    while (this.heap.length > 0 && this.heap[0].atMs <= nowMs) {
      due.push(this.heap[0].id);
      this.removeAt(0);
    }
    return due;
  }

  clear(): void {
    this.heap.length = 0;
    this.positions.clear();
  }

  private move(i: number, atMs: number): void {
    const slot = this.heap[i];
    slot.atMs = atMs;
    slot.seq = this.seq++;
    // Only one of these moves it; the other finds it already in place.
    this.up(i);
    this.down(this.positions.get(slot.id)!);
  }

  private removeAt(i: number): void {
    const last = this.heap.pop()!;
    this.positions.delete(this.heap.length === i ? last.id : this.heap[i].id);
    if (i === this.heap.length) return;
    this.heap[i] = last;
    this.positions.set(last.id, i);
    this.up(i);
    this.down(this.positions.get(last.id)!);
  }

  private less(a: Slot, b: Slot): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private up(i: number): void {
    const slot = this.heap[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = this.heap[parent];
      if (!this.less(slot, p)) break;
      this.heap[i] = p;
      this.positions.set(p.id, i);
      i = parent;
    }
    this.heap[i] = slot;
    this.positions.set(slot.id, i);
  }

  private down(i: number): void {
    const n = this.heap.length;
    const slot = this.heap[i];
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.less(this.heap[right], this.heap[left]) ? right : left;
      const c = this.heap[child];
      if (!this.less(c, slot)) break;
      this.heap[i] = c;
      this.positions.set(c.id, i);
      i = child;
    }
    this.heap[i] = slot;
    this.positions.set(slot.id, i);
  }
}

/** setTimeout's largest delay; a longer one would fire at once. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * One timer for the earliest of many deadlines. `set` arms it for a time if
 * that is earlier than what it is armed for; when it fires, the owner handles
 * what is due and calls `set` with its next deadline. Delays are capped at
 * MAX_TIMER_DELAY_MS (the owner then finds nothing due and sets it again), and
 * the timer is unref'd so it never keeps the process alive.
 */
export class Alarm {
  private timer: NodeJS.Timeout | null = null;
  private armedAtMs = Infinity;
  private readonly onFire: () => void;

  constructor(onFire: () => void) {
    this.onFire = onFire;
  }

  /** The time the timer is armed for, or undefined when idle. */
  get armedAt(): number | undefined {
    return this.timer === null ? undefined : this.armedAtMs;
  }

  /** Makes sure the alarm fires no later than `atMs` (`nowMs` is the current time on the same clock). */
  set(atMs: number, nowMs: number): void {
    if (this.timer !== null && this.armedAtMs <= atMs) return;
    this.clear();
    const delay = Math.min(Math.max(0, atMs - nowMs), MAX_TIMER_DELAY_MS);
    this.armedAtMs = atMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedAtMs = Infinity;
      this.onFire();
    }, delay);
    this.timer.unref();
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedAtMs = Infinity;
  }
}
