// Revocation as the PEP reads it: the signed status lists tokens name
// (IETF Token Status List), held in memory, refreshed by polling with ETag
// revalidation and, optionally, at once when the issuer's push stream
// (server-sent events) says a list changed. The event only says *when*; what
// is revoked is always read from the signed list. A list that cannot be
// refreshed past its own exp is not trusted any more: the PEP fails closed
// (unless configured to fail open).

import { inflateSync } from 'node:zlib';
import { compactVerify } from 'jose';
import { fetchDocument, type FetchLike } from './fetch.ts';
import type { KeySet } from './jwks.ts';

export const STATUS_LIST_TYP = 'statuslist+jwt';
/** Push stream reconnects: never sooner than this, whatever the stream asks, and never later than the longest wait. */
const MIN_RETRY_MS = 1000;
const MAX_RETRY_MS = 5000;
/** The largest list inflated (bits): bounds what a hostile list can cost. */
const MAX_LIST_BYTES = 4 << 20;

interface HeldList {
  /** The signed list as fetched: a list of the same iat is accepted again only byte for byte. */
  jwt: string;
  bits: number;
  bytes: Uint8Array;
  iatS: number;
  expS: number;
  etag?: string;
  /** Last time a token named it: lists no live token names are dropped. */
  usedMs: number;
}

export type StatusAnswer =
  | { state: 'valid' }
  | { state: 'revoked'; value: number }
  /** The verified list has no such index: the token's status claim is wrong, whatever is reachable. */
  | { state: 'invalid'; reason: string }
  | { state: 'unavailable'; reason: string };

export interface StatusClientOptions {
  fetch: FetchLike;
  keys: KeySet;
  issuer: string;
  clock: () => number;
  pollMs: number;
  /** Set: subscribe to this push stream URL. */
  pushUrl?: string;
  /** A list unused this long is dropped. */
  idleMs?: number;
  /** Clock skew allowed on a list's exp (ms), as on a token's. */
  toleranceMs?: number;
}

export class StatusClient {
  private readonly options: StatusClientOptions;
  private readonly lists = new Map<string, HeldList>();
  private readonly inflight = new Map<string, Promise<void>>();
  /** Lists asked to refresh while a fetch of them was in flight: fetched once more after it. */
  private readonly again = new Set<string>();
  private poller: NodeJS.Timeout | null = null;
  private push: AbortController | null = null;
  private pushRetry: NodeJS.Timeout | null = null;
  private closed = false;
  private lastVersion: number | null = null;
  /** The wait before the next push reconnect (grows while streams end at once). */
  private pushBackoffMs = MIN_RETRY_MS / 2;
  /** Status list requests made (tests and the bench read it). */
  fetches = 0;
  /** Last refresh failure, for logs; never a token. */
  lastError: string | null = null;

  constructor(options: StatusClientOptions) {
    this.options = options;
    this.poller = setInterval(() => this.poll(), options.pollMs);
    this.poller.unref();
    if (options.pushUrl) this.subscribe(options.pushUrl);
  }

  /** The status of index `idx` in the list at `uri` (fetched on first use). */
  async status(uri: string, idx: number): Promise<StatusAnswer> {
    let held = this.lists.get(uri);
    if (!held) {
      await this.refresh(uri).catch(() => undefined);
      held = this.lists.get(uri);
      if (!held) return { state: 'unavailable', reason: `status list ${uri} could not be fetched${this.lastError ? `: ${this.lastError}` : ''}` };
    }
    held.usedMs = this.options.clock();
    if (held.expS * 1000 + (this.options.toleranceMs ?? 0) <= this.options.clock()) {
      return { state: 'unavailable', reason: `status list ${uri} expired at ${new Date(held.expS * 1000).toISOString()} and could not be refreshed` };
    }
    const perByte = 8 / held.bits;
    const byte = Math.floor(idx / perByte);
    if (byte >= held.bytes.length) return { state: 'invalid', reason: `index ${idx} is beyond status list ${uri}` };
    const value = (held.bytes[byte] >> ((idx % perByte) * held.bits)) & ((1 << held.bits) - 1);
    return value === 0 ? { state: 'valid' } : { state: 'revoked', value };
  }

