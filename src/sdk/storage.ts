// JSON over the engine's byte storage, and a small keyed mutex for
// read-check-write sequences that must not interleave.

import { EngineError } from './errors.ts';
import type { Storage } from './logical.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function getJson<T>(storage: Storage, key: string): Promise<T | null> {
  let entry;
  try {
    entry = await storage.get(key);
  } catch (err) {
    throw new EngineError('ERR_INTERNAL', `storage read of ${key} failed`, { cause: err });
  }
  if (!entry) return null;
  try {
    return JSON.parse(decoder.decode(entry.value)) as T;
  } catch (err) {
    throw new EngineError('ERR_INTERNAL', `stored entry ${key} is not valid JSON`, { cause: err });
  }
}

export async function putJson(storage: Storage, key: string, value: unknown): Promise<void> {
  try {
    await storage.put({ key, value: encoder.encode(JSON.stringify(value)) });
  } catch (err) {
    throw new EngineError('ERR_INTERNAL', `storage write of ${key} failed`, { cause: err });
  }
}

export async function deleteKey(storage: Storage, key: string): Promise<void> {
  try {
    await storage.delete(key);
  } catch (err) {
    throw new EngineError('ERR_INTERNAL', `storage delete of ${key} failed`, { cause: err });
  }
}

export async function listKeys(storage: Storage, prefix: string): Promise<string[]> {
  try {
    return await storage.list(prefix);
  } catch (err) {
    throw new EngineError('ERR_INTERNAL', `storage list of ${prefix} failed`, { cause: err });
  }
}

/** Serialises async sections per key: `await lock.run(key, fn)`. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
