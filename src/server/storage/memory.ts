// In-memory physical storage (Vault's inmem backend): for `-dev` and tests.
// Values are copied in and out (a value handed over with `owned` is kept as is), so no caller can alias what is stored.

import type { Storage } from '../../sdk/logical.ts';
import type { PhysicalStorage, StorageOp } from '../types.ts';
import { KeyTree, closedError, createView } from './view.ts';

class MemoryStorage implements PhysicalStorage {
  readonly persistent = false;
  private readonly values = new Map<string, Uint8Array>();
  private readonly keys = new KeyTree();
  private closed = false;

  async get(key: string): Promise<Uint8Array | null> {
    if (this.closed) throw closedError();
    const value = this.values.get(key);
    return value === undefined ? null : new Uint8Array(value);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    if (this.closed) throw closedError();
    if (!this.values.has(key)) this.keys.add(key);
    this.values.set(key, new Uint8Array(value));
  }

  async delete(key: string): Promise<void> {
    if (this.closed) throw closedError();
    if (this.values.delete(key)) this.keys.remove(key);
  }

  async batch(ops: ReadonlyArray<StorageOp>): Promise<void> {
    if (this.closed) throw closedError();
    for (const op of ops) {
      if (op.value === null) {
        if (this.values.delete(op.key)) this.keys.remove(op.key);
      } else {
        if (!this.values.has(op.key)) this.keys.add(op.key);
        this.values.set(op.key, op.owned ? op.value : new Uint8Array(op.value));
      }
    }
  }

  async list(prefix: string): Promise<string[]> {
    if (this.closed) throw closedError();
    return this.keys.list(prefix);
  }

  view(prefix: string): Storage {
    return createView(this, prefix);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.values.clear();
    this.keys.clear();
  }
}

/** Opens an empty in-memory storage; its content is gone when the process ends. */
export function openMemoryStorage(): PhysicalStorage {
  return new MemoryStorage();
}
