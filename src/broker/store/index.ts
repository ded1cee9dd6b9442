// Opens the configured store and applies its migrations.

import type { StoreConfig } from '../config.ts';
import type { Store } from '../types.ts';
import { SqliteStore } from './sqlite.ts';

export async function openStore(config: StoreConfig): Promise<Store> {
  let store: Store;
  if (config.kind === 'sqlite') {
    store = new SqliteStore(config.path);
  } else {
    const { PostgresStore } = await import('./postgres.ts');
    store = new PostgresStore(config.url);
  }
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}
