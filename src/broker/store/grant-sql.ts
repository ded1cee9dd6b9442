// The cloud_grants statements both stores run, written once in PostgreSQL's
// `$n` style; SQLite gets the same text with `?` (every statement uses its
// parameters once, in order, so the positions agree).

export interface Statement {
  pg: string;
  sqlite: string;
}

export function sql(pg: string): Statement {
  const used = [...pg.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
  if (used.some((n, i) => n !== i + 1)) throw new Error(`grant-sql: parameters must appear once each, in order: ${pg}`);
  return { pg, sqlite: pg.replace(/\$\d+/g, '?') };
}

/** Migration 3 of both stores: only the integer type differs. */
export function cloudGrantsMigration(int: 'INTEGER' | 'BIGINT'): string {
  return `CREATE TABLE cloud_grants (
     id TEXT PRIMARY KEY, lease_row_id TEXT NOT NULL REFERENCES leases (id), workload_id TEXT NOT NULL,
     cloud TEXT NOT NULL, state TEXT NOT NULL, plan TEXT NOT NULL, facts TEXT NOT NULL, grant_json TEXT,
     expires_at ${int} NOT NULL DEFAULT 0, due_at ${int} NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
     refreshes INTEGER NOT NULL DEFAULT 0, last_error TEXT, claim_owner TEXT, claim_until ${int} NOT NULL DEFAULT 0,
     reason TEXT, detail TEXT, created_at ${int} NOT NULL, ended_at ${int});
   CREATE INDEX cloud_grants_due ON cloud_grants (state, due_at);
   CREATE INDEX cloud_grants_lease ON cloud_grants (lease_row_id);`;
}

const DUE_STATES = `('active', 'revoking', 'cleanup')`;

export const GRANT_SQL = {
  insert: sql(
    `INSERT INTO cloud_grants (id, lease_row_id, workload_id, cloud, state, plan, facts, created_at, due_at, claim_owner, claim_until)
     VALUES ($1, $2, $3, $4, 'intent', $5, $6, $7, $8, $9, $10)`,
  ),
  complete: sql(
    `UPDATE cloud_grants SET state = 'active', grant_json = $1, expires_at = $2, due_at = $3, claim_owner = NULL, claim_until = 0
     WHERE id = $4 AND state = 'intent' AND claim_owner = $5`,
  ),
  close: sql(
    `UPDATE cloud_grants SET state = $1, reason = $2, detail = $3, ended_at = $4, grant_json = NULL, claim_owner = NULL, claim_until = 0
     WHERE id = $5 AND state = 'intent'`,
  ),
  /** A rollback that asked for a cleanup (a deny kept until the lease's hard end): reason says failed | rolled_back. */
  closeToCleanup: sql(
    `UPDATE cloud_grants SET state = 'cleanup', reason = $1, last_error = $2, detail = $3, due_at = $4, attempts = 0, grant_json = NULL,
       claim_owner = NULL, claim_until = 0
     WHERE id = $5 AND state = 'intent'`,
  ),
  /** The lease left active: its active grant is torn down when the lease's revocation is due. */
  revokeOfLease: sql(
    `UPDATE cloud_grants SET state = 'revoking', reason = $1, due_at = $2, attempts = 0, claim_owner = NULL, claim_until = 0
     WHERE lease_row_id = $3 AND state = 'active'`,
  ),
  staleIntents: sql(`SELECT * FROM cloud_grants WHERE state = 'intent' AND claim_until < $1 AND due_at <= $2 ORDER BY due_at LIMIT $3`),
  due: sql(`SELECT * FROM cloud_grants WHERE state IN ${DUE_STATES} AND due_at <= $1 AND claim_until < $2 ORDER BY due_at LIMIT $3`),
  refresh: sql(
    `UPDATE cloud_grants SET grant_json = $1, expires_at = $2, due_at = $3, attempts = 0, last_error = NULL, refreshes = refreshes + 1,
       claim_owner = NULL, claim_until = 0
     WHERE id = $4 AND state = 'active' AND claim_owner = $5`,
  ),
  failure: sql(
    `UPDATE cloud_grants SET attempts = $1, due_at = $2, last_error = $3, claim_owner = NULL, claim_until = 0
     WHERE id = $4 AND claim_owner = $5`,
  ),
  tornDown: sql(
    `UPDATE cloud_grants SET state = 'cleanup', detail = $1, due_at = $2, attempts = 0, last_error = NULL, claim_owner = NULL, claim_until = 0
     WHERE id = $3 AND state = 'revoking' AND claim_owner = $4`,
  ),
  done: sql(
    `UPDATE cloud_grants SET state = 'done', detail = COALESCE($1, detail), ended_at = $2, grant_json = NULL, last_error = NULL,
       claim_owner = NULL, claim_until = 0
     WHERE id = $3 AND state IN ('revoking', 'cleanup') AND claim_owner = $4`,
  ),
  irrevocable: sql(
    `UPDATE cloud_grants SET state = 'irrevocable', ended_at = $1, last_error = $2, claim_owner = NULL, claim_until = 0 WHERE id = $3`,
  ),
  refreshOfLease: sql(
    `UPDATE cloud_grants SET due_at = $1 WHERE lease_row_id = $2 AND state = 'active' AND expires_at < $3 AND due_at > $4`,
  ),
  /** Active grants whose lease is no longer active (missed by a crash between two writes). */
  revokeOrphaned: sql(
    `UPDATE cloud_grants SET state = 'revoking', reason = 'lease_ended', due_at = $1, attempts = 0, claim_owner = NULL, claim_until = 0
     WHERE state = 'active' AND lease_row_id IN (SELECT id FROM leases WHERE state <> 'active')`,
  ),
} as const;

/** PostgreSQL claims in one statement: rows another replica is claiming are skipped, not waited for. */
export function pgClaim(where: 'stale' | 'due'): string {
  const cond =
    where === 'stale'
      ? `state = 'intent' AND claim_until < $2 AND due_at <= $2`
      : `state IN ${DUE_STATES} AND due_at <= $2 AND claim_until < $2`;
  return `UPDATE cloud_grants SET claim_owner = $1, claim_until = $3
          WHERE id IN (SELECT id FROM cloud_grants WHERE ${cond} ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED)
          RETURNING *`;
}
