// The revocation list: jti of revoked tokens, each kept until the last moment
// its token could still be valid, with a version so verifiers can poll deltas.

import { deleteKey, getJson, listKeys, putJson } from '../sdk/storage.ts';
import type { Storage } from '../sdk/logical.ts';
import { StoredRecordCache } from './cache.ts';
import type { StatusRef } from './status.ts';

export const REVOCATION_META_KEY = 'revocations/meta';
/**
 * How long an entry outlives its token's exp: the most clock skew a verifier
 * may allow on exp (the PEP's clockToleranceS is at most this). A verifier
 * with skew still accepts a token that long after its exp, so its revocation
 * (and its status list bit) must still be there.
 */
export const REVOCATION_GRACE_S = 300;
export const REVOCATION_ENTRY_PREFIX = 'revocations/entries/';

export interface RevocationEntry {
  jti: string;
  /** Seconds since the epoch after which the token is expired anyway. */
  exp: number;
  /** The list's version when the entry was added. */
  version: number;
  /** The token's place in a status list (status.ts); absent for tokens issued before status lists. */
  status?: StatusRef;
}

interface Loaded {
  version: number;
  entries: Map<string, RevocationEntry>;
}

export class RevocationList extends StoredRecordCache<Loaded> {
  private loading: Promise<Loaded> | null = null;

  override invalidate(): void {
    super.invalidate();
    this.loading = null;
  }

  async isRevoked(storage: Storage, jti: string): Promise<boolean> {
    const { entries } = await this.load(storage);
    return entries.has(jti);
  }

  /** Adds a jti until `expMs`; a second add of the same jti keeps the later expiry. */
  async add(storage: Storage, jti: string, expMs: number, status?: StatusRef): Promise<RevocationEntry> {
    return this.exclusive(async () => {
      const loaded = await this.load(storage);
      const exp = Math.ceil(expMs / 1000);
      const existing = loaded.entries.get(jti);
      if (existing && existing.exp >= exp) return existing;
      const version = loaded.version + 1;
      const entry: RevocationEntry = { jti, exp, version, ...(status ? { status } : {}) };
      // The entry carries its version, so the list's version is known from the
      // entries even if the meta write is lost (a crash between the two, or a
      // storage without transactions): no version is ever handed out twice.
      await putJson(storage, REVOCATION_ENTRY_PREFIX + jti, entry);
      await putJson(storage, REVOCATION_META_KEY, { version });
      loaded.version = version;
      loaded.entries.set(jti, entry);
      return entry;
    });
  }

  /** Live entries newer than `since` (all when since is 0), oldest first. */
  async list(storage: Storage, since: number): Promise<{ version: number; revoked: Array<{ jti: string; exp: number }> }> {
    const { version, entries } = await this.load(storage);
    const nowS = this.clock() / 1000;
    const revoked = [...entries.values()]
      .filter((e) => e.version > since && e.exp + REVOCATION_GRACE_S > nowS)
      .sort((a, b) => a.version - b.version)
      .map((e) => ({ jti: e.jti, exp: e.exp }));
    return { version, revoked };
  }

  /** The indices of one status list whose tokens are revoked and not expired, with the list's version. */
  async indicesOf(storage: Storage, list: number): Promise<{ version: number; indices: number[] }> {
    const { version, entries } = await this.load(storage);
    const nowS = this.clock() / 1000;
    const indices: number[] = [];
    for (const e of entries.values()) if (e.status?.list === list && e.exp + REVOCATION_GRACE_S > nowS) indices.push(e.status.idx);
    return { version, indices };
  }

  /** Removes entries whose tokens have expired anyway. */
  async prune(storage: Storage): Promise<number> {
    return this.exclusive(async () => {
      const loaded = await this.load(storage);
      const nowS = this.clock() / 1000;
      let removed = 0;
      const stale = [...loaded.entries.values()].filter((e) => e.exp + REVOCATION_GRACE_S <= nowS);
      // The version is known from the entries; before any goes, the meta record holds it.
      if (stale.length > 0) await putJson(storage, REVOCATION_META_KEY, { version: loaded.version });
      for (const entry of stale) {
        if (entry.exp + REVOCATION_GRACE_S <= nowS) {
          await deleteKey(storage, REVOCATION_ENTRY_PREFIX + entry.jti);
          loaded.entries.delete(entry.jti);
          removed++;
        }
      }
      return removed;
    });
  }

  private load(storage: Storage): Promise<Loaded> {
    if (this.loaded) return Promise.resolve(this.loaded);
    if (!this.loading) {
      let loading: Promise<Loaded> | null = null;
      loading = (async () => {
        const meta = await getJson<{ version: number }>(storage, REVOCATION_META_KEY);
        const entries = new Map<string, RevocationEntry>();
        let version = meta?.version ?? 0;
        for (const key of await listKeys(storage, REVOCATION_ENTRY_PREFIX)) {
          const entry = await getJson<RevocationEntry>(storage, REVOCATION_ENTRY_PREFIX + key);
          if (!entry) continue;
          entries.set(entry.jti, entry);
          if (entry.version > version) version = entry.version;
        }
        const loaded = { version, entries };
        if (this.loading === loading) {
          this.loaded = loaded;
          this.loading = null;
        }
        return loaded;
      })();
      this.loading = loading;
    }
    return this.loading;
  }
}
