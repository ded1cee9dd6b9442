// What the broker learns of its tokens' use: the PEPs' usage events (POST
// /v1/usage), kept in memory for the console (last use and its address, the
// recent uses of each token, the rules that fired on it) and run through the
// anomaly rules of its config. Bounded: the oldest tokens go first.

import type { UsageEvent } from '../pep/types.ts';
import type { FiringOutcome } from '../watch/watcher.ts';

const MAX_TOKENS = 20_000;
const RECENT_PER_TOKEN = 20;
/** Events held in all: with each field bounded at /v1/usage (a few hundred bytes), a few tens of MB at most. */
const MAX_EVENTS = 60_000;
const SERIES_MINUTES = 24 * 60;

export interface SeriesPoint {
  minute: number;
  issued: number;
  renewed: number;
  revoked: number;
}

export class UsageBook {
  private readonly byJti = new Map<string, { recent: UsageEvent[]; firings: FiringOutcome[] }>();
  private held = 0;
  private readonly series = new Map<number, SeriesPoint>();

  record(event: UsageEvent): void {
    if (!event.jti) return;
    const entry = this.entry(event.jti);
    entry.recent.push(event);
    this.held++;
    if (entry.recent.length > RECENT_PER_TOKEN) {
      entry.recent.shift();
      this.held--;
    }
    // Over budget: the tokens least recently heard of go first.
    while (this.held > MAX_EVENTS) this.evictOldest();
  }

  private evictOldest(): void {
    const oldest = this.byJti.keys().next().value as string | undefined;
    if (oldest === undefined) return;
    this.held -= this.byJti.get(oldest)!.recent.length;
    this.byJti.delete(oldest);
  }

  fired(f: FiringOutcome): void {
    this.entry(f.jti).firings.push(f);
  }

  lastUse(jti: string | null): UsageEvent | undefined {
    if (!jti) return undefined;
    const recent = this.byJti.get(jti)?.recent;
    return recent?.[recent.length - 1];
  }

  recent(jti: string): UsageEvent[] {
    return [...(this.byJti.get(jti)?.recent ?? [])];
  }

  firings(jti: string | null): FiringOutcome[] {
    return jti ? [...(this.byJti.get(jti)?.firings ?? [])] : [];
  }

  /** Counts issues, renewals and revocations by minute, for the console's chart. */
  count(kind: 'issued' | 'renewed' | 'revoked', atMs: number): void {
    const minute = Math.floor(atMs / 60_000);
    let p = this.series.get(minute);
    if (!p) {
      p = { minute, issued: 0, renewed: 0, revoked: 0 };
      this.series.set(minute, p);
      for (const m of this.series.keys()) if (m < minute - SERIES_MINUTES) this.series.delete(m);
    }
    p[kind]++;
  }

  /** The last `minutes` minutes up to `nowMs`, one point each (zeros included). */
  points(nowMs: number, minutes: number): SeriesPoint[] {
    const last = Math.floor(nowMs / 60_000);
    const out: SeriesPoint[] = [];
    for (let m = last - minutes + 1; m <= last; m++) out.push(this.series.get(m) ?? { minute: m, issued: 0, renewed: 0, revoked: 0 });
    return out;
  }

  private entry(jti: string) {
    let e = this.byJti.get(jti);
    if (e) {
      this.byJti.delete(jti);
    } else {
      e = { recent: [], firings: [] };
      if (this.byJti.size >= MAX_TOKENS) this.evictOldest();
    }
    this.byJti.set(jti, e);
    return e;
  }
}
