// Signing keys of a tvm mount: rotate, and the published JWK set.

import type { JSONWebKeySet } from 'jose';
import type { VaultConnection } from './connection.ts';
import { UnexpectedResponseError } from './errors.ts';

export interface RotatedKey {
  /** The new signing key's id. */
  kid: string;
  alg: string;
}

/** Starts signing with a new key; the old one stays published until its tokens expire. */
export async function rotateKeys(conn: VaultConnection): Promise<RotatedKey> {
  const path = `${conn.mount}/keys/rotate`;
  const res = await conn.write(path);
  const d = res?.data;
  if (!d || typeof d.kid !== 'string') throw new UnexpectedResponseError(`POST ${path} answered without the new key id`);
  return { kid: d.kid, alg: typeof d.alg === 'string' ? d.alg : '' };
}

/** The public keys that may verify a live token of the mount (`<mount>/jwks`). */
export async function fetchJwks(conn: VaultConnection): Promise<JSONWebKeySet> {
  const path = `${conn.mount}/jwks`;
  const res = await conn.read(path);
  const keys = res?.data?.keys;
  if (!Array.isArray(keys) || !keys.every((k) => k !== null && typeof k === 'object')) {
    throw new UnexpectedResponseError(`GET ${path} answered without a JWK set`);
  }
  return { keys } as JSONWebKeySet;
}
