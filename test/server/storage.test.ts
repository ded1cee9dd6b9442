// The physical storage contract, run against both backends and the seal over
// each, plus what only the SQLite file promises: it survives a reopen and a
// SIGKILL of the process.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  SCHEMA_VERSION,
  StorageError,
  compareKeys,
  openMemoryStorage,
  openSealedStorage,
  openSqliteStorage,
} from '../../src/server/storage/index.ts';
import type { PhysicalStorage } from '../../src/server/types.ts';
import { bytes, dbPaths, text } from './storage-fixtures.ts';

const { dir, freshDbPath, remove } = dbPaths('tvm-storage-');
afterAll(remove);

/** The reference: Vault's list, computed naively over a plain map. */
function naiveList(keys: Iterable<string>, prefix: string): string[] {
  const out = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf('/');
    out.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  return [...out].sort(compareKeys);
}

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const keyring = { current: { id: 'test-1', key: randomBytes(32) } };
const backends: Array<[string, () => PhysicalStorage | Promise<PhysicalStorage>]> = [
  ['memory', () => openMemoryStorage()],
  ['sqlite', () => openSqliteStorage(freshDbPath())],
  ['sealed memory', () => openSealedStorage(openMemoryStorage(), keyring)],
  ['sealed sqlite', () => openSealedStorage(openSqliteStorage(freshDbPath()), keyring)],
];

describe.each(backends)('%s storage contract', (_name, open) => {
  let s: PhysicalStorage;
  beforeEach(async () => {
    s = await open();
  });
  afterEach(async () => {
    await s.close();
  });

  it('gets what was put, overwrites, and deletes (deleting a missing key is fine)', async () => {
    expect(await s.get('a')).toBeNull();
    await s.put('a', bytes('one'));
    expect(text(await s.get('a'))).toBe('one');
    await s.put('a', bytes('two'));
    expect(text(await s.get('a'))).toBe('two');
    await s.delete('a');
    expect(await s.get('a')).toBeNull();
    await s.delete('a');
    await s.delete('never');
    await s.put('empty', new Uint8Array());
    expect(await s.get('empty')).toEqual(new Uint8Array());
  });

  it('keeps its own copy of values, in and out', async () => {
    const value = bytes('abc');
    const pending = s.put('k', value);
    value[0] = 0x7a; // the caller reuses its buffer before the write commits
    await pending;
    const out = await s.get('k');
    expect(text(out)).toBe('abc');
    out![1] = 0x7a;
    expect(text(await s.get('k'))).toBe('abc');
    expect(out).toBeInstanceOf(Uint8Array);
  });

  it('lists direct children relative to the prefix, folders once with a slash, sorted', async () => {
    for (const key of ['b/d/f', 'a', 'b/c', 'b/d/e', 'b/x', 'b/x/y', 'c/', 'zz/top', 'aa']) {
      await s.put(key, bytes(key));
    }
    expect(await s.list('')).toEqual(['a', 'aa', 'b/', 'c/', 'zz/']);
    expect(await s.list('b/')).toEqual(['c', 'd/', 'x', 'x/']);
    expect(await s.list('b/d/')).toEqual(['e', 'f']);
    expect(await s.list('c/')).toEqual(['']);
    expect(await s.list('nope/')).toEqual([]);
    // A prefix that is not a folder: what follows it, up to the next slash.
    expect(await s.list('a')).toEqual(['', 'a']);
    expect(await s.list('b/d')).toEqual(['/']);
    expect(await s.list('z')).toEqual(['z/']);

    await s.delete('b/d/e');
    await s.delete('b/d/f');
    expect(await s.list('b/')).toEqual(['c', 'x', 'x/']);
    await s.delete('zz/top');
    expect(await s.list('')).toEqual(['a', 'aa', 'b/', 'c/']);
  });

  it('sorts keys by code point, as Vault does', async () => {
    const keys = ['\u{1F600}', '\uFF21', 'Z', 'a', '\u00e9', 'k/\u{1F600}x', 'k/\uFF21'];
    for (const key of keys) await s.put(key, bytes('v'));
    expect(await s.list('')).toEqual(['Z', 'a', 'k/', '\u00e9', '\uFF21', '\u{1F600}']);
    expect(await s.list('k/')).toEqual(['\uFF21', '\u{1F600}x']);
  });

  it('gives an engine a prefixed view whose keys never show the prefix', async () => {
    const v = s.view('logical/0001/');
    const other = s.view('logical/0002/');
    await v.put({ key: 'roles/demo', value: bytes('r') });
    await v.put({ key: 'config', value: bytes('c') });
    expect(text(await s.get('logical/0001/roles/demo'))).toBe('r');
    expect(await v.get('roles/demo')).toEqual({ key: 'roles/demo', value: bytes('r') });
    expect(await v.list('')).toEqual(['config', 'roles/']);
    expect(await v.list('roles/')).toEqual(['demo']);
    expect(await other.get('roles/demo')).toBeNull();
    expect(await other.list('')).toEqual([]);
    await v.delete('config');
    expect(await s.get('logical/0001/config')).toBeNull();
    expect(await s.list('logical/')).toEqual(['0001/']);
  });

  it('reads its own writes while they are still queued', async () => {
    await s.put('gone/x', bytes('old'));
    await s.put('keep', bytes('old'));
    const writes = [
      s.put('keep', bytes('new')),
      s.put('fresh/y', bytes('y')),
      s.delete('gone/x'),
      s.put('twice', bytes('1')),
      s.put('twice', bytes('2')),
    ];
    expect(text(await s.get('keep'))).toBe('new');
    expect(text(await s.get('fresh/y'))).toBe('y');
    expect(await s.get('gone/x')).toBeNull();
    expect(text(await s.get('twice'))).toBe('2');
    expect(await s.list('')).toEqual(['fresh/', 'keep', 'twice']);
    await Promise.all(writes);
    expect(await s.list('')).toEqual(['fresh/', 'keep', 'twice']);
    expect(text(await s.get('twice'))).toBe('2');
  });

  it('agrees with a naive model over random operations, queued or awaited', async () => {
    const rand = prng(7);
    const model = new Map<string, string>();
    const parts = ['a', 'b', 'ab', 'c/d', 'e'];
    const randomKey = (): string => {
      const depth = 1 + Math.floor(rand() * 3);
      return Array.from({ length: depth }, () => parts[Math.floor(rand() * parts.length)]).join('/');
    };
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 600; i++) {
      const key = randomKey();
      if (rand() < 0.35) {
        model.delete(key);
        pending.push(s.delete(key));
      } else {
        model.set(key, `v${i}`);
        pending.push(s.put(key, bytes(`v${i}`)));
      }
      if (rand() < 0.3) await Promise.all(pending.splice(0));
      if (i % 10 === 0) {
        const probe = randomKey();
        for (const prefix of ['', probe, `${probe}/`, probe.slice(0, -1)]) {
          expect(await s.list(prefix), `list(${JSON.stringify(prefix)}) at op ${i}`).toEqual(
            naiveList(model.keys(), prefix),
          );
        }
        expect(text(await s.get(probe))).toBe(model.get(probe) ?? null);
      }
    }
    await Promise.all(pending);
    for (const [key, value] of model) expect(text(await s.get(key))).toBe(value);
  });

  it('closes twice without complaint and then rejects every operation clearly', async () => {
    await s.put('k', bytes('v'));
    await s.close();
    await s.close();
    for (const op of [() => s.get('k'), () => s.put('k', bytes('v')), () => s.delete('k'), () => s.list('')]) {
      await expect(op()).rejects.toMatchObject({ code: 'ERR_STORAGE_CLOSED', message: 'storage is closed' });
    }
    await expect(s.view('x/').get('k')).rejects.toBeInstanceOf(StorageError);
  });

  it('says whether it is persistent', () => {
    expect(s.persistent).toBe(_name.endsWith('sqlite'));
  });
});

