// Sealing a database written by a tvm without encryption at rest, once,
// offline: the server must be stopped (SQLite's exclusive lock refuses a
// second process anyway). The config names the database and the seal key.

import { loadConfig, loadSealKeys } from './config.ts';
import { sealSqliteFile } from './storage/index.ts';

export interface SealMigration {
  /** The database file sealed. */
  path: string;
  /** How many values were sealed. */
  count: number;
  /** The key id they are sealed under (not secret). */
  keyId: string;
}

/** Seals every value of the config's database under its current seal key; rewrites the file so no clear value remains. */
export async function sealStorageOfConfig(configPath: string, options: { warn?: (message: string) => void } = {}): Promise<SealMigration> {
  const config = await loadConfig(configPath);
  const keys = await loadSealKeys(config.seal, { ...(options.warn ? { warn: options.warn } : {}) });
  const count = await sealSqliteFile(config.storage.path, keys);
  return { path: config.storage.path, count, keyId: config.seal.current.id };
}
