// Reading back the JSON records a store keeps one per key under a prefix
// (policies, tokens, entities).

import type { KeyValueStorage } from '../types.ts';

const decoder = new TextDecoder();

/** Every record stored directly under `prefix` (folders skipped), parsed from JSON. */
export async function loadRecords<T>(storage: KeyValueStorage, prefix: string): Promise<T[]> {
  const out: T[] = [];
  for (const key of await storage.list(prefix)) {
    if (key.endsWith('/')) continue;
    const raw = await storage.get(prefix + key);
    if (raw) out.push(JSON.parse(decoder.decode(raw)) as T);
  }
  return out;
}