describe('sqlite storage', () => {
  it('creates the directory, uses WAL and records its schema version', async () => {
    const path = freshDbPath();
    const s = openSqliteStorage(path);
    await s.put('k', bytes('v'));
    await s.close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT key FROM kv').pluck().all()).toEqual(['k']);
    db.close();
  });

  it('keeps what was written across close and reopen, including writes still queued at close', async () => {
    const path = freshDbPath();
    const s = openSqliteStorage(path);
    await s.put('sys/token/a', bytes('1'));
    await s.put('logical/x/roles/r', bytes('2'));
    const queued = s.put('queued', bytes('3'));
    await s.close();
    await queued;
    const again = openSqliteStorage(path);
    expect(text(await again.get('sys/token/a'))).toBe('1');
    expect(text(await again.get('queued'))).toBe('3');
    expect(await again.list('')).toEqual(['logical/', 'queued', 'sys/']);
    await again.close();
  });

  it('commits a flood of writes, beyond one batch, and keeps them all', async () => {
    const path = freshDbPath();
    const s = openSqliteStorage(path, { maxBatchOps: 100 });
    await Promise.all(Array.from({ length: 2500 }, (_, i) => s.put(`k/${String(i).padStart(5, '0')}`, bytes(`${i}`))));
    await s.close();
    const again = openSqliteStorage(path);
    const keys = await again.list('k/');
    expect(keys).toHaveLength(2500);
    expect(keys[0]).toBe('00000');
    expect(text(await again.get('k/02499'))).toBe('2499');
    await again.close();
  });

  it('rejects every write of a failed batch, applies none of it, and keeps working', async () => {
    const path = freshDbPath();
    void openSqliteStorage(path).close();
    const setup = new Database(path);
    setup.exec(
      "CREATE TRIGGER refuse BEFORE INSERT ON kv WHEN NEW.key = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END",
    );
    setup.close();
    const s = openSqliteStorage(path);
    await s.put('before', bytes('0'));
    const batch = [s.put('a', bytes('1')), s.put('boom', bytes('2')), s.delete('before')];
    const results = await Promise.allSettled(batch);
    for (const r of results) {
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ERR_STORAGE_WRITE' } });
    }
    expect(await s.get('a')).toBeNull();
    expect(text(await s.get('before'))).toBe('0');
    expect(await s.list('')).toEqual(['before']);
    await s.put('after', bytes('3'));
    expect(text(await s.get('after'))).toBe('3');
    await s.close();
  });

  it('creates its files 0600 and its directory 0700 under umask 022, and tightens files left 0644', async () => {
    const previous = process.umask(0o022);
    try {
      const path = freshDbPath();
      const s = openSqliteStorage(path);
      await s.put('k', bytes('v'));
      const files = [path, `${path}-wal`, `${path}-shm`].filter((f) => existsSync(f));
      expect(files).toContain(`${path}-wal`);
      for (const f of files) expect([f, (statSync(f).mode & 0o777).toString(8)]).toEqual([f, '600']);
      expect((statSync(dirname(path)).mode & 0o777).toString(8)).toBe('700');
      await s.close();

      // An older tvm left the file 0644: the next open takes group and other access away.
      chmodSync(path, 0o644);
      const again = openSqliteStorage(path);
      await again.put('k2', bytes('v'));
      for (const f of [path, `${path}-wal`, `${path}-shm`].filter((f) => existsSync(f))) {
        expect([f, (statSync(f).mode & 0o777).toString(8)]).toEqual([f, '600']);
      }
      await again.close();
    } finally {
      process.umask(previous);
    }
  });

  it('locks the file against a second server', async () => {
    const path = freshDbPath();
    const s = openSqliteStorage(path);
    expect(() => openSqliteStorage(path, { busyTimeoutMs: 50 })).toThrow(/another tvm server/);
    await s.close();
    const again = openSqliteStorage(path);
    await again.close();
  });

  it('refuses a path it cannot open, with one line naming the path', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const bad = join(file, 'sub', 'tvm.db');
    let caught: unknown;
    try {
      openSqliteStorage(bad);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StorageError);
    expect((caught as StorageError).code).toBe('ERR_STORAGE_OPEN');
    expect((caught as Error).message).toContain(bad);
    expect((caught as Error).message).not.toContain('\n');

    const notDb = join(dir, 'not-a-db');
    writeFileSync(notDb, 'x'.repeat(4096));
    expect(() => openSqliteStorage(notDb)).toThrow(notDb);
  });

  it('refuses a database written by a newer schema', () => {
    const path = freshDbPath();
    void openSqliteStorage(path).close();
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openSqliteStorage(path)).toThrow(/schema version .* newer/);
  });

  it('keeps every write whose promise resolved when the process is killed with SIGKILL', async () => {
    const path = freshDbPath();
    const script = join(dir, 'crash.mts');
    const storageModule = resolve('src/server/storage/index.ts');
    writeFileSync(
      script,
      `import { openSqliteStorage } from ${JSON.stringify(storageModule)};
const s = openSqliteStorage(${JSON.stringify(path)});
const n = Number(process.argv[2]);
const writes = [];
for (let i = 0; i < n; i++) writes.push(s.put('crash/' + i, new TextEncoder().encode('v' + i)));
await Promise.all(writes);
for (let i = 0; i < n; i += 2) await s.put('crash/' + i, new TextEncoder().encode('w' + i));
// More writes that never get to commit: the kill may or may not lose them.
for (let i = 0; i < 100; i++) void s.put('late/' + i, new Uint8Array([1]));
process.stdout.write('ok\\n');
process.kill(process.pid, 'SIGKILL');
`,
    );
    const n = 1500;
    const child = spawn(process.execPath, ['--import', 'tsx', script, String(n)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, sig) => done(sig)));
    expect(stdout, stderr).toBe('ok\n');
    expect(signal).toBe('SIGKILL');

    const s = openSqliteStorage(path);
    const keys = await s.list('crash/');
    expect(keys).toHaveLength(n);
    for (let i = 0; i < n; i++) expect(text(await s.get(`crash/${i}`))).toBe(i % 2 === 0 ? `w${i}` : `v${i}`);
    await s.close();
  }, 20_000);
});
