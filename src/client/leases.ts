// Vault's lease API (sys/leases/...): lookup, renew, revoke and list. Renewing
// a tvm lease signs a fresh token for the same lease, which its holder then fetches.

import type { VaultConnection } from './connection.ts';
import { credsFromResponse, type Creds } from './creds.ts';
import { InvalidInputError, UnexpectedResponseError } from './errors.ts';

export const DEFAULT_LEASE_PREFIX = 'tvm/creds/';

/** `sys/leases/lookup` data, as Vault names it. */
export interface LeaseInfo {
  id: string;
  issue_time: string;
  expire_time: string | null;
  last_renewal: string | null;
  renewable: boolean;
  /** Seconds left. */
  ttl: number;
  [field: string]: unknown;
}

function checkLeaseId(leaseId: string): void {
  if (leaseId.trim() === '') throw new InvalidInputError('a lease id is required, e.g. tvm/creds/demo/<id>');
}

export async function lookupLease(conn: VaultConnection, leaseId: string): Promise<LeaseInfo> {
  checkLeaseId(leaseId);
  const res = await conn.write('sys/leases/lookup', { lease_id: leaseId });
  const d = res?.data;
  if (!d) throw new UnexpectedResponseError('PUT sys/leases/lookup answered without data');
  return {
    ...d,
    id: typeof d.id === 'string' ? d.id : leaseId,
    issue_time: typeof d.issue_time === 'string' ? d.issue_time : '',
    expire_time: typeof d.expire_time === 'string' ? d.expire_time : null,
    last_renewal: typeof d.last_renewal === 'string' ? d.last_renewal : null,
    renewable: d.renewable === true,
    ttl: typeof d.ttl === 'number' ? d.ttl : 0,
  };
}

export interface RenewOptions {
  /** Requested extension from now: a Vault duration string or seconds. */
  increment?: string | number;
}

/**
 * Renews a tvm lease and returns its new token (same jti, later exp). The
 * renewal answers the lease but not the token (a lease id alone never yields
 * one); the token is then fetched from creds/<role> with the jti, which only
 * the identity that obtained the lease may do.
 */
export async function renewLease(conn: VaultConnection, leaseId: string, options: RenewOptions = {}): Promise<Creds> {
  checkLeaseId(leaseId);
  const body: Record<string, unknown> = { lease_id: leaseId };
  if (options.increment !== undefined) body.increment = options.increment;
  const res = await conn.write('sys/leases/renew', body);
  const d = res?.data;
  if (!res || !d) throw new UnexpectedResponseError('PUT sys/leases/renew answered without data');
  const fetch = d.token_fetch as { path?: unknown; jti?: unknown } | undefined;
  const jti = typeof fetch?.jti === 'string' ? fetch.jti : d.jti;
  const path = typeof fetch?.path === 'string' ? fetch.path : typeof d.role === 'string' ? `${conn.mount}/creds/${d.role}` : undefined;
  if (typeof jti !== 'string' || path === undefined) {
    throw new UnexpectedResponseError('PUT sys/leases/renew answered neither the jti nor the role of the lease');
  }
  // A standby that serves reads (OpenBao 2.5+) may answer from storage the renewal has not
  // reached yet: fetch again until the token is the renewal's (or a later one), briefly.
  const wanted = { issued_at: d.issued_at, expires_at: d.expires_at };
  let fetched = await conn.write(path, { jti });
  for (let attempt = 1; attempt <= FETCH_RETRIES && stale(fetched?.data, wanted); attempt++) {
    await new Promise((r) => setTimeout(r, FETCH_RETRY_MS * attempt));
    fetched = await conn.write(path, { jti });
  }
  if (stale(fetched?.data, wanted)) {
    throw new UnexpectedResponseError(`PUT ${path} still answers the token from before the renewal; try again`);
  }
  // The lease's fields come from the renewal; the token's from the fetch.
  return credsFromResponse(
    { ...res, data: { ...fetched?.data } },
    `PUT ${path} (the renewed token)`,
  );
}

/** How often, and how far apart (growing), renewLease fetches again a token older than its renewal. */
const FETCH_RETRIES = 5;
const FETCH_RETRY_MS = 100;

/**
 * Whether a fetched token predates the renewal: issued before it, or in the
 * same second with another expiry. (A renewal that does not say its times is
 * taken at its word.)
 */
function stale(got: Record<string, unknown> | null | undefined, wanted: { issued_at: unknown; expires_at: unknown }): boolean {
  if (typeof wanted.issued_at !== 'string' || typeof wanted.expires_at !== 'string') return false;
  if (typeof got?.issued_at !== 'string') return true;
  const gotIat = Date.parse(got.issued_at);
  const wantedIat = Date.parse(wanted.issued_at);
  return gotIat < wantedIat || (gotIat === wantedIat && got.expires_at !== wanted.expires_at);
}

/** Revokes a lease (its token enters the revocation list); revoking twice succeeds. */
export async function revokeLease(conn: VaultConnection, leaseId: string): Promise<void> {
  checkLeaseId(leaseId);
  await conn.write('sys/leases/revoke', { lease_id: leaseId });
}

/**
 * Lease ids under a prefix (default `tvm/creds/`), descending one level into
 * folders: `tvm/creds/` lists every role's leases. Sorted.
 */
export async function listLeases(conn: VaultConnection, prefix: string = DEFAULT_LEASE_PREFIX): Promise<string[]> {
  const base = prefix.replace(/^\/+/, '').replace(/\/*$/, '/');
  if (base === '/') throw new InvalidInputError('a lease prefix such as tvm/creds/ is required');
  const out: string[] = [];
  for (const key of await conn.list(`sys/leases/lookup/${base}`)) {
    if (!key.endsWith('/')) {
      out.push(base + key);
      continue;
    }
    for (const inner of await conn.list(`sys/leases/lookup/${base}${key}`)) {
      out.push(base + key + inner);
    }
  }
  return out.sort();
}
