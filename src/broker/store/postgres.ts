// The scale-out store: PostgreSQL through node-postgres. Several broker
// replicas share one database; due leases are claimed with
// FOR UPDATE SKIP LOCKED and a claim that expires, so two replicas never work
// the same lease at once and a dead replica's leases return to the pool.

import pg from 'pg';
import type { CloudGrant } from '../../iam/types.ts';
import type { DueMove, EventRow, GrantRow, Issued, LeaseRow, LeaseState, LoginRow, NewGrant, NewIntent, Renewed, Store, StoreStats, WorkloadRow } from '../types.ts';
import { LIVE_LEASE_STATES } from '../types.ts';
import { GRANT_SQL, cloudGrantsMigration, pgClaim } from './grant-sql.ts';
import { CLAIMS_MIGRATION, LEASE_SQL, registryMigration } from './lease-sql.ts';
import { LOGIN_SQL, vaultLoginsMigration } from './login-sql.ts';
import { eventFromRow, grantFromRow, leaseFromRow, loginFromRow, workloadFromRow } from './rows.ts';

/** Numbered migrations; never edit one that shipped, add the next. */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: registry
  registryMigration('BIGINT'),
  // 2: the cache lookup (workload, role, scope), as SQLite's migration 2
  `CREATE INDEX leases_cache ON leases (workload_id, role, scope_key, state, expires_at);`,
  // 3: cloud grants, one per lease at most (the plan is the write-ahead entry; grant_json holds the credential: secret)
  cloudGrantsMigration('BIGINT'),
  // 4: the broker's Vault logins (times only, no token) and, on each lease, the login that obtained it
  vaultLoginsMigration('BIGINT'),
  // 5: claimed rows, so a restart releases them without reading every lease
  CLAIMS_MIGRATION,
];

/**
 * Group commit: items added while a batch is being written wait and go
 * together in the next; one batch in flight at a time. `write` answers per
 * item, in order. A batch is one statement, so when it throws none of it was
 * written: a batch refused for what one of its rows holds (a constraint or
 * data error) is written again one item at a time, so only that item's caller
 * fails (as SQLite's savepoints do); any other error (the connection, say)
 * rejects every item of the batch.
 */
class Batcher<T, R> {
  private queue: Array<{ item: T; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  private busy = false;

  constructor(private readonly writeBatch: (items: T[]) => Promise<R[]>) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.busy) {
        this.busy = true;
        // After this turn's I/O callbacks: what they add joins the batch.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 1000);
      try {
        const results = await this.writeBatch(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]));
      } catch (err) {
        if (batch.length > 1 && refusedForItsRows(err)) {
          for (const b of batch) {
            try {
              b.resolve((await this.writeBatch([b.item]))[0]);
            } catch (alone) {
              b.reject(alone);
            }
          }
        } else {
          for (const b of batch) b.reject(err);
        }
      }
    }
    this.busy = false;
  }
}

