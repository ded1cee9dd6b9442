// The registry's schema (workloads, leases, events) and the lease statements
// both stores run that are more than a one-line lookup, written once in
// PostgreSQL's `$n` style (see grant-sql.ts).

import { sql } from './grant-sql.ts';

/**
 * Migration 1 of both stores, the registry (workloads, leases, events): only
 * the integer type and the events key differ (BIGSERIAL in PostgreSQL,
 * INTEGER PRIMARY KEY AUTOINCREMENT in SQLite).
 */
export function registryMigration(int: 'INTEGER' | 'BIGINT'): string {
  const eventsKey = int === 'BIGINT' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT';
  return `CREATE TABLE workloads (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, heartbeat_interval_ms ${int} NOT NULL, pid INTEGER,
     host TEXT NOT NULL, replica TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
     created_at ${int} NOT NULL, last_heartbeat_at ${int} NOT NULL, ended_at ${int});
   CREATE INDEX workloads_state ON workloads (state);
   CREATE TABLE leases (
     id TEXT PRIMARY KEY, workload_id TEXT NOT NULL REFERENCES workloads (id), role TEXT NOT NULL,
     scope_key TEXT NOT NULL, state TEXT NOT NULL, lease_id TEXT, jti TEXT, token TEXT,
     ttl_ms ${int} NOT NULL DEFAULT 0, created_at ${int} NOT NULL, token_issued_at ${int} NOT NULL DEFAULT 0,
     expires_at ${int} NOT NULL DEFAULT 0, due_at ${int} NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
     renewals INTEGER NOT NULL DEFAULT 0, last_error TEXT, claim_owner TEXT, claim_until ${int} NOT NULL DEFAULT 0,
     reason TEXT, replaced_by TEXT, ended_at ${int});
   CREATE INDEX leases_due ON leases (state, due_at);
   CREATE INDEX leases_jti ON leases (jti);
   CREATE INDEX leases_lease_id ON leases (lease_id);
   CREATE INDEX leases_workload ON leases (workload_id, state);
   CREATE TABLE events (
     id ${eventsKey}, at ${int} NOT NULL, kind TEXT NOT NULL, workload_id TEXT,
     lease_row_id TEXT, reason TEXT, detail TEXT);
   CREATE INDEX events_workload ON events (workload_id, kind, at);`;
}

/**
 * Migration 5 of both stores: the rows a replica has claimed, indexed apart
 * (partial indexes: only claimed rows, a handful), so releasing a dead
 * replica's claims at start does not read every lease.
 */
export const CLAIMS_MIGRATION = `CREATE INDEX leases_claimed ON leases (claim_owner) WHERE claim_owner IS NOT NULL;
   CREATE INDEX cloud_grants_claimed ON cloud_grants (claim_owner) WHERE claim_owner IS NOT NULL;`;

export const LEASE_SQL = {
  /**
   * The chain from a lease through replaced_by (a successor near max_ttl, a
   * re-issue after expiry), its last row. The depth cap only guards against a cycle.
   */
  chainEnd: sql(`WITH RECURSIVE chain (id, depth) AS (
       SELECT CAST($1 AS TEXT), 0
       UNION ALL
       SELECT l.replaced_by, chain.depth + 1 FROM leases l JOIN chain ON l.id = chain.id
        WHERE l.replaced_by IS NOT NULL AND chain.depth < 100000)
     SELECT leases.* FROM chain JOIN leases ON leases.id = chain.id ORDER BY chain.depth DESC LIMIT 1`),
  /** Only an expired lease without a successor: concurrent re-issues link once. */
  linkSuccessor: sql(`UPDATE leases SET replaced_by = $1 WHERE id = $2 AND state = 'expired' AND replaced_by IS NULL`),
};
