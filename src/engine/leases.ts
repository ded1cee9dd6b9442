// Active leases per role: what max_active_leases counts, and the latest
// expiry of each lease's token (which revocation needs).

import type { StatusRef } from './status.ts';
import { KeyedMutex, deleteKey, getJson, listKeys, putJson } from '../sdk/storage.ts';
import type { Storage } from '../sdk/logical.ts';

export const LEASE_PREFIX = 'leases/';

export interface ActiveLease {
  /** Expiry of the lease's newest token (ms). */
  exp_ms: number;
  /** The lease can never outlive this (ms): issue time plus max ttl. */
  max_exp_ms: number;
  /**
   * Who obtained the lease (`entity:<id>` or `accessor:<token accessor>`): the
   * only caller who may fetch the tokens its renewals sign.
   */
  holder?: string;
  /** The token's place in a status list, so a revocation by jti (revoke) can set its bit. */
  status?: StatusRef;
}

/** How long past its newest token's expiry a record is kept before tidying removes it. */
const TIDY_GRACE_MS = 60_000;

export class ActiveLeases {
  private readonly byRole = new Map<string, Map<string, ActiveLease>>();
  /** Serialises count-then-add per role, so concurrent issues cannot overshoot the limit. */
  readonly mutex = new KeyedMutex();

  invalidate(key: string): void {
    const rest = key.slice(LEASE_PREFIX.length);
    const role = rest.split('/')[0];
    this.byRole.delete(role);
  }

  async get(storage: Storage, role: string, jti: string): Promise<ActiveLease | null> {
    return (await this.load(storage, role)).get(jti) ?? null;
  }

  async countLive(storage: Storage, role: string, nowMs: number): Promise<number> {
    let n = 0;
    for (const lease of (await this.load(storage, role)).values()) if (lease.exp_ms > nowMs) n++;
    return n;
  }

  async put(storage: Storage, role: string, jti: string, lease: ActiveLease): Promise<void> {
    const map = await this.load(storage, role);
    await putJson(storage, `${LEASE_PREFIX}${role}/${jti}`, lease);
    map.set(jti, lease);
  }

  async remove(storage: Storage, role: string, jti: string): Promise<void> {
    const map = await this.load(storage, role);
    await deleteKey(storage, `${LEASE_PREFIX}${role}/${jti}`);
    map.delete(jti);
  }

  /**
   * Removes records whose newest token expired a while ago: their lease is
   * gone, or will be revoked from its own internal data. A record can be left
   * behind when the server died between the engine's write and the lease's.
   */
  async tidy(storage: Storage, nowMs: number): Promise<number> {
    let removed = 0;
    for (const folder of await listKeys(storage, LEASE_PREFIX)) {
      if (!folder.endsWith('/')) continue;
      const role = folder.slice(0, -1);
      await this.mutex.run(role, async () => {
        const map = await this.load(storage, role);
        for (const [jti, lease] of [...map]) {
          if (lease.exp_ms + TIDY_GRACE_MS > nowMs) continue;
          await deleteKey(storage, `${LEASE_PREFIX}${role}/${jti}`);
          map.delete(jti);
          removed++;
        }
      });
    }
    return removed;
  }

  private async load(storage: Storage, role: string): Promise<Map<string, ActiveLease>> {
    const cached = this.byRole.get(role);
    if (cached) return cached;
    const map = new Map<string, ActiveLease>();
    for (const jti of await listKeys(storage, `${LEASE_PREFIX}${role}/`)) {
      const lease = await getJson<ActiveLease>(storage, `${LEASE_PREFIX}${role}/${jti}`);
      if (lease) map.set(jti, lease);
    }
    const again = this.byRole.get(role);
    if (again) return again;
    this.byRole.set(role, map);
    return map;
  }
}
