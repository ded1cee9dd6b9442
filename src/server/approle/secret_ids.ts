// Secret IDs as stored: under their role (`secret_id/<sha256 of the role
// name>/<HMAC of the secret ID under the role's key>`, never raw), with an
// index from accessors to them (`secret_id_accessor/<sha256 of the
// accessor>`), and the storage helpers the secret-ID routes, login and role
// deletion share.

import type { Storage } from '../../sdk/logical.ts';
import { deleteTree, getJson, hmacHex, rfc3339, sha256Hex } from '../auth/storage.ts';
import type { AppRoleEntry } from './roles.ts';

// ---------------------------------------------------------------------------
// Constants

const SECRET_ID_PREFIX = 'secret_id/';
export const ACCESSOR_PREFIX = 'secret_id_accessor/';

// ---------------------------------------------------------------------------
// Stored types

/** A secret ID as stored, under the HMAC of its value. */
export interface SecretIdEntry {
  secret_id_accessor: string;
  /** Uses left; 0 = unlimited. */
  secret_id_num_uses: number;
  /** Seconds; 0 = never expires. */
  secret_id_ttl: number;
  creation_ms: number;
  /** 0 = never. */
  expiration_ms: number;
  last_updated_ms: number;
  metadata: Record<string, string>;
  cidr_list: string[];
  token_bound_cidrs: string[];
}

/** An accessor's index entry: which secret ID (of its role) it names. */
export interface AccessorEntry {
  secret_id_hmac: string;
}

// ---------------------------------------------------------------------------
// Storage helpers

/** Where the secret IDs of a role are kept. */
export function secretIdsPrefix(roleName: string): string {
  return `${SECRET_ID_PREFIX}${sha256Hex(roleName)}/`;
}

/** The storage key of a secret ID of a role. */
export function secretKey(role: AppRoleEntry, secretId: string): string {
  return secretIdsPrefix(role.name) + hmacHex(role.hmac_key, secretId);
}

/** Deletes a secret ID and its accessor's index entry (nothing when it is gone already). */
export async function deleteSecretId(storage: Storage, key: string): Promise<void> {
  const entry = await getJson<SecretIdEntry>(storage, key);
  if (!entry) return;
  await storage.delete(ACCESSOR_PREFIX + sha256Hex(entry.secret_id_accessor));
  await storage.delete(key);
}

/** Deletes every secret ID of a role, and their accessors. */
export async function deleteRoleSecretIds(storage: Storage, roleName: string): Promise<void> {
  const prefix = secretIdsPrefix(roleName);
  for (const key of await storage.list(prefix)) {
    const entry = await getJson<SecretIdEntry>(storage, prefix + key);
    if (entry) await storage.delete(ACCESSOR_PREFIX + sha256Hex(entry.secret_id_accessor));
  }
  await deleteTree(storage, prefix);
}

export function expired(entry: SecretIdEntry, nowMs: number): boolean {
  return entry.expiration_ms !== 0 && entry.expiration_ms <= nowMs;
}

/** A secret ID as lookup shows it. */
export function secretIdData(entry: SecretIdEntry): Record<string, unknown> {
  return {
    cidr_list: [...entry.cidr_list],
    creation_time: rfc3339(entry.creation_ms),
    expiration_time: rfc3339(entry.expiration_ms),
    last_updated_time: rfc3339(entry.last_updated_ms),
    metadata: { ...entry.metadata },
    secret_id_accessor: entry.secret_id_accessor,
    secret_id_num_uses: entry.secret_id_num_uses,
    secret_id_ttl: entry.secret_id_ttl,
    token_bound_cidrs: [...entry.token_bound_cidrs],
  };
}
