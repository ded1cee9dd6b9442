// The broker's records and the store interface both stores implement. Times
// are epoch milliseconds; durations are milliseconds (`...Ms`).

import type { CloudGrant, CloudName, CloudPlan, Scopes } from '../iam/types.ts';

export type LeaseState =
  | 'intent' // row written, Vault not yet asked (or the answer not yet recorded)
  | 'active' // held and renewed
  | 'revoking' // to be revoked (retried with backoff until done or irrevocable)
  | 'revoked'
  | 'irrevocable' // revocation kept failing: shown, never dropped
  | 'expired' // reached its expiry without renewal (Vault dropped it); for a live workload, re-issued (replaced_by)
  | 'gone' // Vault no longer knows the lease
  | 'failed' // the issue request was refused; nothing was issued
  | 'abandoned'; // an intent whose issuer died; any lease it got was reconciled

export const LIVE_LEASE_STATES: readonly LeaseState[] = ['active', 'revoking', 'irrevocable'];

export type RevokeReason =
  | 'heartbeat_missed'
  | 'process_exited'
  | 'workload_ended'
  | 'explicit'
  | 'max_age'
  | 'anomaly_rate'
  | 'anomaly_report'
  | 'shutdown'
  | 'replaced'
  | 'orphan'
  | 'cloud_rollback' // its cloud grant's issue was rolled back: the lease has no use left
  | 'console' // revoked from the console
  | 'anomaly_rule'; // an anomaly rule over the PEPs' usage events fired

/**
 * A cloud grant's life (one per lease at most):
 *   intent → active → revoking → cleanup → done      (revoking → done when no cleanup is asked)
 *   intent → failed       the cloud refused the issue; what it created was rolled back
 *   intent → rolled_back  its issuer died; rolled back from the plan at reconcile
 *   intent → cleanup → done   either of those, when the rollback left something to remove later
 *                             (AWS: a deny on the session until the lease's hard end); reason failed | rolled_back
 *   revoking | intent → irrevocable   teardown kept failing: shown, never dropped
 */
export type GrantState = 'intent' | 'active' | 'revoking' | 'cleanup' | 'done' | 'rolled_back' | 'failed' | 'irrevocable';

export const LIVE_GRANT_STATES: readonly GrantState[] = ['intent', 'active', 'revoking', 'cleanup', 'irrevocable'];

/** What the broker keeps to renew a grant with the lease's current token (non-secret). */
export interface GrantFacts {
  subject: string;
  role: string;
  scopes: Scopes;
  target: Record<string, unknown>;
  /** The lease's hard end (epoch ms). */
  leaseMaxExpiresAt: number;
}

export interface GrantRow {
  id: string;
  leaseRowId: string;
  workloadId: string;
  cloud: CloudName;
  state: GrantState;
  /** The write-ahead entry, written before provider.issue. */
  plan: CloudPlan;
  facts: GrantFacts;
  /** The credential and the provider's state. Secret (the credential): never logged; cleared once done. */
  grant: CloudGrant | null;
  /** The credential's expiry (0 before issue). */
  expiresAt: number;
  /** Next refresh (active), teardown attempt (revoking), cleanup (cleanup). */
  dueAt: number;
  attempts: number;
  refreshes: number;
  lastError: string | null;
  claimOwner: string | null;
  claimUntil: number;
  reason: string | null;
  /** What the teardown did (non-secret). */
  detail: string | null;
  createdAt: number;
  endedAt: number | null;
}

export interface NewGrant {
  id: string;
  leaseRowId: string;
  workloadId: string;
  cloud: CloudName;
  plan: CloudPlan;
  facts: GrantFacts;
  owner: string;
  at: number;
  claimUntil: number;
}

export interface WorkloadRow {
  id: string;
  name: string;
  /** 0 when liveness is a process id. */
  heartbeatIntervalMs: number;
  pid: number | null;
  host: string;
  /** The broker replica the workload registered with. */
  replica: string;
  state: 'active' | 'ended';
  reason: string | null;
  createdAt: number;
  lastHeartbeatAt: number;
  endedAt: number | null;
}

export interface LeaseRow {
  id: string;
  workloadId: string;
  role: string;
  /** Canonical JSON of the narrowing request: the cache key with workload and role. */
  scopeKey: string;
  state: LeaseState;
  leaseId: string | null;
  jti: string | null;
  token: string | null;
  /** The ttl Vault granted at issue: each renewal asks for it again (the increment). */
  ttlMs: number;
  createdAt: number;
  /** When the current token was issued (issue or last renewal). */
  tokenIssuedAt: number;
  expiresAt: number;
  /** Next renewal (active) or revocation attempt (revoking). */
  dueAt: number;
  attempts: number;
  renewals: number;
  lastError: string | null;
  claimOwner: string | null;
  claimUntil: number;
  reason: string | null;
  replacedBy: string | null;
  endedAt: number | null;
  /** The broker login (vault_logins.id) whose token obtained the lease; null with a static token. */
  loginId: string | null;
}

