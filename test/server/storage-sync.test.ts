// The SQLite storage's durability off the event loop: a write resolves only
// once an fsync of the log that began after its commit has completed; writes
// committed meanwhile wait for the next one together; a failed fsync rejects
// every write waiting on it and the storage then refuses everything; the log
// is checkpointed (and emptied) by the storage itself.
import { statSync } from 'node:fs';
import { fsync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStorage } from '../../src/server/storage/index.ts';
import { bytes, dbPaths, text } from './storage-fixtures.ts';

const { freshDbPath, remove } = dbPaths('tvm-storage-sync-');
afterAll(remove);

/** What a disk answers to an fsync it could not do. */
const eio = (): NodeJS.ErrnoException => Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });

/** An fsync the test completes by hand (really syncing first), recording each call. */
function heldFsync() {
  const pending: Array<(err: NodeJS.ErrnoException | null) => void> = [];
  return {
    calls: () => pending.length,
    fsync: (fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
      pending.push((err) => (err ? callback(err) : fsync(fd, callback)));
    },
    /** Completes the oldest held fsync (with `err`, or after a real fsync). */
    release: (err: NodeJS.ErrnoException | null = null) => pending.shift()!(err),
  };
}

/**
 * Whether a promise has settled, after the storage's commit (on the next
 * turn) has run. Only ever asked of writes whose fsync is held, or after
 * awaiting them: no timing is assumed.
 */
async function state(p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let out: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => (out = 'resolved'),
    () => (out = 'rejected'),
  );
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  return out;
}

describe('sqlite storage durability', () => {
  it('resolves a write only after the fsync that follows its commit, and reads it meanwhile', async () => {
    const held = heldFsync();
    const s = openSqliteStorage(freshDbPath(), { fsync: held.fsync });
    const write = s.put('lease/a', bytes('1'));
    expect(await state(write)).toBe('pending');
    expect(held.calls()).toBe(1);
    // Committed, not yet durable: readable, not acknowledged.
    expect(text(await s.get('lease/a'))).toBe('1');
    held.release();
    await write;
    await s.close();
  });

  it('groups the writes committed during an fsync into the next one: each waits for a sync begun after its own commit', async () => {
    const held = heldFsync();
    const s = openSqliteStorage(freshDbPath(), { fsync: held.fsync });
    const first = s.put('a', bytes('1'));
    await state(first);
    // Three writes of later turns commit while the first fsync is under way.
    const later = [s.put('b', bytes('2')), s.put('c', bytes('3'))];
    await state(later[0]);
    const last = s.batch([{ key: 'd', value: bytes('4') }]);
    expect(held.calls()).toBe(1);
    held.release();
    await first;
    // The first fsync's end starts one for everything committed meanwhile: they are not acknowledged by the old one.
    for (const p of [...later, last]) expect(await state(p)).toBe('pending');
    expect(held.calls()).toBe(1);
    held.release();
    await Promise.all([...later, last]);
    await s.close();
  });

  it('rejects every write waiting on a failed fsync, and refuses everything after it', async () => {
    const held = heldFsync();
    const s = openSqliteStorage(freshDbPath(), { fsync: held.fsync });
    const a = s.put('a', bytes('1'));
    await state(a);
    const b = s.put('b', bytes('2'));
    await state(b);
    held.release(eio());
    await expect(a).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE' });
    await expect(b).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE' });
    await expect(s.put('c', bytes('3'))).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE', message: /refuses further use/ });
    await expect(s.get('a')).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE' });
    await s.close().catch(() => undefined);
  });

  it('rejects a write queued for the next commit when a sync fails, and never commits it (it used to wait forever)', async () => {
    const held = heldFsync();
    const path = freshDbPath();
    const s = openSqliteStorage(path, { fsync: held.fsync });
    const a = s.put('a', bytes('1'));
    await state(a);
    // Queued in the same turn as the failure: its commit was to come on the next one.
    const b = s.put('b', bytes('2'));
    held.release(eio());
    expect(await state(b)).toBe('rejected');
    await expect(b).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE', message: /refuses further use/ });
    await expect(a).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE' });
    await s.close().catch(() => undefined);
    const again = openSqliteStorage(path);
    expect(await again.get('b')).toBeNull();
    await again.close();
  });

  it('settles writes still waiting on an fsync when it closes, and keeps them', async () => {
    const held = heldFsync();
    const path = freshDbPath();
    const s = openSqliteStorage(path, { fsync: held.fsync });
    const syncing = s.put('a', bytes('1'));
    await state(syncing);
    const queued = s.put('b', bytes('2'));
    await s.close();
    await expect(syncing).resolves.toBeUndefined();
    await expect(queued).resolves.toBeUndefined();
    held.release();
    const again = openSqliteStorage(path);
    expect(text(await again.get('a'))).toBe('1');
    expect(text(await again.get('b'))).toBe('2');
    await again.close();
  });

  it('checkpoints the log itself once it has grown (SQLite never copies unsynced frames), and everything stays', async () => {
    const path = freshDbPath();
    const s = openSqliteStorage(path, { checkpointBytes: 1024 * 1024 });
    const value = new Uint8Array(64 * 1024).fill(7);
    let maxWal = 0;
    for (let i = 0; i < 120; i++) {
      await s.put(`big/${String(i).padStart(3, '0')}`, value);
      maxWal = Math.max(maxWal, statSync(`${path}-wal`).size);
    }
    // 120 x 64 KiB is 7.5 MiB of values: without checkpoints the log would hold it all.
    expect(maxWal).toBeLessThan(3 * 1024 * 1024);
    expect(await s.list('big/')).toHaveLength(120);
    await s.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM kv').pluck().get()).toBe(120);
    db.close();
  });
});

describe('values handed over (owned) or not', () => {
  it('memory storage copies a value it was not given, and a reader never aliases either', async () => {
    const { openMemoryStorage } = await import('../../src/server/storage/index.ts');
    const s = openMemoryStorage();
    const lent = bytes('abc');
    await s.batch([{ key: 'lent', value: lent }]);
    lent[0] = 0x7a;
    expect(text(await s.get('lent'))).toBe('abc');
    await s.batch([{ key: 'given', value: bytes('xyz'), owned: true }]);
    const read = (await s.get('given'))!;
    read[0] = 0x61;
    expect(text(await s.get('given'))).toBe('xyz');
    await s.close();
  });
});
