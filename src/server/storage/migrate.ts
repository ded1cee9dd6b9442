// Sealing, offline, a SQLite storage written by a tvm without a seal: every
// value sealed in place in one transaction, then the file rewritten so no
// clear value stays behind in free pages or the WAL.

import type { SealKeyring } from './seal.ts';
import { sealUnsealedStorage } from './seal.ts';
import { compactSqliteFile, openSqliteStorage } from './sqlite.ts';

/**
 * Seals the unsealed SQLite storage at `path` under `keyring.current`; returns
 * how many values were sealed. The server must be stopped (the file is locked
 * otherwise); a storage that is already sealed is refused.
 */
export async function sealSqliteFile(path: string, keyring: SealKeyring): Promise<number> {
  const storage = openSqliteStorage(path);
  let count: number;
  try {
    count = await sealUnsealedStorage(storage, keyring);
  } finally {
    await storage.close();
  }
  compactSqliteFile(path);
  return count;
}
