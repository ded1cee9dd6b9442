// Group commit for the SQLite store. Every write is a short list of SQL steps
// (data, not a closure, so it can cross to a thread); writes queue while one
// transaction commits and the queued ones become the next transaction, with
// one fsync (synchronous = FULL) for all of them. A caller's promise settles
// only once the transaction holding its write committed: a write is durable
// when its caller acts on it (intent before action).
//
// A file store commits in a writer thread with its own connection, so the
// fsync never blocks the event loop: HTTP, Vault calls and reads go on while
// it runs, and what they write meanwhile joins the next commit. The loop
// sends what it has each turn without waiting for the commit under way; the
// thread takes every batch waiting for it when it starts a transaction, so it
// goes from one commit straight to the next (no round trip between them) and
// a write waits at most for the commit under way and its own. An in-memory
// database (tests) cannot be shared with a thread, so it commits inline, in
// the same batches.
//
// The thread runs `applyBatch` and `writerMain` from their source text
// (Function.prototype.toString), so they must stay self-contained: no imports
// and no names from this module inside them. That works the same under tsx,
// vitest and a bundled build, none of which can load a .ts file in a thread.

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { isIoFailure } from '../../sdk/sqlite.ts';

/** One statement of a write. */
export interface Step {
  sql: string;
  params: unknown[];
  /** Answers rows (a RETURNING clause) instead of the count of changed rows. */
  rows?: boolean;
  /** Runs only when the step before it changed a row (else counts 0). */
  ifChanged?: boolean;
}

/** Per step: rows changed, or the rows returned. */
export type StepResult = number | Record<string, unknown>[];

/** How each write of a batch ended; a write that failed alone was undone alone (a savepoint). */
export type WriteOutcome = { ok: true; value: StepResult[] } | { ok: false; error: ErrorShape };

/** An error as it crosses the thread boundary. */
export interface ErrorShape {
  message: string;
  code?: string;
  sqlite?: boolean;
}

/** A batch: each write's outcome, or `fatal` when the transaction itself failed (then no write of it is durable). */
export type BatchResult = { outcomes: WriteOutcome[] } | { fatal: ErrorShape };

interface StatementLike {
  run(...params: unknown[]): { changes: number };
  all(...params: unknown[]): unknown[];
}

interface DatabaseLike {
  prepare(sql: string): StatementLike;
  transaction<F extends () => unknown>(fn: F): { (): ReturnType<F>; immediate(): ReturnType<F> };
  readonly inTransaction: boolean;
}

/** A step as sent to the thread: its SQL by number (the text only the first time the thread sees it). */
interface WireStep {
  q: number;
  sql?: string;
  params: unknown[];
  rows?: boolean;
  ifChanged?: boolean;
}

/**
 * Runs a batch as one transaction, each write in its own savepoint, and
 * commits it. Self-contained (it runs in the writer thread from its source).
 */
export function applyBatch<S extends { params: unknown[]; rows?: boolean; ifChanged?: boolean }>(
  db: DatabaseLike,
  prepared: (step: S) => StatementLike,
  batch: readonly S[][],
): BatchResult {
  // A method, not a named arrow: a bundler keeping names would wrap the latter in a helper the thread lacks.
  const util = {
    shape(err: unknown): ErrorShape {
      const e = err as { message?: unknown; code?: unknown; name?: unknown };
      return {
        message: typeof e?.message === 'string' ? e.message : String(err),
        ...(typeof e?.code === 'string' ? { code: e.code } : {}),
        ...(e?.name === 'SqliteError' ? { sqlite: true } : {}),
      };
    },
  };
  const outcomes: WriteOutcome[] = [];
  try {
    db.transaction(() => {
      for (const steps of batch) {
        try {
          // Nested: a savepoint, so a failing write is undone alone.
          const value = db.transaction(() => {
            const results: StepResult[] = [];
            let changed = true;
            for (const step of steps) {
              if (step.ifChanged && !changed) {
                results.push(0);
                continue;
              }
              if (step.rows) {
                const rows = prepared(step).all(...step.params) as Record<string, unknown>[];
                results.push(rows);
                changed = rows.length > 0;
              } else {
                const n = prepared(step).run(...step.params).changes;
                results.push(n);
                changed = n > 0;
              }
            }
            return results;
          })();
          outcomes.push({ ok: true, value });
        } catch (err) {
          // SQLite rolled the whole transaction back (I/O error, disk full): the batch fails as one.
          if (!db.inTransaction) throw err;
          outcomes.push({ ok: false, error: util.shape(err) });
        }
      }
    }).immediate();
  } catch (err) {
    return { fatal: util.shape(err) };
  }
  return { outcomes };
}

