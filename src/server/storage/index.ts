// The dev server's physical storage: in memory (`-dev`) or a SQLite file
// (persistent mode). Explicit exports only.
export { openMemoryStorage } from './memory.ts';
export { openSqliteStorage, SCHEMA_VERSION } from './sqlite.ts';
export type { SqliteStorageOptions } from './sqlite.ts';
export { StorageError, isStorageError, createView, compareKeys, KeyTree } from './view.ts';
export type { StorageErrorCode } from './view.ts';
