// SQLite physical storage: one `kv` table in a WAL-mode file; a write whose
// promise resolved survives a crash of the process or the machine.
//
// Group commit: puts and deletes are queued and written together in one
// transaction on the next turn of the event loop (or as soon as the queue holds
// `maxBatchOps`). Until then the queued values are an overlay that get and list
// read first, so callers read their writes. A failed transaction rejects every
// write of its batch (none of it was applied).
//
// Durability off the event loop: SQLite commits with synchronous=OFF (its
// frames are written to the -wal file, not yet flushed), and the -wal file is
// then fsync'd on the thread pool; each write's promise resolves only once an
// fsync that began after its commit has completed. One fsync covers every
// transaction committed before it started, so while one is under way the next
// batches commit and wait for the next fsync together: the event loop keeps
// serving instead of blocking on the disk. Checkpoints are ours, not
// SQLite's automatic ones (which would copy unsynced frames into the database
// and then reuse the log): when the log has grown, one is run with
// synchronous=FULL, which syncs the log, copies it, syncs the database and
// truncates the log. A failed fsync leaves the file's state unknown: the
// storage then refuses everything (as PostgreSQL panics) and the writes
// waiting on it are rejected.
//
// The file, its -wal and -shm are the owner's alone (0600), the directory it
// creates 0700, whatever the process umask.

import { chmodSync, closeSync, fstatSync, fsync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Storage } from '../../sdk/logical.ts';
import { isIoFailure } from '../../sdk/sqlite.ts';
import type { PhysicalStorage, StorageOp } from '../types.ts';
import {
  StorageError,
  childOf,
  closedError,
  compareKeys,
  createView,
  messageOf,
  prefixEnd,
} from './view.ts';