  /** Fetches a list again (one request per list at a time; asks made meanwhile run once more after it). */
  refresh(uri: string): Promise<void> {
    const inflight = this.inflight.get(uri);
    if (inflight) {
      this.again.add(uri);
      return inflight;
    }
    const run = (async () => {
      try {
        await this.load(uri);
        this.lastError = null;
      } catch (err) {
        this.lastError = (err as Error).message;
        throw err;
      } finally {
        this.inflight.delete(uri);
      }
      if (this.again.delete(uri)) await this.refresh(uri);
    })();
    this.inflight.set(uri, run);
    return run;
  }

  private async load(uri: string): Promise<void> {
    const held = this.lists.get(uri);
    this.fetches++;
    const fetched = await fetchDocument(this.options.fetch, uri, { etag: held?.etag, accept: `application/${STATUS_LIST_TYP}` });
    if (fetched.status === 'unchanged') {
      // Same bytes as held: still the signed list we verified; its exp stands.
      return;
    }
    const jwt = fetched.body.trim();
    const parsed = await this.verify(uri, jwt);
    // Never back: an older list replayed would undo a revocation.
    if (held && parsed.iatS < held.iatS) throw new Error(`status list ${uri} is older than the one held (iat ${parsed.iatS})`);
    if (held && parsed.iatS === held.iatS && jwt !== held.jwt) {
      // Two lists of the same second cannot be ordered: keep every bit either
      // sets (bits are set by revocation and cleared only long after the
      // token expired), so a replayed one can never clear a revocation.
      const merged = new Uint8Array(Math.max(parsed.bytes.length, held.bytes.length));
      merged.set(held.bytes);
      for (let i = 0; i < parsed.bytes.length; i++) merged[i] |= parsed.bytes[i];
      parsed.bytes = merged;
    }
    this.lists.set(uri, {
      jwt,
      ...parsed,
      ...(fetched.etag ? { etag: fetched.etag } : {}),
      usedMs: held?.usedMs ?? this.options.clock(),
    });
  }

  /** Verifies a status list token: the issuer's key, typ, sub = its URI, exp, and a well-formed list. */
  private async verify(uri: string, jwt: string): Promise<{ bits: number; bytes: Uint8Array; iatS: number; expS: number }> {
    const [headerPart] = jwt.split('.');
    let header: { kid?: unknown; alg?: unknown; typ?: unknown };
    try {
      header = JSON.parse(Buffer.from(headerPart ?? '', 'base64url').toString('utf8'));
    } catch {
      throw new Error(`status list ${uri} is not a JWT`);
    }
    if (header?.typ !== STATUS_LIST_TYP) throw new Error(`status list ${uri} has typ ${JSON.stringify(header?.typ)}, not ${STATUS_LIST_TYP}`);
    if (typeof header.kid !== 'string') throw new Error(`status list ${uri} names no kid`);
    const key = await this.options.keys.key(header.kid);
    if (!key || key.alg !== header.alg) throw new Error(`status list ${uri} is signed by a key the issuer does not publish`);
    let payload: Record<string, unknown>;
    try {
      const verified = await compactVerify(jwt, key.key, { algorithms: [key.alg] });
      payload = JSON.parse(new TextDecoder().decode(verified.payload));
    } catch {
      throw new Error(`status list ${uri}: signature verification failed`);
    }
    if (payload.sub !== uri) throw new Error(`status list ${uri} is for ${JSON.stringify(payload.sub)}`);
    if (payload.iss !== undefined && payload.iss !== this.options.issuer) throw new Error(`status list ${uri} has another issuer`);
    const iatS = payload.iat;
    const expS = payload.exp;
    if (typeof iatS !== 'number' || typeof expS !== 'number') throw new Error(`status list ${uri} lacks iat or exp`);
    if (expS * 1000 + (this.options.toleranceMs ?? 0) <= this.options.clock()) throw new Error(`status list ${uri} is expired`);
    const list = payload.status_list as { bits?: unknown; lst?: unknown } | undefined;
    const bits = list?.bits;
    if (bits !== 1 && bits !== 2 && bits !== 4 && bits !== 8) throw new Error(`status list ${uri} has bits ${JSON.stringify(bits)}`);
    if (typeof list?.lst !== 'string') throw new Error(`status list ${uri} has no lst`);
    let bytes: Uint8Array;
    try {
      bytes = inflateSync(Buffer.from(list.lst, 'base64url'), { maxOutputLength: MAX_LIST_BYTES });
    } catch {
      throw new Error(`status list ${uri}: lst is not a ZLIB stream of at most ${MAX_LIST_BYTES} bytes`);
    }
    return { bits, bytes, iatS, expS };
  }

