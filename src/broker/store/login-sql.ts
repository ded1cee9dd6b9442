// The broker's Vault logins (vault_logins) and the lease columns that name
// them: statements both stores run, written once in PostgreSQL's `$n` style
// (see grant-sql.ts). A login row holds times and flags only: never the token,
// its accessor or the secret id.

import { sql } from './grant-sql.ts';

/** Migration 4 of both stores: only the integer type differs. Booleans are 0/1 integers in both. */
export function vaultLoginsMigration(int: 'INTEGER' | 'BIGINT'): string {
  return `CREATE TABLE vault_logins (
     id TEXT PRIMARY KEY, replica TEXT NOT NULL, method TEXT NOT NULL, logged_in_at ${int} NOT NULL,
     expires_at ${int}, renewable INTEGER NOT NULL, expiry_final INTEGER NOT NULL DEFAULT 0, updated_at ${int} NOT NULL);
   ALTER TABLE leases ADD COLUMN login_id TEXT;
   CREATE INDEX leases_login ON leases (login_id, state, due_at);`;
}

export const LOGIN_SQL = {
  insert: sql(
    `INSERT INTO vault_logins (id, replica, method, logged_in_at, expires_at, renewable, expiry_final, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
  ),
  update: sql(`UPDATE vault_logins SET expires_at = $1, expiry_final = $2, updated_at = $3 WHERE id = $4`),
  all: sql(`SELECT * FROM vault_logins ORDER BY logged_in_at`),
  /** `$2`: the login kept ('' keeps none). */
  finalizeAll: sql(`UPDATE vault_logins SET expiry_final = 1, updated_at = $1 WHERE expiry_final = 0 AND id <> $2`),
  finalizeReplica: sql(`UPDATE vault_logins SET expiry_final = 1, updated_at = $1 WHERE expiry_final = 0 AND id <> $2 AND replica = $3`),
  dueAfter: sql(`SELECT * FROM leases WHERE login_id = $1 AND state = 'active' AND due_at > $2 ORDER BY due_at LIMIT $3`),
  prune: sql(
    `DELETE FROM vault_logins WHERE expires_at IS NOT NULL AND expires_at < $1
       AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.login_id = vault_logins.id AND leases.state IN ('active', 'revoking', 'irrevocable'))`,
  ),
} as const;
