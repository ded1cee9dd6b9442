// What the engine's caches of one stored record share: loaded on first use,
// dropped when the storage changes underneath (backend.ts invalidates them on a
// storage event), its read-modify-writes one at a time, and the engine's clock.

import { KeyedMutex } from '../sdk/storage.ts';
import type { Clock } from '../sdk/logical.ts';

export abstract class StoredRecordCache<Loaded> {
  protected loaded: Loaded | null = null;
  private readonly mutex = new KeyedMutex();
  protected readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Forgets what was loaded: the next read loads from storage. */
  invalidate(): void {
    this.loaded = null;
  }

  /** Runs `fn` once every earlier exclusive call has settled (a read-modify-write of the record). */
  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run('record', fn);
  }
}