/** At most this many writes in one transaction (the rest go in the next). */
const MAX_BATCH = 4096;

/**
 * Commits the batches that waited together as one transaction and answers
 * each its own result, in order. Once a commit failed on I/O (`state.broken`)
 * nothing more is applied: every later batch gets that failure, for a batch
 * sent before its sender heard of it must not commit after it. A failure of
 * the transaction for what it held (a deferred constraint) fails its batches
 * only. Self-contained (the writer thread runs it from its source).
 */
export function commitGroup<S>(
  apply: (writes: S[][]) => BatchResult,
  isIo: (code: string | undefined) => boolean,
  state: { broken: ErrorShape | null },
  batches: readonly S[][][],
): BatchResult[] {
  const broken = state.broken;
  if (broken) return batches.map(() => ({ fatal: broken }));
  const result = apply(batches.flat());
  if ('fatal' in result) {
    if (isIo(result.fatal.code)) state.broken = result.fatal;
    return batches.map(() => result);
  }
  let at = 0;
  return batches.map((b) => ({ outcomes: result.outcomes.slice(at, (at += b.length)) }));
}

/** What the writer thread is started with. */
interface WriterData {
  driver: string;
  path: string;
  pragmas: string[];
  maxBatch: number;
}

/**
 * The writer thread: its own connection. Each message in is a batch; when it
 * starts a transaction it takes every batch waiting in its port too (up to
 * `maxBatch` writes), commits them as one, and answers one message: the
 * result of each batch, in the order they came. After a commit that failed on
 * I/O it applies nothing more and answers every later batch with that
 * failure: a batch sent before the loop heard of it must not commit after it.
 * Self-contained: its functions and modules come in as arguments, required by
 * the thread's source text (a bundler rewrites `require` calls in code, never
 * in a string).
 */
function writerMain(
  apply: typeof applyBatch,
  group: typeof commitGroup,
  isIo: typeof isIoFailure,
  threads: typeof import('node:worker_threads'),
  Driver: typeof import('better-sqlite3'),
): void {
  const { parentPort, workerData, receiveMessageOnPort } = threads;
  const port = parentPort!;
  const data = workerData as WriterData;
  const db = new Driver(data.path);
  for (const p of data.pragmas) db.pragma(p);
  const texts = new Map<number, string>();
  const statements = new Map<number, StatementLike>();
  const prepared = (step: WireStep): StatementLike => {
    let s = statements.get(step.q);
    if (!s) {
      s = (db as unknown as DatabaseLike).prepare(texts.get(step.q) as string);
      statements.set(step.q, s);
    }
    return s;
  };
  const state: { broken: ErrorShape | null } = { broken: null };
  let closing = false;
  // A batch crosses as JSON text (one string copy; the structured clone of many small values costs more).
  port.on('message', (first: string | { close: true }) => {
    if (closing) return;
    const batches: WireStep[][][] = [];
    let writes = 0;
    let m: string | { close: true } | undefined = first;
    while (m !== undefined) {
      if (typeof m !== 'string') {
        closing = true;
        break;
      }
      const batch = JSON.parse(m) as WireStep[][];
      // Texts first: a step that first carries its text may be one that is skipped.
      for (const steps of batch) for (const s of steps) if (s.sql !== undefined) texts.set(s.q, s.sql);
      batches.push(batch);
      writes += batch.length;
      if (writes >= data.maxBatch) break;
      m = (receiveMessageOnPort(port) as { message: string | { close: true } } | undefined)?.message;
    }
    if (batches.length > 0) {
      const results = group((writes: WireStep[][]) => apply(db as unknown as DatabaseLike, prepared, writes), isIo, state, batches);
      port.postMessage(JSON.stringify(results));
    }
    if (closing) {
      db.close();
      port.close();
    }
  });
  port.postMessage({ ready: true });
}

