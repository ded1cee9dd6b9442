// The embedded store: one SQLite file (better-sqlite3, WAL). A single broker
// process owns the file, so claims here never contend, but they follow the same
// rules as PostgreSQL's so the broker logic is one.
//
// Group commit (sqlite-writer.ts): every write is queued; the writes that
// arrive while one transaction commits run as the next one (each in its own
// savepoint, so one write failing leaves the others), committed with one fsync
// (synchronous = FULL) in a writer thread with its own connection, so the
// event loop never waits on the disk. A caller's promise settles only after the
// transaction holding its write committed, so a write is durable when its
// caller acts on it (intent before action). Reads run at once on this thread's
// connection and see only committed (synced) writes: in WAL mode a commit
// becomes visible to other connections after its fsync.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { GroupCommit, InlineCommit, ThreadCommit, type Step, type StepResult } from './sqlite-writer.ts';
import type { CloudGrant } from '../../iam/types.ts';
import type { DueMove, EventRow, GrantRow, Issued, LeaseRow, LeaseState, LoginRow, NewGrant, NewIntent, Renewed, Store, StoreStats, WorkloadRow } from '../types.ts';
import { LIVE_LEASE_STATES } from '../types.ts';
import { eventFromRow, grantFromRow, leaseFromRow, loginFromRow, workloadFromRow } from './rows.ts';
import { GRANT_SQL, cloudGrantsMigration } from './grant-sql.ts';
import { CLAIMS_MIGRATION, LEASE_SQL, registryMigration } from './lease-sql.ts';
import { LOGIN_SQL, vaultLoginsMigration } from './login-sql.ts';

/** Numbered migrations; never edit one that shipped, add the next. */
export const SQLITE_MIGRATIONS: readonly string[] = [
  // 1: registry
  registryMigration('INTEGER'),
  // 2: the cache lookup (workload, role, scope) without scanning every lease of the workload
  `CREATE INDEX leases_cache ON leases (workload_id, role, scope_key, state, expires_at);`,
  // 3: cloud grants, one per lease at most (the plan is the write-ahead entry; grant_json holds the credential: secret)
  cloudGrantsMigration('INTEGER'),
  // 4: the broker's Vault logins (times only, no token) and, on each lease, the login that obtained it
  vaultLoginsMigration('INTEGER'),
  // 5: claimed rows, so a restart releases them without reading every lease
  CLAIMS_MIGRATION,
];

/**
 * Every connection's settings. Every transaction is durable before the broker
 * acts on it (intent before action): synchronous = FULL.
 */
const PRAGMAS = ['journal_mode = WAL', 'synchronous = FULL', 'busy_timeout = 5000'];
/**
 * The writer's page cache holds the indexes of 100,000 leases (random keys:
 * jti, lease id, row id), so a write rarely reads the file. The reading
 * connection keeps SQLite's default: another connection's commit empties a
 * connection's whole cache, so a large one would only cost memory.
 */
const WRITER_PRAGMAS = [...PRAGMAS, 'cache_size = -32768'];

const EVENT_INSERT = 'INSERT INTO events (at, kind, workload_id, lease_row_id, reason, detail) VALUES (?, ?, ?, ?, ?, ?)';