/**
 * One Vault login of a broker process (AppRole or JWT), as the registry keeps it:
 * times and flags only, never the token, its accessor or the secret id. Vault
 * revokes the leases a token obtained when that token dies, so the registry
 * remembers, for every lease, which login obtained it and when that login's
 * token ends, across restarts of the broker.
 */
export interface LoginRow {
  id: string;
  /** The replica that logged in. */
  replica: string;
  method: 'approle' | 'jwt';
  loggedInAt: number;
  /** Its token's expiry as last known: a lower bound (a renewal may have extended it since). Null: never expires. */
  expiresAt: number | null;
  renewable: boolean;
  /** The expiry is final: max ttl reached, not renewable, or no process renews the token any more. */
  final: boolean;
  /** When expiresAt or final was last written. */
  updatedAt: number;
}

/** A lease's next renewal moved earlier (never later). */
export interface DueMove {
  id: string;
  dueAt: number;
}

export interface EventRow {
  at: number;
  kind: string;
  workloadId: string | null;
  leaseRowId: string | null;
  reason: string | null;
  detail: string | null;
}

export interface NewIntent {
  id: string;
  workloadId: string;
  role: string;
  scopeKey: string;
  owner: string;
  at: number;
  claimUntil: number;
}

export interface Issued {
  /** The login whose token obtained it (null with a static token). */
  loginId: string | null;
  leaseId: string;
  jti: string;
  token: string;
  ttlMs: number;
  tokenIssuedAt: number;
  expiresAt: number;
  dueAt: number;
}

export interface Renewed {
  token: string;
  tokenIssuedAt: number;
  expiresAt: number;
  dueAt: number;
}

export interface StoreStats {
  byState: Record<string, number>;
  workloads: { active: number; ended: number };
  /** Cloud grants: cloud → state → count. */
  grants: Record<string, Record<string, number>>;
}

