// Group commit must not weaken durability: a write's promise resolves only once
// the transaction holding it committed (and, in WAL mode with synchronous =
// FULL, was synced: only then do other connections see it), a process killed
// mid-stream loses nothing it was told was written, and a batch that fails
// fails for every caller in it. SQLite (writer thread) and PostgreSQL.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore, openStore, type Store, type WorkloadRow } from '../../src/broker/index.ts';
import { GroupCommit, ThreadCommit, commitGroup, type BatchResult, type ErrorShape, type Step } from '../../src/broker/store/sqlite-writer.ts';
import { isIoFailure } from '../../src/sdk/sqlite.ts';
import { tempDir } from './helpers.ts';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.ts';

const dir = tempDir('tvm-group-commit-');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  dir.remove();
});

function workload(): WorkloadRow {
  const now = Date.now();
  return { id: randomUUID(), name: 'w', heartbeatIntervalMs: 0, pid: null, host: 'h', replica: 'r', state: 'active', reason: null, createdAt: now, lastHeartbeatAt: now, endedAt: null };
}

const intent = (w: WorkloadRow, id = randomUUID()) => ({ id, workloadId: w.id, role: 'r', scopeKey: 'k', owner: 'r', at: Date.now(), claimUntil: Date.now() + 60_000 });