const rowsOf = (r: StepResult | undefined): Record<string, unknown>[] => (Array.isArray(r) ? r : []);
const changesOf = (r: StepResult | undefined): number => (typeof r === 'number' ? r : 0);

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private closed = false;
  private readonly path: string;
  /** Migrations run on this thread's connection, before any write is queued. */
  private writer: GroupCommit | null = null;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.path = path;
    this.db = new Database(path);
    for (const p of PRAGMAS) this.db.pragma(p);
    // The writer thread boots (about 0.15 s) while migrations and the broker's Vault login run.
    if (path !== ':memory:') this.committer();
  }

  /** Transactions committed and writes they held (group-commit statistics). */
  get commits(): { transactions: number; writes: number } {
    return this.writer?.commits ?? { transactions: 0, writes: 0 };
  }

  private committer(): GroupCommit {
    if (!this.writer) {
      // A file: a writer thread with its own connection. In memory, one connection is the database: commit inline.
      this.writer = this.path === ':memory:' ? new InlineCommit(this.db) : new ThreadCommit(this.path, WRITER_PRAGMAS);
    }
    return this.writer;
  }

  async migrate(): Promise<number> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
    let version = row.v ?? 0;
    for (let i = version; i < SQLITE_MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(SQLITE_MIGRATIONS[i]);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(i + 1, Date.now());
      })();
      version = i + 1;
    }
    return version;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // What was queued before close still commits; then the writer's connection, then this one.
    try {
      await this.writer?.close();
    } finally {
      this.db.close();
    }
  }

  /** Queues a write (its steps run in one savepoint) for the next group commit; settles once that transaction committed. */
  private write(steps: Step[]): Promise<StepResult[]> {
    if (this.closed) return Promise.reject(new Error('the SQLite store is closed'));
    return this.committer().write(steps);
  }

  /** How the connection that commits is set (asked of it): WAL, and an fsync at every commit. */
  async durability(): Promise<{ journalMode: string; synchronous: number }> {
    const [mode, sync] = await this.write([
      { sql: 'PRAGMA journal_mode', params: [], rows: true },
      { sql: 'PRAGMA synchronous', params: [], rows: true },
    ]);
    return { journalMode: String(rowsOf(mode)[0]?.journal_mode), synchronous: Number(rowsOf(sync)[0]?.synchronous) };
  }

  commitStats(): { transactions: number; writes: number } {
    return { ...this.commits };
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared once per SQL text. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private all(sql: string, ...params: unknown[]): Record<string, unknown>[] {
    return this.stmt(sql).all(...params) as Record<string, unknown>[];
  }

  private one(sql: string, ...params: unknown[]): Record<string, unknown> | undefined {
    return this.stmt(sql).get(...params) as Record<string, unknown> | undefined;
  }

  /** The first row of a read, mapped; null when there is none. */
  private first<T>(fromRow: (r: Record<string, unknown>) => T, sql: string, ...params: unknown[]): T | null {
    const r = this.one(sql, ...params);
    return r ? fromRow(r) : null;
  }

  /** A write statement through the group commit; resolves to its changed row count. */
  private async run(sql: string, ...params: unknown[]): Promise<number> {
    return changesOf((await this.write([{ sql, params }]))[0]);
  }

  async createWorkload(w: WorkloadRow): Promise<void> {
    await this.run(
      `INSERT INTO workloads (id, name, heartbeat_interval_ms, pid, host, replica, state, reason, created_at, last_heartbeat_at, ended_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      w.id, w.name, w.heartbeatIntervalMs, w.pid, w.host, w.replica, w.state, w.reason, w.createdAt, w.lastHeartbeatAt, w.endedAt,
    );
  }

  async getWorkload(id: string): Promise<WorkloadRow | null> {
    return this.first(workloadFromRow, 'SELECT * FROM workloads WHERE id = ?', id);
  }

  async heartbeat(id: string, at: number): Promise<boolean> {
    return (await this.run(`UPDATE workloads SET last_heartbeat_at = ? WHERE id = ? AND state = 'active'`, at, id)) === 1;
  }

  async endWorkload(id: string, reason: string, at: number): Promise<boolean> {
    return (await this.run(`UPDATE workloads SET state = 'ended', reason = ?, ended_at = ? WHERE id = ? AND state = 'active'`, reason, at, id)) === 1;
  }

  async activeWorkloads(): Promise<WorkloadRow[]> {
    return this.all(`SELECT * FROM workloads WHERE state = 'active'`).map(workloadFromRow);
  }

  async insertIntent(i: NewIntent): Promise<LeaseRow> {
    const [rows] = await this.write([
      {
        sql: `INSERT INTO leases (id, workload_id, role, scope_key, state, created_at, claim_owner, claim_until)
              VALUES (?, ?, ?, ?, 'intent', ?, ?, ?) RETURNING *`,
        params: [i.id, i.workloadId, i.role, i.scopeKey, i.at, i.owner, i.claimUntil],
        rows: true,
      },
    ]);
    return leaseFromRow(rowsOf(rows)[0]);
  }

  async completeIntent(id: string, owner: string, x: Issued, e?: EventRow): Promise<LeaseRow | null> {
    const steps: Step[] = [
      {
        sql: `UPDATE leases SET state = 'active', lease_id = ?, jti = ?, token = ?, ttl_ms = ?, token_issued_at = ?, expires_at = ?,
                due_at = ?, login_id = ?, claim_owner = NULL, claim_until = 0
              WHERE id = ? AND state = 'intent' AND claim_owner = ? RETURNING *`,
        params: [x.leaseId, x.jti, x.token, x.ttlMs, x.tokenIssuedAt, x.expiresAt, x.dueAt, x.loginId, id, owner],
        rows: true,
      },
    ];
    // The record commits with the completion, or not at all (a lost claim).
    if (e) steps.push({ sql: EVENT_INSERT, params: [e.at, e.kind, e.workloadId, e.leaseRowId, e.reason, e.detail], ifChanged: true });
    const [rows] = await this.write(steps);
    const row = rowsOf(rows)[0];
    return row ? leaseFromRow(row) : null;
  }

  async closeIntent(id: string, state: 'failed' | 'abandoned', reason: string, at: number): Promise<void> {
    await this.run(`UPDATE leases SET state = ?, reason = ?, ended_at = ?, claim_owner = NULL WHERE id = ? AND state = 'intent'`, state, reason, at, id);
  }

  async staleIntents(now: number): Promise<LeaseRow[]> {
    return this.all(`SELECT * FROM leases WHERE state = 'intent' AND claim_until < ?`, now).map(leaseFromRow);
  }

  async openIntentCount(now: number): Promise<number> {
    return Number(this.one(`SELECT COUNT(*) AS n FROM leases WHERE state = 'intent' AND claim_until >= ?`, now)?.n ?? 0);
  }

  async getLease(id: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, 'SELECT * FROM leases WHERE id = ?', id);
  }

  async getLeaseByJti(jti: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, 'SELECT * FROM leases WHERE jti = ? ORDER BY created_at DESC LIMIT 1', jti);
  }

  async getLeaseByVaultId(leaseId: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, 'SELECT * FROM leases WHERE lease_id = ? ORDER BY created_at DESC LIMIT 1', leaseId);
  }

  async chainEnd(id: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, LEASE_SQL.chainEnd.sqlite, id);
  }

  async linkSuccessor(id: string, successorId: string): Promise<boolean> {
    return (await this.run(LEASE_SQL.linkSuccessor.sqlite, successorId, id)) === 1;
  }

  async findCached(workloadId: string, role: string, scopeKey: string): Promise<LeaseRow | null> {
    return this.first(
      leaseFromRow,
      `SELECT * FROM leases WHERE workload_id = ? AND role = ? AND scope_key = ? AND state = 'active'
       ORDER BY expires_at DESC LIMIT 1`,
      workloadId, role, scopeKey,
    );
  }

  async leasesOfWorkload(workloadId: string, states: readonly LeaseState[]): Promise<LeaseRow[]> {
    return this.all(`SELECT * FROM leases WHERE workload_id = ? AND state IN (${placeholders(states.length)})`, workloadId, ...states).map(leaseFromRow);
  }

  async listLeases(states: readonly LeaseState[], limit: number): Promise<LeaseRow[]> {
    return this.all(
      `SELECT * FROM leases WHERE state IN (${placeholders(states.length)}) ORDER BY created_at LIMIT ?`,
      ...states, limit,
    ).map(leaseFromRow);
  }

  async ownedVaultLeaseIds(): Promise<Set<string>> {
    // Most rows are live: one pass over the table beats a row lookup per entry of the state index (a restart with 100,000: 0.2 s, not 0.45 s).
    const rows = this.all(
      `SELECT lease_id FROM leases NOT INDEXED WHERE lease_id IS NOT NULL AND state IN (${placeholders(LIVE_LEASE_STATES.length)})`,
      ...LIVE_LEASE_STATES,
    );
    return new Set(rows.map((r) => String(r.lease_id)));
  }

  async knownRoles(): Promise<string[]> {
    // The cache index holds role and state: scanned alone, without the rows (and their tokens).
    return this.all(`SELECT DISTINCT role FROM leases INDEXED BY leases_cache WHERE state IN ('intent', 'active', 'revoking', 'irrevocable')`).map((r) =>
      String(r.role),
    );
  }

  async leasesOlderThan(before: number, limit: number): Promise<LeaseRow[]> {
    return this.all(`SELECT * FROM leases WHERE state = 'active' AND created_at < ? LIMIT ?`, before, limit).map(leaseFromRow);
  }

  async claimDue(owner: string, now: number, claimUntil: number, limit: number): Promise<LeaseRow[]> {
    // One statement, as in PostgreSQL; the claim lapses halfway from due to expiry at the latest.
    const [rows] = await this.write([
      {
        sql: `UPDATE leases SET claim_owner = ?, claim_until = MIN(?, MAX(? + 250, CAST((due_at + expires_at) / 2 AS INTEGER)))
              WHERE id IN (SELECT id FROM leases WHERE state IN ('active', 'revoking') AND due_at <= ? AND claim_until < ?
                           ORDER BY due_at LIMIT ?)
              RETURNING *`,
        params: [owner, claimUntil, now, now, now, limit],
        rows: true,
      },
    ]);
    return rowsOf(rows).map(leaseFromRow).sort((a, b) => a.dueAt - b.dueAt);
  }

  async releaseClaims(owner: string | null): Promise<void> {
    const where = owner === null ? 'claim_owner IS NOT NULL' : 'claim_owner = ?';
    const params = owner === null ? [] : [owner];
    await this.write([
      { sql: `UPDATE leases SET claim_owner = NULL, claim_until = 0 WHERE ${where}`, params },
      { sql: `UPDATE cloud_grants SET claim_owner = NULL, claim_until = 0 WHERE ${where}`, params },
    ]);
  }

  async recordRenewal(id: string, owner: string, x: Renewed): Promise<boolean> {
    return (
      (await this.run(
        `UPDATE leases SET token = ?, token_issued_at = ?, expires_at = ?, due_at = ?, attempts = 0, last_error = NULL,
           renewals = renewals + 1, claim_owner = NULL, claim_until = 0
         WHERE id = ? AND state = 'active' AND claim_owner = ?`,
        x.token, x.tokenIssuedAt, x.expiresAt, x.dueAt, id, owner,
      )) === 1
    );
  }

  async recordFailure(id: string, owner: string, attempts: number, dueAt: number, error: string): Promise<boolean> {
    return (
      (await this.run(
        `UPDATE leases SET attempts = ?, due_at = ?, last_error = ?, claim_owner = NULL, claim_until = 0
         WHERE id = ? AND claim_owner = ? AND state IN ('active', 'revoking')`,
        attempts, dueAt, error, id, owner,
      )) === 1
    );
  }

  async markRevoking(id: string, reason: string, dueAt: number, replacedBy?: string): Promise<boolean> {
    const [changed] = await this.write([
      {
        sql: `UPDATE leases SET state = 'revoking', reason = ?, due_at = ?, attempts = 0, replaced_by = COALESCE(?, replaced_by),
                claim_owner = NULL, claim_until = 0
              WHERE id = ? AND state = 'active'`,
        params: [reason, dueAt, replacedBy ?? null, id],
      },
      { sql: GRANT_SQL.revokeOfLease.sqlite, params: [reason, dueAt, id], ifChanged: true },
    ]);
    return changesOf(changed) === 1;
  }

  async finish(id: string, state: 'revoked' | 'expired' | 'gone' | 'irrevocable', at: number, error?: string): Promise<void> {
    await this.write([
      {
        sql: `UPDATE leases SET state = ?, ended_at = ?, last_error = COALESCE(?, last_error), claim_owner = NULL, claim_until = 0,
                token = CASE WHEN ? = 'irrevocable' THEN token ELSE NULL END
              WHERE id = ?`,
        params: [state, at, error ?? null, state, id],
      },
      { sql: GRANT_SQL.revokeOfLease.sqlite, params: [`lease_${state}`, at, id] },
    ]);
  }

  // ---- cloud grants ----

  async insertGrant(g: NewGrant): Promise<void> {
    await this.run(GRANT_SQL.insert.sqlite, g.id, g.leaseRowId, g.workloadId, g.cloud, JSON.stringify(g.plan), JSON.stringify(g.facts), g.at, g.at, g.owner, g.claimUntil);
  }

  async completeGrant(id: string, owner: string, grant: CloudGrant, dueAt: number): Promise<boolean> {
    return (await this.run(GRANT_SQL.complete.sqlite, JSON.stringify(grant), grant.expiresAt, dueAt, id, owner)) === 1;
  }

  async closeGrant(id: string, state: 'failed' | 'rolled_back', reason: string, at: number, detail?: string, cleanupAt?: number | null): Promise<void> {
    if (cleanupAt !== undefined && cleanupAt !== null) await this.run(GRANT_SQL.closeToCleanup.sqlite, state, reason, detail ?? null, cleanupAt, id);
    else await this.run(GRANT_SQL.close.sqlite, state, reason, detail ?? null, at, id);
  }

  async getGrant(id: string): Promise<GrantRow | null> {
    return this.first(grantFromRow, 'SELECT * FROM cloud_grants WHERE id = ?', id);
  }

  async grantOfLease(leaseRowId: string): Promise<GrantRow | null> {
    return this.first(grantFromRow, 'SELECT * FROM cloud_grants WHERE lease_row_id = ? ORDER BY created_at DESC LIMIT 1', leaseRowId);
  }

  async grantsOfLeases(leaseRowIds: readonly string[]): Promise<Map<string, GrantRow>> {
    const out = new Map<string, GrantRow>();
    for (let i = 0; i < leaseRowIds.length; i += 500) {
      const part = leaseRowIds.slice(i, i + 500);
      const rows = this.all(`SELECT * FROM cloud_grants WHERE lease_row_id IN (${placeholders(part.length)}) ORDER BY created_at`, ...part);
      for (const r of rows) out.set(String(r.lease_row_id), grantFromRow(r));
    }
    return out;
  }

  private async claimGrants(select: string, owner: string, now: number, claimUntil: number, limit: number): Promise<GrantRow[]> {
    const [rows] = await this.write([
      {
        sql: `UPDATE cloud_grants SET claim_owner = ?, claim_until = ? WHERE id IN (SELECT id FROM (${select})) RETURNING *`,
        params: [owner, claimUntil, now, now, limit],
        rows: true,
      },
    ]);
    return rowsOf(rows).map(grantFromRow).sort((a, b) => a.dueAt - b.dueAt);
  }

  async claimStaleGrants(owner: string, now: number, claimUntil: number, limit: number): Promise<GrantRow[]> {
    return this.claimGrants(GRANT_SQL.staleIntents.sqlite, owner, now, claimUntil, limit);
  }

  async claimDueGrants(owner: string, now: number, claimUntil: number, limit: number): Promise<GrantRow[]> {
    return this.claimGrants(GRANT_SQL.due.sqlite, owner, now, claimUntil, limit);
  }

  async recordGrantRefresh(id: string, owner: string, grant: CloudGrant, dueAt: number): Promise<boolean> {
    return (await this.run(GRANT_SQL.refresh.sqlite, JSON.stringify(grant), grant.expiresAt, dueAt, id, owner)) === 1;
  }

  async recordGrantFailure(id: string, owner: string, attempts: number, dueAt: number, error: string): Promise<boolean> {
    return (await this.run(GRANT_SQL.failure.sqlite, attempts, dueAt, error, id, owner)) === 1;
  }

  async grantTornDown(id: string, owner: string, detail: string, cleanupAt: number, _at: number): Promise<boolean> {
    return (await this.run(GRANT_SQL.tornDown.sqlite, detail, cleanupAt, id, owner)) === 1;
  }

  async grantDone(id: string, owner: string, detail: string | null, at: number): Promise<boolean> {
    return (await this.run(GRANT_SQL.done.sqlite, detail, at, id, owner)) === 1;
  }

  async grantIrrevocable(id: string, at: number, error: string): Promise<void> {
    await this.run(GRANT_SQL.irrevocable.sqlite, at, error, id);
  }

  async refreshGrantOfLease(leaseRowId: string, leaseExpiresAt: number, at: number): Promise<void> {
    await this.run(GRANT_SQL.refreshOfLease.sqlite, at, leaseRowId, leaseExpiresAt, at);
  }

  async revokeGrantsOfEndedLeases(now: number): Promise<number> {
    return this.run(GRANT_SQL.revokeOrphaned.sqlite, now);
  }

  // ---- the broker's Vault logins ----

  async recordLogin(l: LoginRow): Promise<void> {
    await this.run(LOGIN_SQL.insert.sqlite, l.id, l.replica, l.method, l.loggedInAt, l.expiresAt, l.renewable ? 1 : 0, l.final ? 1 : 0, l.updatedAt);
  }

  async updateLogin(id: string, expiresAt: number | null, final: boolean, at: number): Promise<void> {
    await this.run(LOGIN_SQL.update.sqlite, expiresAt, final ? 1 : 0, at, id);
  }

  async logins(): Promise<LoginRow[]> {
    return this.all(LOGIN_SQL.all.sqlite).map(loginFromRow);
  }

  async finalizeLogins(replica: string | null, except: string | null, at: number): Promise<number> {
    if (replica === null) return this.run(LOGIN_SQL.finalizeAll.sqlite, at, except ?? '');
    return this.run(LOGIN_SQL.finalizeReplica.sqlite, at, except ?? '', replica);
  }

  async leasesOfLoginDueAfter(loginId: string, after: number, limit: number): Promise<LeaseRow[]> {
    return this.all(LOGIN_SQL.dueAfter.sqlite, loginId, after, limit).map(leaseFromRow);
  }

  async bringForward(moves: readonly DueMove[]): Promise<number> {
    if (moves.length === 0) return 0;
    const sql = `UPDATE leases SET due_at = ? WHERE id = ? AND state = 'active' AND due_at > ?`;
    const results = await this.write(moves.map((m) => ({ sql, params: [m.dueAt, m.id, m.dueAt] })));
    return results.reduce<number>((n, r) => n + changesOf(r), 0);
  }

  async pruneLogins(before: number): Promise<number> {
    return this.run(LOGIN_SQL.prune.sqlite, before);
  }

  async addEvent(e: EventRow): Promise<void> {
    await this.run(EVENT_INSERT, e.at, e.kind, e.workloadId, e.leaseRowId, e.reason, e.detail);
  }

  async recentEvents(limit: number): Promise<EventRow[]> {
    return this.all('SELECT * FROM events ORDER BY id DESC LIMIT ?', limit).map(eventFromRow);
  }

  async countEvents(workloadId: string, kind: string, since: number): Promise<number> {
    return Number(this.one('SELECT COUNT(*) AS n FROM events WHERE workload_id = ? AND kind = ? AND at >= ?', workloadId, kind, since)?.n ?? 0);
  }

  async stats(): Promise<StoreStats> {
    const byState: Record<string, number> = {};
    for (const r of this.all('SELECT state, COUNT(*) AS n FROM leases GROUP BY state')) byState[String(r.state)] = Number(r.n);
    const w = { active: 0, ended: 0 };
    for (const r of this.all('SELECT state, COUNT(*) AS n FROM workloads GROUP BY state')) {
      if (r.state === 'active') w.active = Number(r.n);
      else w.ended += Number(r.n);
    }
    const grants: StoreStats['grants'] = {};
    for (const r of this.all('SELECT cloud, state, COUNT(*) AS n FROM cloud_grants GROUP BY cloud, state')) {
      (grants[String(r.cloud)] ??= {})[String(r.state)] = Number(r.n);
    }
    return { byState, workloads: w, grants };
  }
}
