// The issuer's published keys, as the PEP holds them: fetched once, kept, and
// fetched again when a token names a kid the set does not hold, at most once
// per cooldown however many such tokens arrive (a burst of forged kids costs
// one request). The algorithms a token may use are the ones the set publishes.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { fetchDocument, type FetchLike } from './fetch.ts';

export interface PublishedKey {
  kid: string;
  alg: string;
  key: KeyObject;
}

/** Algorithms the PEP verifies at all; a published key of another kind is skipped. */
const VERIFIABLE = new Set(['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);

export class KeySet {
  private readonly uri: string;
  private readonly fetchFn: FetchLike;
  private readonly clock: () => number;
  private readonly cooldownMs: number;
  private keys = new Map<string, PublishedKey>();
  private etag: string | undefined;
  private lastFetchMs = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;
  /** Requests made for the set (tests and the bench read it). */
  fetches = 0;
  /** Called with the kids that are no longer published after a refetch. */
  onRemoved: (kids: string[]) => void = () => undefined;

  private readonly maxAgeMs: number;

  constructor(options: { uri: string; fetch: FetchLike; clock: () => number; cooldownMs: number; maxAgeMs: number }) {
    this.uri = options.uri;
    this.fetchFn = options.fetch;
    this.clock = options.clock;
    this.cooldownMs = options.cooldownMs;
    this.maxAgeMs = options.maxAgeMs;
  }

  /** The key held for a kid now, without fetching (a remembered token checks its key is still published). */
  current(kid: string): PublishedKey | undefined {
    return this.keys.get(kid);
  }

  /**
   * Fetches the set again in the background once it is older than maxAge: a
   * key the issuer stopped publishing stops verifying within that long, even
   * while every token names a kid the set holds.
   */
  touch(): void {
    if (this.keys.size > 0 && this.clock() - this.lastFetchMs >= this.maxAgeMs) this.refresh().catch(() => undefined);
  }

  /** The published algorithms (what a token's alg must be one of). */
  algorithms(): Set<string> {
    return new Set([...this.keys.values()].map((k) => k.alg));
  }

  /**
   * The key for a kid. An unknown kid fetches the set again unless it was
   * fetched within the cooldown; concurrent callers share one fetch. A fetch
   * that fails leaves the held keys in place (and throws only when none are held).
   */
  async key(kid: string): Promise<PublishedKey | null> {
    const held = this.keys.get(kid);
    if (held) return held;
    if (this.clock() - this.lastFetchMs < this.cooldownMs) {
      if (this.inflight) await this.inflight.catch(() => undefined);
      return this.keys.get(kid) ?? null;
    }
    await this.refresh().catch((err) => {
      if (this.keys.size === 0) throw err;
    });
    return this.keys.get(kid) ?? null;
  }

  /** Fetches the set now (one at a time). */
  refresh(): Promise<void> {
    if (!this.inflight) {
      this.lastFetchMs = this.clock();
      this.fetches++;
      this.inflight = this.load().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async load(): Promise<void> {
    const fetched = await fetchDocument(this.fetchFn, this.uri, { etag: this.etag, accept: 'application/jwk-set+json, application/json' });
    if (fetched.status === 'unchanged') return;
    let doc: unknown;
    try {
      doc = JSON.parse(fetched.body);
    } catch {
      throw new Error(`GET ${this.uri} answered a body that is not JSON`);
    }
    const list = (doc as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list)) throw new Error(`GET ${this.uri} answered no "keys" array`);
    const next = new Map<string, PublishedKey>();
    for (const jwk of list) {
      if (jwk === null || typeof jwk !== 'object') continue;
      const { kid, alg, use } = jwk as { kid?: unknown; alg?: unknown; use?: unknown };
      // A key must name its kid and alg (tvm's always do): the alg pins what a token may use.
      if (typeof kid !== 'string' || typeof alg !== 'string' || !VERIFIABLE.has(alg)) continue;
      if (use !== undefined && use !== 'sig') continue;
      if ('d' in jwk || 'k' in jwk) continue; // never a private or symmetric key
      try {
        next.set(kid, { kid, alg, key: createPublicKey({ key: jwk as never, format: 'jwk' }) });
      } catch {
        // A key this runtime cannot read verifies nothing.
      }
    }
    const removed = [...this.keys.keys()].filter((kid) => !next.has(kid));
    this.keys = next;
    this.etag = fetched.etag;
    if (removed.length > 0) this.onRemoved(removed);
  }
}
