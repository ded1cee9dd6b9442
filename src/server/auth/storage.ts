// JSON entries over an auth method's storage view, and the hashing used to
// keep identifiers and secrets out of storage keys.

import { createHash, createHmac } from 'node:crypto';
import type { Storage } from '../../sdk/logical.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function getJson<T>(storage: Storage, key: string): Promise<T | null> {
  const entry = await storage.get(key);
  return entry ? (JSON.parse(decoder.decode(entry.value)) as T) : null;
}

export async function putJson(storage: Storage, key: string, value: unknown): Promise<void> {
  await storage.put({ key, value: encoder.encode(JSON.stringify(value)) });
}

/** SHA-256, hex: for storage keys derived from names and identifiers. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** HMAC-SHA256, hex: how secrets (AppRole secret IDs) are stored, never raw. */
export function hmacHex(key: string, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

/** Anything with Vault's list and delete verbs: the engine-facing Storage or the physical storage. */
export interface Deletable {
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
}

/** Deletes every key under a prefix (folders included). */
export async function deleteTree(storage: Deletable, prefix: string): Promise<void> {
  for (const key of await storage.list(prefix)) {
    if (key.endsWith('/')) await deleteTree(storage, prefix + key);
    else await storage.delete(prefix + key);
  }
}

/** Go's zero time, which Vault shows for "never" (secret IDs without expiry). */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function rfc3339(ms: number): string {
  return ms === 0 ? ZERO_TIME : new Date(ms).toISOString();
}
