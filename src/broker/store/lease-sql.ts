// Lease statements both stores run that are more than a one-line lookup,
// written once in PostgreSQL's `$n` style (see grant-sql.ts).

import { sql } from './grant-sql.ts';

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
