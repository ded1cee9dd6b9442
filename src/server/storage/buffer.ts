// A unit of work over the physical storage: the writes one engine call makes
// are held back (reads see them) and handed over as one list of ops, so the
// caller makes them durable in one batch together with its own write, the
// lease they belong to. A crash then leaves both or neither: never an
// engine record without its lease, nor a lease without its record.

import type { Storage, StorageEntry } from '../../sdk/logical.ts';
import type { PhysicalStorage, StorageOp } from '../types.ts';
import { childOf, compareKeys } from './view.ts';

export interface BufferedView {
  /** The engine-facing storage of one area (`logical/<uuid>/`), writes held back. */
  readonly storage: Storage;
  /** The held writes as physical ops (later writes of a key replace earlier ones); the buffer is emptied. */
  take(): StorageOp[];
}

/** A buffered view of `prefix`: reads go to the held writes first, then to the physical storage. */
export function bufferedView(physical: PhysicalStorage, prefix: string): BufferedView {
  let held = new Map<string, Uint8Array | null>();
  const storage: Storage = {
    async get(key: string): Promise<StorageEntry | null> {
      const full = prefix + key;
      if (held.has(full)) {
        const value = held.get(full)!;
        return value === null ? null : { key, value: new Uint8Array(value) };
      }
      const value = await physical.get(full);
      return value === null ? null : { key, value };
    },
    async put(entry: StorageEntry): Promise<void> {
      held.set(prefix + entry.key, new Uint8Array(entry.value));
    },
    async delete(key: string): Promise<void> {
      held.set(prefix + key, null);
    },
    async list(sub: string): Promise<string[]> {
      const from = prefix + sub;
      const out = new Set(await physical.list(from));
      for (const [key, value] of held) {
        if (!key.startsWith(from)) continue;
        const child = childOf(from, key);
        if (value !== null) out.add(child);
        // A held delete hides a name; a folder may still hold other keys, so it stays.
        else if (!child.endsWith('/')) out.delete(child);
      }
      return [...out].sort(compareKeys);
    },
  };
  return {
    storage,
    take(): StorageOp[] {
      const ops: StorageOp[] = [];
      // The held values are the view's own copies, and the view forgets them here.
      for (const [key, value] of held) ops.push(value === null ? { key, value } : { key, value, owned: true });
      held = new Map();
      return ops;
    },
  };
}