/** Numbered schema migrations; `PRAGMA user_version` records how many have run. */
const MIGRATIONS: readonly string[] = [
  // 1: the key-value table; its primary key index serves get and the list range scans.
  'CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)',
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface SqliteStorageOptions {
  /** Flush the queue at once when it holds this many writes (default 1000). */
  maxBatchOps?: number;
  /** How long to wait for a lock held by another connection (default 5000 ms). */
  busyTimeoutMs?: number;
  /** The log's size that starts a checkpoint (default 32 MiB). */
  checkpointBytes?: number;
  /** How the log is made durable (default fs.fsync); tests hold or fail it. */
  fsync?: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The -wal file's size past which the next commit is followed by a checkpoint.
 * SQLite's own default is 1000 pages (4 MiB), but a checkpoint blocks the loop
 * and leases' keys are spread over the whole table (each commit logs a page
 * per lease): at 4 MiB the server stalled several times a second under load.
 */
const CHECKPOINT_WAL_BYTES = 32 * 1024 * 1024;

class SqliteStorage implements PhysicalStorage {
  readonly persistent = true;
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly maxBatchOps: number;
  private readonly syncLog: NonNullable<SqliteStorageOptions['fsync']>;
  private readonly checkpointBytes: number;
  private readonly selectValue: Database.Statement<[string], Buffer>;
  private readonly selectKeysFrom: Database.Statement<[string], string>;
  private readonly selectKeysRange: Database.Statement<[string, string], string>;
  private readonly applyBatch: (writes: Map<string, Buffer | null>) => void;
  /** The newest queued value of each key not yet committed; null: a queued delete. */
  private overlay = new Map<string, Buffer | null>();
  private waiters: Waiter[] = [];
  private flushHandle: NodeJS.Immediate | null = null;
  private closing: Promise<void> | null = null;
  /** Committed, not yet known durable: they wait for the next fsync. */
  private unsynced: Waiter[] = [];
  /** The writes the fsync under way will settle; null when none is. */
  private syncing: Waiter[] | null = null;
  /** The -wal file, opened for fsync at the first commit. */
  private walFd: number | null = null;
  private checkpointDue = false;
  /** Set by a failed fsync: nothing is served after it. */
  private failed: StorageError | null = null;
  /** Set as shutdown() starts (this.closing is assigned only once it returns its promise). */
  private shuttingDown = false;

  constructor(db: Database.Database, path: string, options: SqliteStorageOptions) {
    this.db = db;
    this.path = path;
    this.maxBatchOps = Math.max(1, options.maxBatchOps ?? 1000);
    this.syncLog = options.fsync ?? fsync;
    this.checkpointBytes = options.checkpointBytes ?? CHECKPOINT_WAL_BYTES;
    this.selectValue = db.prepare<[string], Buffer>('SELECT value FROM kv WHERE key = ?').pluck();
    this.selectKeysFrom = db.prepare<[string], string>('SELECT key FROM kv WHERE key >= ? ORDER BY key').pluck();
    this.selectKeysRange = db
      .prepare<[string, string], string>('SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key')
      .pluck();
    const upsert = db.prepare<[string, Buffer]>(
      'INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    const remove = db.prepare<[string]>('DELETE FROM kv WHERE key = ?');
    this.applyBatch = db.transaction((writes: Map<string, Buffer | null>) => {
      for (const [key, value] of writes) {
        if (value === null) remove.run(key);
        else upsert.run(key, value);
      }
    });
  }

  async get(key: string): Promise<Uint8Array | null> {
    if (this.closing) throw closedError();
    if (this.failed) throw this.failed;
    const queued = this.overlay.get(key);
    if (queued !== undefined) return queued === null ? null : new Uint8Array(queued);
    let value: Buffer | undefined;
    try {
      value = this.selectValue.get(key);
    } catch (err) {
      throw new StorageError('ERR_STORAGE_READ', `storage read failed: ${messageOf(err)}`, { cause: err });
    }
    return value === undefined ? null : new Uint8Array(value);
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.batch([{ key, value }]);
  }

  delete(key: string): Promise<void> {
    return this.batch([{ key, value: null }]);
  }

  /** Queues every op before any flush can run, so they land in one transaction. */
  batch(ops: ReadonlyArray<StorageOp>): Promise<void> {
    if (this.closing) return Promise.reject(closedError());
    if (this.failed) return Promise.reject(this.failed);
    if (ops.length === 0) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    // Values are copied now (unless the caller handed them over): it may reuse its arrays before the transaction commits.
    for (const op of ops) {
      const v = op.value;
      this.overlay.set(op.key, v === null ? null : op.owned ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.from(v));
    }
    if (this.waiters.length >= this.maxBatchOps) this.flush();
    else if (this.flushHandle === null) this.flushHandle = setImmediate(() => this.flush());
    return done;
  }

  async list(prefix: string): Promise<string[]> {
    if (this.closing) throw closedError();
    if (this.failed) throw this.failed;
    const out = new Set<string>();
    const overlay = this.overlay.size > 0 ? this.overlay : null;
    try {
      this.listCommitted(prefix, overlay, out);
    } catch (err) {
      throw new StorageError('ERR_STORAGE_READ', `storage list failed: ${messageOf(err)}`, { cause: err });
    }
    if (overlay !== null) {
      for (const [key, value] of overlay) {
        if (value !== null && key.startsWith(prefix)) out.add(childOf(prefix, key));
      }
    }
    return [...out].sort(compareKeys);
  }

  view(prefix: string): Storage {
    return createView(this, prefix);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * Commits what is queued, makes every commit durable, and releases the file
   * (runs synchronously up to its end).
   */
  private async shutdown(): Promise<void> {
    this.shuttingDown = true;
    let failure: unknown = this.failed;
    if (this.failed) {
      for (const w of [...this.waiters, ...this.unsynced]) w.reject(this.failed);
      this.waiters = [];
      this.unsynced = [];
      this.overlay = new Map();
      try {
        // The close checkpoints the log into the database and deletes it: with full syncs, or (if a sync fails again) not at all.
        this.db.pragma('synchronous = FULL');
      } catch {
        // Closing goes on; SQLite keeps the log when its checkpoint cannot sync.
      }
    } else {
      try {
        // From here SQLite syncs each commit itself, and the close's checkpoint.
        this.db.pragma('synchronous = FULL');
        this.flush();
        const waiting = [...(this.syncing ?? []), ...this.unsynced];
        this.unsynced = [];
        if (waiting.length > 0) {
          if (this.walFd !== null) fsyncSync(this.walFd);
          for (const w of waiting) w.resolve();
        }
      } catch (err) {
        failure = err;
        const failed = new StorageError('ERR_STORAGE_WRITE', `storage sync failed: ${messageOf(err)}`, { cause: err });
        for (const w of [...(this.syncing ?? []), ...this.unsynced]) w.reject(failed);
        this.unsynced = [];
      }
    }
    // An fsync still under way closes the descriptor when it returns.
    if (this.walFd !== null && this.syncing === null) {
      closeSync(this.walFd);
      this.walFd = null;
    }
    try {
      this.db.close();
    } catch (err) {
      throw new StorageError('ERR_STORAGE_WRITE', `closing ${this.path} failed: ${messageOf(err)}`, { cause: err });
    }
    if (failure) throw new StorageError('ERR_STORAGE_WRITE', `closing ${this.path}: a sync failed: ${messageOf(failure)}`, { cause: failure });
  }

  /**
   * The committed keys' children under `prefix`, skipping keys the overlay
   * deletes. One indexed range scan that jumps past each folder once it has
   * been seen, so a folder with many keys below costs one seek, not a walk.
   */
  private listCommitted(prefix: string, overlay: Map<string, Buffer | null> | null, out: Set<string>): void {
    const upper = prefixEnd(prefix);
    let lower = prefix;
    for (;;) {
      let next: string | null = null;
      const rows = upper === null ? this.selectKeysFrom.iterate(lower) : this.selectKeysRange.iterate(lower, upper);
      for (const key of rows) {
        if (overlay !== null && overlay.get(key) === null) continue;
        const child = childOf(prefix, key);
        out.add(child);
        if (child.endsWith('/')) {
          next = prefixEnd(prefix + child);
          break; // ends the statement; the next scan starts after the folder
        }
      }
      if (next === null) return;
      lower = next;
    }
  }

  /** Commits every queued write in one transaction, then settles their promises. */
  private flush(): void {
    if (this.flushHandle !== null) {
      clearImmediate(this.flushHandle);
      this.flushHandle = null;
    }
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    const writes = this.overlay;
    this.waiters = [];
    this.overlay = new Map();
    // A sync failed after these were queued: the log's state is unknown, nothing more is committed to it.
    if (this.failed) {
      for (const w of waiters) w.reject(this.failed);
      return;
    }
    try {
      this.applyBatch(writes);
    } catch (err) {
      const failure = new StorageError('ERR_STORAGE_WRITE', `storage write failed: ${messageOf(err)}`, {
        cause: err,
      });
      for (const w of waiters) w.reject(failure);
      return;
    }
    if (this.shuttingDown) {
      // Closing: synchronous=FULL, this commit synced the log itself.
      for (const w of waiters) w.resolve();
      return;
    }
    for (const w of waiters) this.unsynced.push(w);
    if (this.checkpointDue) this.checkpoint();
    this.syncSoon();
  }

  /** Starts an fsync of the log for every commit not yet synced, unless one is under way (its end starts the next). */
  private syncSoon(): void {
    if (this.syncing !== null || this.unsynced.length === 0 || this.failed) return;
    let fd: number;
    try {
      fd = this.openWal();
    } catch (err) {
      this.fail(this.unsynced, err);
      this.unsynced = [];
      return;
    }
    const group = this.unsynced;
    this.unsynced = [];
    this.syncing = group;
    this.syncLog(fd, (err) => {
      this.syncing = null;
      if (this.shuttingDown) {
        // shutdown() settled the group (it synced again itself); the descriptor is ours to close.
        if (this.walFd !== null) closeSync(this.walFd);
        this.walFd = null;
        return;
      }
      if (err) {
        this.fail(group, err);
        return;
      }
      for (const w of group) w.resolve();
      this.syncSoon();
    });
  }

  /**
   * The -wal file's descriptor: opened once, and again if the file at the
   * path is no longer the one open (an fsync must reach the log SQLite
   * writes). Notes when the log has grown enough for a checkpoint.
   */
  private openWal(): number {
    const walPath = `${this.path}-wal`;
    const onDisk = statSync(walPath);
    if (this.walFd !== null && fstatSync(this.walFd).ino !== onDisk.ino) {
      closeSync(this.walFd);
      this.walFd = null;
    }
    if (this.walFd === null) {
      this.walFd = openSync(walPath, 'r+');
      // A log file new to us (SQLite made it at open): the fsyncs of the file do not make its directory entry durable.
      const dirFd = openSync(dirname(walPath), 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    }
    this.checkpointDue = onDisk.size > this.checkpointBytes;
    return this.walFd;
  }

  /**
   * Copies the log into the database and empties it, with SQLite's own syncs
   * (log, then database), so no frame is copied before it is durable and the
   * log is not reused before the database is. Blocks the loop for a few
   * fsyncs, once per checkpointBytes of log.
   */
  private checkpoint(): void {
    this.checkpointDue = false;
    try {
      this.db.pragma('synchronous = FULL');
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch (err) {
      // A busy or locked database is not fatal: the log stays and the next commit past the size tries again.
      // An I/O error is a failed sync: the files' state is unknown, as after a failed fsync of the log.
      if (isIoFailure((err as { code?: unknown }).code)) this.fail([], err);
    } finally {
      if (!this.failed) this.db.pragma('synchronous = OFF');
    }
  }

  /** A failed fsync: the file's state is unknown, so the storage refuses everything from now on. */
  private fail(group: Waiter[], err: unknown): void {
    this.failed ??= new StorageError('ERR_STORAGE_WRITE', `storage sync failed, the storage refuses further use: ${messageOf(err)}`, { cause: err });
    // Every write not yet durable fails with it: those waiting on a sync, and those queued for the next commit.
    for (const w of [...group, ...this.unsynced, ...this.waiters]) w.reject(this.failed);
    this.unsynced = [];
    this.waiters = [];
    this.overlay = new Map();
  }
}

/**
 * Opens (creating it and its directory if needed) the SQLite storage at
 * `path` and brings its schema up to date. Only one process may use the file
 * at a time. Throws a StorageError naming the path if it cannot.
 */
export function openSqliteStorage(path: string, options: SqliteStorageOptions = {}): PhysicalStorage {
  const fullPath = resolve(path);
  const fail = (err: unknown): never => {
    throw new StorageError('ERR_STORAGE_OPEN', `cannot open storage at ${fullPath}: ${messageOf(err)}`, {
      cause: err,
    });
  };
  try {
    mkdirSync(dirname(fullPath), { recursive: true, mode: 0o700 });
    // SQLite would create the file 0644 less the umask; its -wal and -shm take the file's mode.
    closeSync(openSync(fullPath, 'a', 0o600));
  } catch (err) {
    fail(err);
  }
  let db: Database.Database;
  try {
    db = new Database(fullPath, { timeout: options.busyTimeoutMs ?? 5000 });
  } catch (err) {
    return fail(err);
  }
  try {
    // The server keeps state in memory beside the file (queued writes, caches):
    // a second process writing the same file would go unseen, so it is locked out.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    migrate(db);
    restrictFiles(fullPath);
    // Commits are made durable by SqliteStorage's own fsync of the log, off the
    // event loop, and checkpoints by its own (see the top of this file).
    db.pragma('wal_autocheckpoint = 0');
    db.pragma('synchronous = OFF');
    return new SqliteStorage(db, fullPath, options);
  } catch (err) {
    db.close();
    const locked = (err as { code?: unknown }).code === 'SQLITE_BUSY';
    return fail(locked ? new Error('the database is locked (is another tvm server using it?)') : err);
  }
}

/** Takes group and other access away from the database files (an older tvm left them 0644). */
function restrictFiles(dbPath: string): void {
  for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if ((mode & 0o077) !== 0) chmodSync(file, mode & 0o700);
  }
}

/**
 * Rewrites the database at `path` without its free pages and empties its WAL,
 * so nothing deleted or overwritten stays readable in the files (used after
 * sealing a database in place). Needs the file to itself, like the server.
 */
export function compactSqliteFile(path: string): void {
  const fullPath = resolve(path);
  let db: Database.Database;
  try {
    db = new Database(fullPath, { fileMustExist: true });
  } catch (err) {
    throw new StorageError('ERR_STORAGE_OPEN', `cannot open storage at ${fullPath}: ${messageOf(err)}`, { cause: err });
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('VACUUM');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (err) {
    throw new StorageError('ERR_STORAGE_WRITE', `compacting ${fullPath} failed: ${messageOf(err)}`, { cause: err });
  } finally {
    db.close();
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`its schema version ${version} is newer than this tvm knows (${SCHEMA_VERSION})`);
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