/** An error from the other side, as the class the store would have thrown inline. */
export function errorFrom(e: ErrorShape): Error {
  if (e.sqlite) return new Database.SqliteError(e.message, e.code ?? 'SQLITE_ERROR');
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {});
}

interface Pending {
  steps: Step[];
  resolve: (v: StepResult[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Queues writes and commits them in groups. Batches in flight settle in the
 * order they were sent; a subclass says how many may be in flight at once
 * (one, unless the other side commits them in order itself).
 */
export abstract class GroupCommit {
  private queue: Pending[] = [];
  private inFlight: Pending[][] = [];
  private scheduled = false;
  private failed: Error | null = null;
  private drained: Array<() => void> = [];
  /** Transactions committed and the writes they held. */
  readonly commits = { transactions: 0, writes: 0 };

  constructor(private readonly maxInFlight = 1) {}

  /** Queues a write; resolves with its step results once its transaction committed. */
  write(steps: Step[]): Promise<StepResult[]> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<StepResult[]>((resolve, reject) => {
      this.queue.push({ steps, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /** Sends a batch to be committed; `settle` is called with its result. */
  protected abstract send(batch: Step[][]): void;

  /** Batches sent and not yet settled. */
  protected get inFlightCount(): number {
    return this.inFlight.length;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight.length >= this.maxInFlight) return;
    this.scheduled = true;
    // After the I/O callbacks of this turn (and the promise continuations they run): their writes join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.next();
    });
  }

  private next(): void {
    if (this.queue.length === 0) {
      if (this.inFlight.length === 0) for (const d of this.drained.splice(0)) d();
      return;
    }
    while (this.queue.length > 0 && this.inFlight.length < this.maxInFlight) {
      const batch = this.queue.length > MAX_BATCH ? this.queue.splice(0, MAX_BATCH) : this.queue.splice(0);
      this.inFlight.push(batch);
      this.send(batch.map((p) => p.steps));
    }
  }

  /**
   * The result of the oldest batch in flight; `ownTransaction` false when it
   * shared its transaction with the batch settled before it (the count of
   * transactions is of commits, not of batches).
   */
  protected settle(result: BatchResult, ownTransaction = true): void {
    const batch = this.inFlight.shift() ?? [];
    if ('fatal' in result) {
      const err = errorFrom(result.fatal);
      for (const p of batch) p.reject(err);
      // A commit that failed on I/O (its sync, most often) may have left frames in the log that a crash
      // would bring back as committed: the files' state is unknown, so nothing more is written to them.
      if (isIoFailure(result.fatal.code)) {
        this.fail(Object.assign(new Error(`the SQLite store failed to write to disk and refuses further writes: ${err.message}`), { code: result.fatal.code }));
        return;
      }
    } else {
      if (ownTransaction) this.commits.transactions++;
      this.commits.writes += batch.length;
      batch.forEach((p, i) => {
        const o = result.outcomes[i];
        if (o?.ok) p.resolve(o.value);
        else p.reject(o ? errorFrom(o.error) : new Error('the SQLite writer answered fewer writes than it was sent'));
      });
    }
    // What arrived while this one committed (and what its callers write next) is the next batch.
    this.schedule();
  }

  /** The writer cannot go on: every write queued or in flight fails, and every later one. */
  protected fail(err: Error): void {
    this.failed ??= err;
    const all = [...this.inFlight.flat(), ...this.queue.splice(0)];
    this.inFlight = [];
    for (const p of all) p.reject(err);
    for (const d of this.drained.splice(0)) d();
  }

  /** Commits what is queued (waiting for what is in flight), then stops. */
  abstract close(): Promise<void>;
}

/** Commits on the caller's connection, in the event loop (an in-memory database). */
export class InlineCommit extends GroupCommit {
  private readonly statements = new Map<string, StatementLike>();

  constructor(private readonly db: Database.Database) {
    super();
  }

  protected send(batch: Step[][]): void {
    const prepared = (step: Step): StatementLike => {
      let s = this.statements.get(step.sql);
      if (!s) {
        s = (this.db as unknown as DatabaseLike).prepare(step.sql);
        this.statements.set(step.sql, s);
      }
      return s;
    };
    this.settle(applyBatch(this.db as unknown as DatabaseLike, prepared, batch));
  }

  async close(): Promise<void> {
    await this.idle();
  }
}

/** Commits in a writer thread with its own connection to the file. */
export class ThreadCommit extends GroupCommit {
  private readonly worker: Worker;
  private readonly ready: Promise<void>;
  private closing: Promise<void> | null = null;
  private exited = false;
  /** SQL texts the thread has been sent, by number: each text crosses once. */
  private readonly sqlIds = new Map<string, number>();

  constructor(path: string, pragmas: string[]) {
    // The thread commits batches in the order sent and takes all that wait at once: the loop never holds one back.
    super(Number.POSITIVE_INFINITY);
    const data: WriterData = { driver: createRequire(import.meta.url).resolve('better-sqlite3'), path, pragmas, maxBatch: MAX_BATCH };
    // Should a bundler keep names with its `__name` helper (tsx does), the thread has a no-op of that name.
    const source =
      `"use strict";\nconst __name = (f) => f;\n` +
      `(${writerMain.toString()})(${applyBatch.toString()}, ${commitGroup.toString()}, ${isIoFailure.toString()}, require('node:worker_threads'), require(require('node:worker_threads').workerData.driver));\n`;
    this.worker = new Worker(source, { eval: true, workerData: data });
    // Idle, the thread does not keep the process alive; a batch in flight does.
    this.worker.unref();
    let readyResolve!: () => void;
    let readyReject!: (err: unknown) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (m: string | { ready: true }) => {
      if (typeof m !== 'string') {
        readyResolve();
        return;
      }
      // One message is one transaction, however many batches it held.
      (JSON.parse(m) as BatchResult[]).forEach((result, i) => this.settle(result, i === 0));
      if (this.inFlightCount === 0) this.worker.unref();
    });
    this.worker.on('error', (err) => {
      readyReject(err);
      this.fail(Object.assign(new Error(`the SQLite writer thread failed: ${err.message}`), { cause: err }));
    });
    this.worker.on('exit', (code) => {
      this.exited = true;
      readyReject(new Error(`the SQLite writer thread exited (${code})`));
      this.fail(new Error(`the SQLite writer thread exited (${code})`));
    });
  }

  protected send(batch: Step[][]): void {
    const wire = batch.map((steps) =>
      steps.map((s): WireStep => {
        let q = this.sqlIds.get(s.sql);
        const first = q === undefined;
        if (q === undefined) {
          q = this.sqlIds.size;
          this.sqlIds.set(s.sql, q);
        }
        return { q, ...(first ? { sql: s.sql } : {}), params: s.params, ...(s.rows ? { rows: true } : {}), ...(s.ifChanged ? { ifChanged: true } : {}) };
      }),
    );
    this.worker.ref();
    // Before the thread has opened its connection the message waits in its port: order is kept.
    this.worker.postMessage(JSON.stringify(wire));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.idle();
      if (this.exited) return;
      await this.ready.catch(() => undefined);
      const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      this.worker.ref();
      this.worker.postMessage({ close: true });
      await exited;
    })();
    return this.closing;
  }
}
