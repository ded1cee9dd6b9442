// The token status list (IETF draft-ietf-oauth-status-list): every token names
// an index in a list (`status.status_list {idx, uri}`); revoking the token sets
// its bit; the list is served as a signed JWT (typ statuslist+jwt) whose
// `status_list.lst` is the bit array, one bit per token (index 0 is the least
// significant bit of byte 0), ZLIB-compressed, base64url.
//
// Indices are never handed out twice. A list holds LIST_SIZE indices; each
// start of the engine claims a fresh run of lists with one write to its own
// storage (`status/alloc`) before it serves, and hands out indices from memory,
// so issuing costs no extra write. A run is claimed again only when it is used
// up (a million tokens). The bits themselves are not stored: they are the
// revocation entries that carry a status reference (revocations.ts), so a
// revoke stays one write and a pruned entry (its token expired) clears its bit.

import { deflateSync } from 'node:zlib';
import { SignJWT } from 'jose';
import { getJson, putJson } from '../sdk/storage.ts';
import type { Clock, Storage } from '../sdk/logical.ts';
import type { EffectiveConfig } from './config.ts';
import type { KeyRing } from './keys.ts';

export const STATUS_ALLOC_KEY = 'status/alloc';
export const STATUS_LIST_TYP = 'statuslist+jwt';
/** Indices per list: 8 KiB of bits, a few dozen bytes compressed while few are revoked. */
export const LIST_SIZE = 65_536;
/** Lists claimed per start (or when a run is used up). */
const LISTS_PER_CLAIM = 16;

/** Where a token's status is: list number and index in it. */
export interface StatusRef {
  list: number;
  idx: number;
}

/** What a push subscriber hears: a list changed (its version), never more. */
export interface StatusEvent {
  list: number;
  idx: number;
  version: number;
}

interface Alloc {
  /** The first list not claimed yet by any start. */
  next_list: number;
}

interface Signed {
  key: string;
  jwt: string;
  iatS: number;
}

export function statusUri(issuer: string, list: number): string {
  return `${issuer}/status/${list}`;
}

/** Packs the indices into the draft's bit array (LSB first) and compresses it. */
export function encodeBits(indices: Iterable<number>, size = LIST_SIZE): string {
  const bytes = new Uint8Array(size / 8);
  for (const i of indices) if (i >= 0 && i < size) bytes[i >> 3] |= 1 << (i & 7);
  return deflateSync(bytes, { level: 9 }).toString('base64url');
}

export class StatusLists {
  private readonly clock: Clock;
  /** The run this start claimed: lists [from, to), handing out `list`/`idx` next. */
  private run: { to: number; list: number; idx: number } | null = null;
  private claiming: Promise<void> | null = null;
  private readonly signed = new Map<number, Signed>();
  private readonly listeners = new Set<(event: StatusEvent) => void>();

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Claims a run of lists for this start: one write, before the first token. */
  async claim(storage: Storage): Promise<void> {
    if (!this.claiming) {
      this.claiming = (async () => {
        const alloc = (await getJson<Alloc>(storage, STATUS_ALLOC_KEY)) ?? { next_list: 0 };
        // Never behind what this start already holds, even if its last claim's write was undone.
        const from = Math.max(alloc.next_list, this.run?.to ?? 0);
        await putJson(storage, STATUS_ALLOC_KEY, { next_list: from + LISTS_PER_CLAIM });
        this.run = { to: from + LISTS_PER_CLAIM, list: from, idx: 0 };
      })().finally(() => {
        this.claiming = null;
      });
    }
    return this.claiming;
  }

  /** The next unused index (claims a new run when this one is used up). */
  async allocate(storage: Storage): Promise<StatusRef> {
    for (;;) {
      const run = this.run;
      if (run && run.list < run.to) {
        const ref = { list: run.list, idx: run.idx };
        run.idx++;
        if (run.idx === LIST_SIZE) {
          run.list++;
          run.idx = 0;
        }
        return ref;
      }
      await this.claim(storage);
    }
  }

  /** Whether a list was ever claimed (a later one is not found). */
  async exists(storage: Storage, list: number): Promise<boolean> {
    if (this.run && list < this.run.to) return true;
    const alloc = await getJson<Alloc>(storage, STATUS_ALLOC_KEY);
    return list < (alloc?.next_list ?? 0);
  }

  /**
   * The list as a signed status list token. Signed again when the revocations
   * changed, the key or issuer changed, or half its ttl has passed, so a
   * fetcher always gets at least half a ttl of validity.
   */
  async token(
    storage: Storage,
    config: EffectiveConfig,
    keys: KeyRing,
    list: number,
    revoked: { version: number; indices: number[] },
  ): Promise<string> {
    const { version, indices } = revoked;
    const key = await keys.signingKey(storage, config);
    const ttlS = config.status_list_ttl;
    const cacheKey = `${version}|${key.kid}|${config.issuer}|${ttlS}`;
    const nowS = Math.floor(this.clock() / 1000);
    const cached = this.signed.get(list);
    if (cached && cached.key === cacheKey && nowS - cached.iatS < ttlS / 2) return cached.jwt;
    const iatS = nowS;
    const uri = statusUri(config.issuer, list);
    const jwt = await new SignJWT({ ttl: ttlS, status_list: { bits: 1, lst: encodeBits(indices) } })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: STATUS_LIST_TYP })
      .setIssuer(config.issuer)
      .setSubject(uri)
      .setIssuedAt(iatS)
      .setExpirationTime(iatS + ttlS)
      .sign(key.privateKey);
    if (this.signed.size > 1024) this.signed.clear();
    this.signed.set(list, { key: cacheKey, jwt, iatS });
    return jwt;
  }

  /** Tells push subscribers that a list changed. */
  notify(event: StatusEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A subscriber's failure is its own.
      }
    }
  }

  subscribe(listener: (event: StatusEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /** Storage changed underneath (another node): signed copies are stale; the claimed run stays ours. */
  invalidate(): void {
    this.signed.clear();
  }
}