describe('SQLite group commit', () => {
  it('many concurrent intents share commits, and each resolves only once another connection sees its row', async () => {
    const path = `${dir.path}/concurrent.db`;
    const store = new SqliteStore(path);
    await store.migrate();
    const w = workload();
    await store.createWorkload(w);
    // A second connection, as a restarted broker would open the file: what it sees was committed.
    const reader = new Database(path, { readonly: true });
    const seen = reader.prepare('SELECT state FROM leases WHERE id = ?');
    const before = store.commits.transactions;
    const ids = Array.from({ length: 500 }, () => randomUUID());
    const visibleAtResolve: boolean[] = [];
    await Promise.all(
      ids.map(async (id) => {
        const row = await store.insertIntent(intent(w, id));
        expect(row.id).toBe(id);
        expect(row.state).toBe('intent');
        visibleAtResolve.push((seen.get(id) as { state: string } | undefined)?.state === 'intent');
      }),
    );
    expect(visibleAtResolve).toHaveLength(500);
    expect(visibleAtResolve.every(Boolean)).toBe(true);
    // Far fewer transactions (fsyncs) than writes.
    expect(store.commits.transactions - before).toBeLessThan(50);
    reader.close();
    await store.close();
  });

  it('a process SIGKILLed mid-stream: every intent and completion it was told was written is in the file', async () => {
    const path = `${dir.path}/killed.db`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/broker/fixtures/intent-writer.ts', path, '64'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const intents = new Set<string>();
    const completed = new Set<string>();
    const parked = new Set<string>();
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => {
        if (l.startsWith('i ')) intents.add(l.slice(2));
        else if (l.startsWith('c ')) completed.add(l.slice(2));
        else if (l.startsWith('p ')) parked.add(l.slice(2));
        // Mid-stream: killed while intents it was told were written await their completion.
        if (completed.size >= 1000 && intents.size > completed.size && child.signalCode === null) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited (${code}): ${stderr}`))));
    });
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));

    const store = new SqliteStore(path);
    await store.migrate();
    for (const id of intents) {
      const row = await store.getLease(id);
      expect(row, `intent ${id} was acknowledged but is not in the file`).not.toBeNull();
      if (completed.has(id)) expect(row!.state).toBe('active');
    }
    // Killed between intent and completion: those intents are there (for reconcile to close).
    // Whether any in-flight intent is caught there depends on the instant of the kill
    // (all completions of a batch may have been printed, the next intents not yet);
    // the parked ones, whose completion never came, are there whatever the instant.
    expect(parked.size).toBeGreaterThan(0);
    for (const id of parked) expect((await store.getLease(id))?.state).toBe('intent');
    const between = [...intents].filter((id) => !completed.has(id) && !parked.has(id));
    for (const id of between) expect(['intent', 'active']).toContain((await store.getLease(id))?.state);
    const db = new Database(path, { readonly: true });
    // A completion and its event commit together: no active lease lacks its event, none has two.
    const orphans = db
      .prepare(`SELECT COUNT(*) AS n FROM leases l WHERE l.state = 'active' AND (SELECT COUNT(*) FROM events e WHERE e.lease_row_id = l.id) <> 1`)
      .get() as { n: number };
    db.close();
    expect(orphans.n).toBe(0);
    await store.close();
  }, 60_000);

  it('a write that fails alone is undone alone; the others of its batch commit', async () => {
    const store = new SqliteStore(`${dir.path}/one-fails.db`);
    await store.migrate();
    const w = workload();
    await store.createWorkload(w);
    const dup = randomUUID();
    await store.insertIntent(intent(w, dup));
    // Same turn: one batch.
    const results = await Promise.allSettled([store.insertIntent(intent(w)), store.insertIntent(intent(w, dup)), store.insertIntent(intent(w))]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/UNIQUE/);
    expect((await store.stats()).byState.intent).toBe(3);
    await store.close();
  });

  it('a batch whose commit fails rejects every caller in it, writes none of it, and the next batch goes on', async () => {
    const path = `${dir.path}/commit-fails.db`;
    const setup = new Database(path);
    setup.pragma('journal_mode = WAL');
    // A deferred foreign key is checked at COMMIT: every savepoint succeeds and the commit fails.
    setup.exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY);
                CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
                INSERT INTO parent (id) VALUES (1);`);
    setup.close();
    const commit = new ThreadCommit(path, ['journal_mode = WAL', 'synchronous = FULL', 'foreign_keys = ON']);
    const insert = (id: number, parent: number) => commit.write([{ sql: 'INSERT INTO child (id, parent) VALUES (?, ?)', params: [id, parent] }]);
    const batch = await Promise.allSettled([insert(1, 1), insert(2, 99), insert(3, 1)]);
    expect(batch.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(String((batch[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    await expect(insert(4, 1)).resolves.toEqual([1]);
    await commit.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT id FROM child ORDER BY id').all()).toEqual([{ id: 4 }]);
    db.close();
  });

  it('a commit that fails on I/O (its fsync) stops the store: the file\'s state is unknown, so no later write is taken', async () => {
    // The transaction's outcome is scripted: the real disk cannot be made to fail an fsync here.
    class Scripted extends GroupCommit {
      constructor(private readonly results: BatchResult[]) {
        super();
      }
      protected send(batch: Step[][]): void {
        const next = this.results.shift() ?? { outcomes: batch.map(() => ({ ok: true as const, value: [] })) };
        queueMicrotask(() => this.settle(next));
      }
      async close(): Promise<void> {}
    }
    const io = new Scripted([{ fatal: { message: 'disk I/O error', code: 'SQLITE_IOERR_FSYNC', sqlite: true } }]);
    const step = { sql: 'INSERT INTO t VALUES (1)', params: [] };
    await expect(io.write([step])).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    await expect(io.write([step])).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC', message: /refuses further writes/ });
    // A commit refused for what it holds (a constraint) is not I/O: the next batch goes on.
    const constraint = new Scripted([{ fatal: { message: 'FOREIGN KEY constraint failed', code: 'SQLITE_CONSTRAINT_FOREIGNKEY', sqlite: true } }]);
    await expect(constraint.write([step])).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' });
    await expect(constraint.write([step])).resolves.toEqual([]);
  });

  it('batches sent while a commit is under way settle in order; an I/O failure fails those already sent and every later write', async () => {
    // Several batches in flight at once, as the writer thread takes them; their results come back in order.
    class Pipelined extends GroupCommit {
      readonly sent: Step[][][] = [];
      constructor() {
        super(Number.POSITIVE_INFINITY);
      }
      protected send(batch: Step[][]): void {
        this.sent.push(batch);
      }
      answer(result: BatchResult, own = true): void {
        this.settle(result, own);
      }
      async close(): Promise<void> {}
    }
    const ok = (n: number): BatchResult => ({ outcomes: Array.from({ length: n }, (_, i) => ({ ok: true as const, value: [i] })) });
    const c = new Pipelined();
    const step = (n: number): Step[] => [{ sql: 'INSERT INTO t VALUES (?)', params: [n] }];
    const first = [c.write(step(1)), c.write(step(2))];
    await new Promise((r) => setImmediate(r));
    // The second batch is sent while the first has not been answered.
    const second = [c.write(step(3))];
    await new Promise((r) => setImmediate(r));
    expect(c.sent.map((b) => b.length)).toEqual([2, 1]);
    // One transaction held both (the thread took the second while starting the first): counted once.
    c.answer(ok(2));
    c.answer(ok(1), false);
    expect(await Promise.all([...first, ...second])).toEqual([[0], [1], [0]]);
    expect(c.commits).toEqual({ transactions: 1, writes: 3 });
    // Two more in flight; the older one's commit fails on I/O: both fail, and so does every later write.
    const third = c.write(step(4));
    await new Promise((r) => setImmediate(r));
    const fourth = c.write(step(5));
    await new Promise((r) => setImmediate(r));
    expect(c.sent).toHaveLength(4);
    c.answer({ fatal: { message: 'disk I/O error', code: 'SQLITE_IOERR_FSYNC', sqlite: true } });
    await expect(third).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    await expect(fourth).rejects.toMatchObject({ code: 'SQLITE_IOERR_FSYNC' });
    await expect(c.write(step(6))).rejects.toThrow(/refuses further writes/);
    await c.idle();
  });

  it('the writer thread commits the batches that waited as one transaction, and after an I/O failure applies none', () => {
    const applied: number[][][] = [];
    let next: BatchResult | null = null;
    const apply = (writes: number[][]): BatchResult => {
      applied.push(writes);
      const r = next ?? { outcomes: writes.map((w) => ({ ok: true as const, value: [w[0]] })) };
      next = null;
      return r;
    };
    const state: { broken: ErrorShape | null } = { broken: null };
    // Three batches (2, 1 and 3 writes) in one transaction; each gets its own outcomes back.
    const results = commitGroup(apply, isIoFailure, state, [[[1], [2]], [[3]], [[4], [5], [6]]]);
    expect(applied).toEqual([[[1], [2], [3], [4], [5], [6]]]);
    expect(results).toEqual([
      { outcomes: [{ ok: true, value: [1] }, { ok: true, value: [2] }] },
      { outcomes: [{ ok: true, value: [3] }] },
      { outcomes: [{ ok: true, value: [4] }, { ok: true, value: [5] }, { ok: true, value: [6] }] },
    ]);
    // A commit refused for what it held fails its batches, and the next group is applied.
    const constraint = { message: 'FOREIGN KEY constraint failed', code: 'SQLITE_CONSTRAINT_FOREIGNKEY', sqlite: true };
    next = { fatal: constraint };
    expect(commitGroup(apply, isIoFailure, state, [[[7]], [[8]]])).toEqual([{ fatal: constraint }, { fatal: constraint }]);
    expect(state.broken).toBeNull();
    expect(commitGroup(apply, isIoFailure, state, [[[9]]])).toEqual([{ outcomes: [{ ok: true, value: [9] }] }]);
    // An I/O failure: that group fails, and later groups are answered with it without touching the file.
    const io = { message: 'disk I/O error', code: 'SQLITE_IOERR_FSYNC', sqlite: true };
    next = { fatal: io };
    expect(commitGroup(apply, isIoFailure, state, [[[10]]])).toEqual([{ fatal: io }]);
    const before = applied.length;
    expect(commitGroup(apply, isIoFailure, state, [[[11]], [[12]]])).toEqual([{ fatal: io }, { fatal: io }]);
    expect(applied).toHaveLength(before);
  });

  it('the connection that commits syncs every commit (WAL, synchronous = FULL)', async () => {
    const store = new SqliteStore(`${dir.path}/durability.db`);
    await store.migrate();
    // 2 is FULL: the WAL is synced at every commit (NORMAL, 1, would sync only at checkpoints).
    expect(await store.durability()).toEqual({ journalMode: 'wal', synchronous: 2 });
    await store.close();
  });

  it('close commits what was queued before it', async () => {
    const path = `${dir.path}/close.db`;
    const store = new SqliteStore(path);
    await store.migrate();
    const w = workload();
    const pending = store.createWorkload(w);
    await store.close();
    await pending;
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT id FROM workloads').all()).toEqual([{ id: w.id }]);
    db.close();
  });
});

const pgSkip = pgUnavailable();
describe.skipIf(pgSkip !== null)('PostgreSQL group commit', () => {
  let pg: PgCluster;
  let store: Store;
  afterAll(async () => {
    await store?.close();
    pg?.stop();
  });

  it('concurrent intents and completions each resolve with their own row; the events commit with the completions', async () => {
    pg = await startPgCluster();
    store = await openStore({ kind: 'postgres', url: pg.url });
    const w = workload();
    await store.createWorkload(w);
    const ids = Array.from({ length: 300 }, () => randomUUID());
    const rows = await Promise.all(ids.map((id) => store.insertIntent(intent(w, id))));
    expect(rows.map((r) => r.id)).toEqual(ids);
    const at = Date.now();
    const done = await Promise.all(
      ids.map((id, i) =>
        store.completeIntent(
          id,
          // Every tenth asks with an owner that does not hold the claim: that one is not completed and has no event.
          i % 10 === 0 ? 'someone-else' : 'r',
          { loginId: null, leaseId: `l/${id}`, jti: id, token: 't', ttlMs: 1000, tokenIssuedAt: at, expiresAt: at + 1000, dueAt: at + 500 },
          { at, kind: 'issued', workloadId: w.id, leaseRowId: id, reason: null, detail: 'r' },
        ),
      ),
    );
    done.forEach((row, i) => {
      if (i % 10 === 0) expect(row).toBeNull();
      else expect(row?.id).toBe(ids[i]);
    });
    expect(await store.countEvents(w.id, 'issued', 0)).toBe(270);
    expect((await store.stats()).byState).toEqual({ intent: 30, active: 270 });
  }, 120_000);

  it('a batch refused for one of its rows is written again row by row: only that row\'s caller fails', async () => {
    const w = workload();
    await store.createWorkload(w);
    const dup = randomUUID();
    // Same turn: one statement for the three; the duplicate key fails it, and each is then written alone.
    const ids = [randomUUID(), dup, dup];
    const results = await Promise.allSettled(ids.map((id) => store.insertIntent(intent(w, id))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/duplicate key/);
    expect((await store.leasesOfWorkload(w.id, ['intent'])).map((l) => l.id).sort()).toEqual([ids[0], dup].sort());
    // The next batch goes on.
    await expect(store.insertIntent(intent(w))).resolves.toMatchObject({ state: 'intent' });
  });

  it('a batch that fails for another reason (the connection) rejects every caller in it, and is not tried again row by row', async () => {
    // A server that accepts and at once closes every connection, and counts them.
    let connections = 0;
    const dead = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const { PostgresStore } = await import('../../src/broker/store/postgres.ts');
    const broken = new PostgresStore(`postgres://tvm@127.0.0.1:${(dead.address() as AddressInfo).port}/tvm`);
    const w = workload();
    try {
      // Same turn: one batch, one statement.
      const results = await Promise.allSettled([0, 1, 2].map(() => broken.insertIntent(intent(w))));
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
      // One connection for the batch; none for three writes alone.
      expect(connections).toBe(1);
    } finally {
      await broken.close();
      await new Promise((r) => dead.close(r));
    }
  });
});
