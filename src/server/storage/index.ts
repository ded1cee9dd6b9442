// The dev server's physical storage: in memory (`-dev`) or a SQLite file
// (persistent mode) under the seal. Explicit exports only.
export { openMemoryStorage } from './memory.ts';
export { openSqliteStorage, compactSqliteFile, SCHEMA_VERSION } from './sqlite.ts';
export type { SqliteStorageOptions } from './sqlite.ts';
export { openSealedStorage, sealUnsealedStorage, Sealer, SEAL_CANARY_KEY, SEAL_KEY_BYTES } from './seal.ts';
export type { SealKey, SealKeyring, SealedStorageOptions } from './seal.ts';
export { sealSqliteFile } from './migrate.ts';
export { StorageError, isStorageError, createView, compareKeys, KeyTree } from './view.ts';
export type { StorageErrorCode } from './view.ts';