/** A statement refused for the data it held: SQLSTATE class 22 (data exception) or 23 (integrity constraint). */
function refusedForItsRows(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

/** Serialises migrations across replicas starting together. */
const MIGRATION_LOCK = 0x74766d62; // 'tvmb'

type Raw = Record<string, unknown>;

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private closed = false;

  constructor(url: string, poolSize = 10) {
    this.pool = new pg.Pool({ connectionString: url, max: poolSize });
    // An idle client losing its connection must not crash the process.
    this.pool.on('error', () => undefined);
  }

  private async q(sql: string, params: unknown[] = []): Promise<pg.QueryResult<Raw>> {
    return this.pool.query<Raw>(sql, params);
  }

  private async rows(sql: string, params: unknown[] = []): Promise<Raw[]> {
    return (await this.q(sql, params)).rows;
  }

  /** The first row of a read, mapped; null when there is none. */
  private async first<T>(fromRow: (r: Raw) => T, sql: string, params: unknown[] = []): Promise<T | null> {
    const r = await this.rows(sql, params);
    return r[0] ? fromRow(r[0]) : null;
  }

  private async count(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.q(sql, params)).rowCount ?? 0;
  }

  /** One transaction on one pooled client. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const v = await fn(c);
      await c.query('COMMIT');
      return v;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async migrate(): Promise<number> {
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const r = await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
      let version = r.rows[0]?.v ?? 0;
      for (let i = version; i < POSTGRES_MIGRATIONS.length; i++) {
        await c.query(POSTGRES_MIGRATIONS[i]);
        await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [i + 1, Date.now()]);
        version = i + 1;
      }
      return version;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  async createWorkload(w: WorkloadRow): Promise<void> {
    await this.q(
      `INSERT INTO workloads (id, name, heartbeat_interval_ms, pid, host, replica, state, reason, created_at, last_heartbeat_at, ended_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [w.id, w.name, w.heartbeatIntervalMs, w.pid, w.host, w.replica, w.state, w.reason, w.createdAt, w.lastHeartbeatAt, w.endedAt],
    );
  }

  async getWorkload(id: string): Promise<WorkloadRow | null> {
    return this.first(workloadFromRow, 'SELECT * FROM workloads WHERE id = $1', [id]);
  }

  async heartbeat(id: string, at: number): Promise<boolean> {
    return (await this.count(`UPDATE workloads SET last_heartbeat_at = $1 WHERE id = $2 AND state = 'active'`, [at, id])) === 1;
  }

  async endWorkload(id: string, reason: string, at: number): Promise<boolean> {
    return (await this.count(`UPDATE workloads SET state = 'ended', reason = $1, ended_at = $2 WHERE id = $3 AND state = 'active'`, [reason, at, id])) === 1;
  }

  async activeWorkloads(): Promise<WorkloadRow[]> {
    return (await this.rows(`SELECT * FROM workloads WHERE state = 'active'`)).map(workloadFromRow);
  }

  // Group commit of the issue path: the intents (and the completions) that arrive while
  // one batch commits go in the next, as one statement over arrays (unnest): one
  // transaction and one WAL flush for all of them. A caller resolves once its batch
  // committed; a batch refused for one of its rows is written again row by row (Batcher).
  private readonly intents = new Batcher<NewIntent, LeaseRow | null>(async (batch) => {
    const cols = (f: (i: NewIntent) => unknown) => batch.map(f);
    const rows = await this.rows(
      `INSERT INTO leases (id, workload_id, role, scope_key, state, created_at, claim_owner, claim_until)
       SELECT v.id, v.workload_id, v.role, v.scope_key, 'intent', v.created_at, v.claim_owner, v.claim_until
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[])
           AS v (id, workload_id, role, scope_key, created_at, claim_owner, claim_until)
       RETURNING *`,
      [cols((i) => i.id), cols((i) => i.workloadId), cols((i) => i.role), cols((i) => i.scopeKey), cols((i) => i.at), cols((i) => i.owner), cols((i) => i.claimUntil)],
    );
    const byId = new Map(rows.map((r) => [String(r.id), leaseFromRow(r)]));
    return batch.map((i) => byId.get(i.id) ?? null);
  });

  private readonly completions = new Batcher<{ id: string; owner: string; x: Issued; e?: EventRow }, LeaseRow | null>(async (batch) => {
    const cols = (f: (c: (typeof batch)[number]) => unknown) => batch.map(f);
    // One statement: the completions, and the events of those whose claim held.
    const rows = await this.rows(
      `WITH v AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],
                              $9::bigint[], $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[])
           AS v (id, owner, lease_id, jti, token, ttl_ms, token_issued_at, expires_at, due_at, login_id,
                 ev_at, ev_kind, ev_workload, ev_reason, ev_detail)),
       done AS (
         UPDATE leases l SET state = 'active', lease_id = v.lease_id, jti = v.jti, token = v.token, ttl_ms = v.ttl_ms,
                token_issued_at = v.token_issued_at, expires_at = v.expires_at, due_at = v.due_at, login_id = v.login_id,
                claim_owner = NULL, claim_until = 0
           FROM v WHERE l.id = v.id AND l.state = 'intent' AND l.claim_owner = v.owner
         RETURNING l.*),
       ev AS (
         INSERT INTO events (at, kind, workload_id, lease_row_id, reason, detail)
         SELECT v.ev_at, v.ev_kind, v.ev_workload, v.id, v.ev_reason, v.ev_detail FROM v JOIN done ON done.id = v.id
          WHERE v.ev_kind IS NOT NULL)
       SELECT * FROM done`,
      [
        cols((c) => c.id), cols((c) => c.owner), cols((c) => c.x.leaseId), cols((c) => c.x.jti), cols((c) => c.x.token),
        cols((c) => c.x.ttlMs), cols((c) => c.x.tokenIssuedAt), cols((c) => c.x.expiresAt), cols((c) => c.x.dueAt), cols((c) => c.x.loginId),
        cols((c) => c.e?.at ?? null), cols((c) => c.e?.kind ?? null), cols((c) => c.e?.workloadId ?? null), cols((c) => c.e?.reason ?? null),
        cols((c) => c.e?.detail ?? null),
      ],
    );
    const byId = new Map(rows.map((r) => [String(r.id), leaseFromRow(r)]));
    return batch.map((c) => byId.get(c.id) ?? null);
  });

  async insertIntent(i: NewIntent): Promise<LeaseRow> {
    const row = await this.intents.add(i);
    if (!row) throw new Error(`intent ${i.id} was not written`);
    return row;
  }

  async completeIntent(id: string, owner: string, x: Issued, e?: EventRow): Promise<LeaseRow | null> {
    // An event must name its lease (the statement records it for the lease it completes).
    if (e && e.leaseRowId !== id) throw new Error('completeIntent: the event must be about the lease it completes');
    return this.completions.add({ id, owner, x, e });
  }

  async closeIntent(id: string, state: 'failed' | 'abandoned', reason: string, at: number): Promise<void> {
    await this.q(`UPDATE leases SET state = $1, reason = $2, ended_at = $3, claim_owner = NULL WHERE id = $4 AND state = 'intent'`, [state, reason, at, id]);
  }

  async staleIntents(now: number): Promise<LeaseRow[]> {
    return (await this.rows(`SELECT * FROM leases WHERE state = 'intent' AND claim_until < $1`, [now])).map(leaseFromRow);
  }

  async openIntentCount(now: number): Promise<number> {
    const r = await this.rows(`SELECT COUNT(*) AS n FROM leases WHERE state = 'intent' AND claim_until >= $1`, [now]);
    return Number(r[0]?.n ?? 0);
  }

  async getLease(id: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, 'SELECT * FROM leases WHERE id = $1', [id]);
  }

  async getLeaseByJti(jti: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, 'SELECT * FROM leases WHERE jti = $1 ORDER BY created_at DESC LIMIT 1', [jti]);
  }

  async getLeaseByVaultId(leaseId: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, 'SELECT * FROM leases WHERE lease_id = $1 ORDER BY created_at DESC LIMIT 1', [leaseId]);
  }

  async chainEnd(id: string): Promise<LeaseRow | null> {
    return this.first(leaseFromRow, LEASE_SQL.chainEnd.pg, [id]);
  }

  async linkSuccessor(id: string, successorId: string): Promise<boolean> {
    return (await this.count(LEASE_SQL.linkSuccessor.pg, [successorId, id])) === 1;
  }

  async findCached(workloadId: string, role: string, scopeKey: string): Promise<LeaseRow | null> {
    return this.first(
      leaseFromRow,
      `SELECT * FROM leases WHERE workload_id = $1 AND role = $2 AND scope_key = $3 AND state = 'active' ORDER BY expires_at DESC LIMIT 1`,
      [workloadId, role, scopeKey],
    );
  }

  async leasesOfWorkload(workloadId: string, states: readonly LeaseState[]): Promise<LeaseRow[]> {
    return (await this.rows('SELECT * FROM leases WHERE workload_id = $1 AND state = ANY($2)', [workloadId, [...states]])).map(leaseFromRow);
  }

  async listLeases(states: readonly LeaseState[], limit: number): Promise<LeaseRow[]> {
    return (await this.rows('SELECT * FROM leases WHERE state = ANY($1) ORDER BY created_at LIMIT $2', [[...states], limit])).map(leaseFromRow);
  }

  async ownedVaultLeaseIds(): Promise<Set<string>> {
    const r = await this.rows('SELECT lease_id FROM leases WHERE lease_id IS NOT NULL AND state = ANY($1)', [[...LIVE_LEASE_STATES]]);
    return new Set(r.map((x) => String(x.lease_id)));
  }

  async knownRoles(): Promise<string[]> {
    const r = await this.rows(`SELECT DISTINCT role FROM leases WHERE state IN ('intent', 'active', 'revoking', 'irrevocable')`);
    return r.map((x) => String(x.role));
  }

  async leasesOlderThan(before: number, limit: number): Promise<LeaseRow[]> {
    return (await this.rows(`SELECT * FROM leases WHERE state = 'active' AND created_at < $1 LIMIT $2`, [before, limit])).map(leaseFromRow);
  }

  async claimDue(owner: string, now: number, claimUntil: number, limit: number): Promise<LeaseRow[]> {
    // One statement: rows another replica is claiming right now are skipped, not waited for.
    const r = await this.rows(
      // The claim also lapses halfway from due to expiry, so a dead replica's
      // lease is taken over while it can still be renewed.
      `UPDATE leases SET claim_owner = $1, claim_until = LEAST($3, GREATEST($2 + 250, (due_at + expires_at) / 2))
       WHERE id IN (
         SELECT id FROM leases
         WHERE state IN ('active', 'revoking') AND due_at <= $2 AND claim_until < $2
         ORDER BY due_at LIMIT $4
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [owner, now, claimUntil, limit],
    );
    return r.map(leaseFromRow).sort((a, b) => a.dueAt - b.dueAt);
  }

  async releaseClaims(owner: string | null): Promise<void> {
    for (const table of ['leases', 'cloud_grants']) {
      if (owner === null) await this.q(`UPDATE ${table} SET claim_owner = NULL, claim_until = 0 WHERE claim_owner IS NOT NULL`);
      else await this.q(`UPDATE ${table} SET claim_owner = NULL, claim_until = 0 WHERE claim_owner = $1`, [owner]);
    }
  }

  async recordRenewal(id: string, owner: string, x: Renewed): Promise<boolean> {
    return (
      (await this.count(
        `UPDATE leases SET token = $1, token_issued_at = $2, expires_at = $3, due_at = $4, attempts = 0, last_error = NULL,
           renewals = renewals + 1, claim_owner = NULL, claim_until = 0
         WHERE id = $5 AND state = 'active' AND claim_owner = $6`,
        [x.token, x.tokenIssuedAt, x.expiresAt, x.dueAt, id, owner],
      )) === 1
    );
  }

  async recordFailure(id: string, owner: string, attempts: number, dueAt: number, error: string): Promise<boolean> {
    return (
      (await this.count(
        `UPDATE leases SET attempts = $1, due_at = $2, last_error = $3, claim_owner = NULL, claim_until = 0
         WHERE id = $4 AND claim_owner = $5 AND state IN ('active', 'revoking')`,
        [attempts, dueAt, error, id, owner],
      )) === 1
    );
  }

  async markRevoking(id: string, reason: string, dueAt: number, replacedBy?: string): Promise<boolean> {
    return this.tx(async (c) => {
      const r = await c.query(
        `UPDATE leases SET state = 'revoking', reason = $1, due_at = $2, attempts = 0, replaced_by = COALESCE($3, replaced_by),
           claim_owner = NULL, claim_until = 0
         WHERE id = $4 AND state = 'active'`,
        [reason, dueAt, replacedBy ?? null, id],
      );
      if (r.rowCount === 1) await c.query(GRANT_SQL.revokeOfLease.pg, [reason, dueAt, id]);
      return r.rowCount === 1;
    });
  }

  async finish(id: string, state: 'revoked' | 'expired' | 'gone' | 'irrevocable', at: number, error?: string): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `UPDATE leases SET state = $1, ended_at = $2, last_error = COALESCE($3, last_error), claim_owner = NULL, claim_until = 0,
           token = CASE WHEN $1 = 'irrevocable' THEN token ELSE NULL END
         WHERE id = $4`,
        [state, at, error ?? null, id],
      );
      await c.query(GRANT_SQL.revokeOfLease.pg, [`lease_${state}`, at, id]);
    });
  }

  // ---- cloud grants ----

  async insertGrant(g: NewGrant): Promise<void> {
    await this.q(GRANT_SQL.insert.pg, [g.id, g.leaseRowId, g.workloadId, g.cloud, JSON.stringify(g.plan), JSON.stringify(g.facts), g.at, g.at, g.owner, g.claimUntil]);
  }

  async completeGrant(id: string, owner: string, grant: CloudGrant, dueAt: number): Promise<boolean> {
    return (await this.count(GRANT_SQL.complete.pg, [JSON.stringify(grant), grant.expiresAt, dueAt, id, owner])) === 1;
  }

  async closeGrant(id: string, state: 'failed' | 'rolled_back', reason: string, at: number, detail?: string, cleanupAt?: number | null): Promise<void> {
    if (cleanupAt !== undefined && cleanupAt !== null) await this.q(GRANT_SQL.closeToCleanup.pg, [state, reason, detail ?? null, cleanupAt, id]);
    else await this.q(GRANT_SQL.close.pg, [state, reason, detail ?? null, at, id]);
  }

  async getGrant(id: string): Promise<GrantRow | null> {
    return this.first(grantFromRow, 'SELECT * FROM cloud_grants WHERE id = $1', [id]);
  }

  async grantOfLease(leaseRowId: string): Promise<GrantRow | null> {
    return this.first(grantFromRow, 'SELECT * FROM cloud_grants WHERE lease_row_id = $1 ORDER BY created_at DESC LIMIT 1', [leaseRowId]);
  }

  async grantsOfLeases(leaseRowIds: readonly string[]): Promise<Map<string, GrantRow>> {
    const out = new Map<string, GrantRow>();
    if (leaseRowIds.length === 0) return out;
    for (const r of await this.rows('SELECT * FROM cloud_grants WHERE lease_row_id = ANY($1) ORDER BY created_at', [[...leaseRowIds]])) {
      out.set(String(r.lease_row_id), grantFromRow(r));
    }
    return out;
  }

  async claimStaleGrants(owner: string, now: number, claimUntil: number, limit: number): Promise<GrantRow[]> {
    return (await this.rows(pgClaim('stale'), [owner, now, claimUntil, limit])).map(grantFromRow).sort((a, b) => a.dueAt - b.dueAt);
  }

  async claimDueGrants(owner: string, now: number, claimUntil: number, limit: number): Promise<GrantRow[]> {
    return (await this.rows(pgClaim('due'), [owner, now, claimUntil, limit])).map(grantFromRow).sort((a, b) => a.dueAt - b.dueAt);
  }

  async recordGrantRefresh(id: string, owner: string, grant: CloudGrant, dueAt: number): Promise<boolean> {
    return (await this.count(GRANT_SQL.refresh.pg, [JSON.stringify(grant), grant.expiresAt, dueAt, id, owner])) === 1;
  }

  async recordGrantFailure(id: string, owner: string, attempts: number, dueAt: number, error: string): Promise<boolean> {
    return (await this.count(GRANT_SQL.failure.pg, [attempts, dueAt, error, id, owner])) === 1;
  }

  async grantTornDown(id: string, owner: string, detail: string, cleanupAt: number, _at: number): Promise<boolean> {
    return (await this.count(GRANT_SQL.tornDown.pg, [detail, cleanupAt, id, owner])) === 1;
  }

  async grantDone(id: string, owner: string, detail: string | null, at: number): Promise<boolean> {
    return (await this.count(GRANT_SQL.done.pg, [detail, at, id, owner])) === 1;
  }

  async grantIrrevocable(id: string, at: number, error: string): Promise<void> {
    await this.q(GRANT_SQL.irrevocable.pg, [at, error, id]);
  }

  async refreshGrantOfLease(leaseRowId: string, leaseExpiresAt: number, at: number): Promise<void> {
    await this.q(GRANT_SQL.refreshOfLease.pg, [at, leaseRowId, leaseExpiresAt, at]);
  }

  async revokeGrantsOfEndedLeases(now: number): Promise<number> {
    return this.count(GRANT_SQL.revokeOrphaned.pg, [now]);
  }

  // ---- the broker's Vault logins ----

  async recordLogin(l: LoginRow): Promise<void> {
    await this.q(LOGIN_SQL.insert.pg, [l.id, l.replica, l.method, l.loggedInAt, l.expiresAt, l.renewable ? 1 : 0, l.final ? 1 : 0, l.updatedAt]);
  }

  async updateLogin(id: string, expiresAt: number | null, final: boolean, at: number): Promise<void> {
    await this.q(LOGIN_SQL.update.pg, [expiresAt, final ? 1 : 0, at, id]);
  }

  async logins(): Promise<LoginRow[]> {
    return (await this.rows(LOGIN_SQL.all.pg)).map(loginFromRow);
  }

  async finalizeLogins(replica: string | null, except: string | null, at: number): Promise<number> {
    if (replica === null) return this.count(LOGIN_SQL.finalizeAll.pg, [at, except ?? '']);
    return this.count(LOGIN_SQL.finalizeReplica.pg, [at, except ?? '', replica]);
  }

  async leasesOfLoginDueAfter(loginId: string, after: number, limit: number): Promise<LeaseRow[]> {
    return (await this.rows(LOGIN_SQL.dueAfter.pg, [loginId, after, limit])).map(leaseFromRow);
  }

  async bringForward(moves: readonly DueMove[]): Promise<number> {
    if (moves.length === 0) return 0;
    return this.count(
      `UPDATE leases SET due_at = m.due_at FROM unnest($1::text[], $2::bigint[]) AS m (id, due_at)
       WHERE leases.id = m.id AND leases.state = 'active' AND leases.due_at > m.due_at`,
      [moves.map((m) => m.id), moves.map((m) => m.dueAt)],
    );
  }

  async pruneLogins(before: number): Promise<number> {
    return this.count(LOGIN_SQL.prune.pg, [before]);
  }

  async addEvent(e: EventRow): Promise<void> {
    await this.q('INSERT INTO events (at, kind, workload_id, lease_row_id, reason, detail) VALUES ($1, $2, $3, $4, $5, $6)', [
      e.at, e.kind, e.workloadId, e.leaseRowId, e.reason, e.detail,
    ]);
  }

  async recentEvents(limit: number): Promise<EventRow[]> {
    return (await this.rows('SELECT * FROM events ORDER BY id DESC LIMIT $1', [limit])).map(eventFromRow);
  }

  async countEvents(workloadId: string, kind: string, since: number): Promise<number> {
    const r = await this.rows('SELECT COUNT(*) AS n FROM events WHERE workload_id = $1 AND kind = $2 AND at >= $3', [workloadId, kind, since]);
    return Number(r[0]?.n ?? 0);
  }

  async stats(): Promise<StoreStats> {
    const byState: Record<string, number> = {};
    for (const r of await this.rows('SELECT state, COUNT(*) AS n FROM leases GROUP BY state')) byState[String(r.state)] = Number(r.n);
    const w = { active: 0, ended: 0 };
    for (const r of await this.rows('SELECT state, COUNT(*) AS n FROM workloads GROUP BY state')) {
      if (r.state === 'active') w.active = Number(r.n);
      else w.ended += Number(r.n);
    }
    const grants: StoreStats['grants'] = {};
    for (const r of await this.rows('SELECT cloud, state, COUNT(*) AS n FROM cloud_grants GROUP BY cloud, state')) {
      (grants[String(r.cloud)] ??= {})[String(r.state)] = Number(r.n);
    }
    return { byState, workloads: w, grants };
  }
}