  private poll(): void {
    const now = this.options.clock();
    const idleMs = this.options.idleMs ?? 30 * 60_000;
    for (const [uri, held] of this.lists) {
      if (now - held.usedMs > idleMs) {
        this.lists.delete(uri);
        continue;
      }
      this.refresh(uri).catch(() => undefined);
    }
  }

  /** The push stream: an event names a changed list; the list is fetched again. Reconnects after the stream's retry. */
  private subscribe(url: string): void {
    if (this.closed) return;
    const controller = new AbortController();
    this.push = controller;
    const opened = Date.now();
    let retryMs = MIN_RETRY_MS;
    const reconnect = (): void => {
      if (this.closed) return;
      // A stream that ends at once (a server that cannot hold it open, or one
      // that fails) is retried ever more slowly, up to MAX_RETRY_MS; one that
      // lasted starts again from the stream's own retry.
      this.pushBackoffMs = Date.now() - opened < 2000 ? Math.min(MAX_RETRY_MS, Math.max(retryMs, this.pushBackoffMs * 2)) : retryMs;
      this.pushRetry = setTimeout(() => this.subscribe(url), this.pushBackoffMs);
      this.pushRetry.unref();
    };
    void (async () => {
      try {
        const response = await this.options.fetch(url, { headers: { accept: 'text/event-stream' }, signal: controller.signal });
        if (response.status !== 200 || !response.body) {
          await response.body?.cancel();
          throw new Error(`GET ${url} answered ${response.status}`);
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          if (buffer.length > 1 << 20) throw new Error('push stream event too large');
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const retry = this.onEvent(block);
            if (retry !== null) retryMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, retry));
          }
        }
      } catch {
        // Reconnect below; polling covers the gap.
      }
      reconnect();
    })();
  }

  /** Handles one event block; returns a retry the stream asked for, if any. */
  private onEvent(block: string): number | null {
    let event = 'message';
    let data = '';
    let retry: number | null = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data += value;
      else if (field === 'retry' && /^\d{1,6}$/.test(value)) retry = Number(value);
    }
    let version: number | null = null;
    let list: number | null = null;
    try {
      const parsed = JSON.parse(data || 'null') as { version?: unknown; list?: unknown } | null;
      if (typeof parsed?.version === 'number') version = parsed.version;
      if (typeof parsed?.list === 'number') list = parsed.list;
    } catch {
      return retry;
    }
    if (event === 'revoked' && list !== null) {
      const uri = `${this.options.issuer}/status/${list}`;
      if (this.lists.has(uri)) this.refresh(uri).catch(() => undefined);
    } else if (event === 'hello' && version !== null && this.lastVersion !== null && version !== this.lastVersion) {
      // Reconnected after missing events: every held list again.
      for (const uri of this.lists.keys()) this.refresh(uri).catch(() => undefined);
    }
    if (version !== null) this.lastVersion = version;
    return retry;
  }

  close(): void {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    if (this.pushRetry) clearTimeout(this.pushRetry);
    this.push?.abort();
  }
}