/**
 * The durable registry. Every method is one transaction. Methods taking `owner`
 * act only while that replica holds the row's claim, so a replica whose claim
 * expired (and was taken over) cannot overwrite the new owner's work.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Group commit so far: transactions committed (one fsync each) and the durable writes they held. */
  commitStats?(): { transactions: number; writes: number };
  /** Applies the numbered migrations not yet applied; returns the schema version. */
  migrate(): Promise<number>;
  close(): Promise<void>;

  createWorkload(w: WorkloadRow): Promise<void>;
  getWorkload(id: string): Promise<WorkloadRow | null>;
  heartbeat(id: string, at: number): Promise<boolean>;
  /** active → ended; false when it was not active. */
  endWorkload(id: string, reason: string, at: number): Promise<boolean>;
  activeWorkloads(): Promise<WorkloadRow[]>;

  /** The intent row, durable when this resolves (before the Vault call it announces). */
  insertIntent(intent: NewIntent): Promise<LeaseRow>;
  /**
   * intent → active while `owner` holds the intent's claim, with `event` (the
   * issue's record) in the same transaction; the row as completed, or null
   * when the claim was lost (then nothing is written).
   */
  completeIntent(id: string, owner: string, issued: Issued, event?: EventRow): Promise<LeaseRow | null>;
  /** intent → failed (the request was refused) or abandoned (reconciled). */
  closeIntent(id: string, state: 'failed' | 'abandoned', reason: string, at: number): Promise<void>;
  /** Intents whose claim expired before now (their issuer died). */
  staleIntents(now: number): Promise<LeaseRow[]>;
  /** Intents still within their claim: an issue may be under way. */
  openIntentCount(now: number): Promise<number>;

  getLease(id: string): Promise<LeaseRow | null>;
  getLeaseByJti(jti: string): Promise<LeaseRow | null>;
  getLeaseByVaultId(leaseId: string): Promise<LeaseRow | null>;
  /** The last lease of the chain that starts at `id`, following replaced_by (one query, however long). */
  chainEnd(id: string): Promise<LeaseRow | null>;
  /** An expired lease gets its successor (a re-issue); false when it already has one or is not expired. */
  linkSuccessor(id: string, successorId: string): Promise<boolean>;
  /** The active lease for this key whose token has the most life left. */
  findCached(workloadId: string, role: string, scopeKey: string): Promise<LeaseRow | null>;
  leasesOfWorkload(workloadId: string, states: readonly LeaseState[]): Promise<LeaseRow[]>;
  listLeases(states: readonly LeaseState[], limit: number): Promise<LeaseRow[]>;
  /** Vault lease ids of rows in a live state (the broker owns them). */
  ownedVaultLeaseIds(): Promise<Set<string>>;
  /** Roles of live leases and intents (the roles reconcile lists in Vault). */
  knownRoles(): Promise<string[]>;
  /** Active leases created before `before` (for the max-age trigger). */
  leasesOlderThan(before: number, limit: number): Promise<LeaseRow[]>;

  /**
   * Claims up to `limit` active or revoking rows due by `now` whose claim is
   * free or expired, for `owner` until `claimUntil` or halfway from due to
   * expiry, whichever is sooner (so a dead owner's lease is taken over in time).
   */
  claimDue(owner: string, now: number, claimUntil: number, limit: number): Promise<LeaseRow[]>;
  /** Releases `owner`'s claims (all claims when null: a single-process store at start). */
  releaseClaims(owner: string | null): Promise<void>;
  recordRenewal(id: string, owner: string, renewed: Renewed): Promise<boolean>;
  /** Reschedules a failed attempt (renewal or revocation) and releases the claim. */
  recordFailure(id: string, owner: string, attempts: number, dueAt: number, error: string): Promise<boolean>;
  /**
   * active → revoking, due at `dueAt` (a grace for replaced leases). False when not active.
   * In the same transaction the lease's active cloud grant goes to revoking, due then.
   */
  markRevoking(id: string, reason: string, dueAt: number, replacedBy?: string): Promise<boolean>;
  /** → revoked | expired | gone | irrevocable. An active cloud grant of the lease goes to revoking, due at once. */
  finish(id: string, state: 'revoked' | 'expired' | 'gone' | 'irrevocable', at: number, error?: string): Promise<void>;

  // ---- cloud grants ----
  /** The write-ahead entry: state intent, claimed by `owner` until `claimUntil`. */
  insertGrant(g: NewGrant): Promise<void>;
  /** intent → active with the credential; false when the claim was lost. */
  completeGrant(id: string, owner: string, grant: CloudGrant, dueAt: number): Promise<boolean>;
  /**
   * intent → failed | rolled_back (the credential column stays empty); with `cleanupAt`
   * (the rollback left something to remove later) → cleanup, due then, reason failed | rolled_back.
   */
  closeGrant(id: string, state: 'failed' | 'rolled_back', reason: string, at: number, detail?: string, cleanupAt?: number | null): Promise<void>;
  getGrant(id: string): Promise<GrantRow | null>;
  /** The lease's grant (the newest, should there be several). */
  grantOfLease(leaseRowId: string): Promise<GrantRow | null>;
  /** Grants of these leases, by lease row id. */
  grantsOfLeases(leaseRowIds: readonly string[]): Promise<Map<string, GrantRow>>;
  /** Claims intents whose claim expired (their issuer died) for `owner`, to roll them back. */
  claimStaleGrants(owner: string, now: number, claimUntil: number, limit: number): Promise<GrantRow[]>;
  /** Claims active, revoking and cleanup grants due by `now` whose claim is free or expired. */
  claimDueGrants(owner: string, now: number, claimUntil: number, limit: number): Promise<GrantRow[]>;
  /** A refreshed credential (active only, claim held). */
  recordGrantRefresh(id: string, owner: string, grant: CloudGrant, dueAt: number): Promise<boolean>;
  /** Reschedules a failed step (refresh, teardown, cleanup, rollback) and releases the claim. */
  recordGrantFailure(id: string, owner: string, attempts: number, dueAt: number, error: string): Promise<boolean>;
  /** revoking → cleanup, due at `cleanupAt` (the provider's deferred step). */
  grantTornDown(id: string, owner: string, detail: string, cleanupAt: number, at: number): Promise<boolean>;
  /** revoking | cleanup → done (the credential is cleared); false when the claim was lost. */
  grantDone(id: string, owner: string, detail: string | null, at: number): Promise<boolean>;
  /** → irrevocable: teardown kept failing (kept with its credential, shown, never dropped). */
  grantIrrevocable(id: string, at: number, error: string): Promise<void>;
  /** The lease was renewed past its grant's credential: the grant's refresh is due at `at`. */
  refreshGrantOfLease(leaseRowId: string, leaseExpiresAt: number, at: number): Promise<void>;
  /** Active grants of leases no longer live (a crash between two writes): → revoking, due now. */
  revokeGrantsOfEndedLeases(now: number): Promise<number>;

  // ---- the broker's own Vault logins (no token, accessor or secret id: times only) ----
  /** A new login, recorded before its token obtains anything. */
  recordLogin(login: LoginRow): Promise<void>;
  /** Its token's expiry as now known, and whether that is final. */
  updateLogin(id: string, expiresAt: number | null, final: boolean, at: number): Promise<void>;
  logins(): Promise<LoginRow[]>;
  /**
   * A restart: the logins of earlier processes (of `replica`; every one but `except` when null,
   * as a SQLite file has one broker) are no longer renewed, so their expiries are final. Returns how many.
   */
  finalizeLogins(replica: string | null, except: string | null, at: number): Promise<number>;
  /** Active leases obtained under `loginId` whose next renewal is after `after`, soonest first. */
  leasesOfLoginDueAfter(loginId: string, after: number, limit: number): Promise<LeaseRow[]>;
  /** Moves active leases' next renewals earlier (a later due is never written); returns how many moved. */
  bringForward(moves: readonly DueMove[]): Promise<number>;
  /** Forgets logins whose token ended before `before` and that no live lease names; returns how many. */
  pruneLogins(before: number): Promise<number>;

  addEvent(e: EventRow): Promise<void>;
  recentEvents(limit: number): Promise<EventRow[]>;
  countEvents(workloadId: string, kind: string, since: number): Promise<number>;
  stats(): Promise<StoreStats>;
}

export type Clock = () => number;
/** A uniform random number in [0, 1). */
export type Random = () => number;
