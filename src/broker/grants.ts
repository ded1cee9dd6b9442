// Cloud grants: a cloud credential whose life follows its lease. The plan (the
// write-ahead entry) is in the registry before provider.issue makes the first
// cloud-side change; refreshes follow the lease's renewals; when the lease leaves
// active the grant is torn down (revoke), and an intent whose issuer died is
// rolled back from its plan. Revoke and rollback share provider.teardown.
//
//   intent → active → revoking → cleanup → done   (revoking → done without a cleanup)
//   intent → failed | rolled_back, or → cleanup → done when the rollback asked for a cleanup;
//   revoking | intent → irrevocable (max attempts)
//
// The credential is a secret: it is stored like a lease's token, handed to the
// workload, and never passed to a log call, an event or a metric label.

import { randomUUID } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Creds } from '../client/index.ts';
import { CloudError, IamFieldError } from '../iam/errors.ts';
import { CLOUDS, type CloudCredential, type CloudGrant, type CloudName, type CloudPlan, type CloudProvider, type GrantRequest } from '../iam/types.ts';
import { BrokerError, badInput, describeError } from './errors.ts';
import type { Logger } from './log.ts';
import type { BrokerMetrics } from './metrics.ts';
import { backoffAt, nextRenewalAt, type RenewalTiming } from './timing.ts';
import type { Clock, GrantFacts, GrantRow, LeaseRow, Random, Store } from './types.ts';

export type CloudProviders = Partial<Record<CloudName, CloudProvider>>;

export interface GrantSettings {
  replica: string;
  timing: RenewalTiming;
  claimTtlMs: number;
  batchSize: number;
  concurrency: number;
  maxRevokeAttempts: number;
}

export interface GrantDeps {
  store: Store;
  providers: CloudProviders;
  log: Logger;
  metrics: BrokerMetrics;
  clock: Clock;
  random: Random;
  settings: GrantSettings;
  event(kind: string, workloadId: string | null, leaseRowId: string | null, reason: string | null, detail?: string | null): Promise<void>;
  hook(point: 'cloud:before-cloud' | 'cloud:after-cloud', row: LeaseRow): Promise<void>;
  /** The lease of a rolled-back grant is of no use: revoke it. */
  revokeLease(leaseRowId: string, reason: 'cloud_rollback'): Promise<void>;
}

/** A grant issued during a mint, not yet recorded as active. */
export interface PendingGrant {
  id: string;
  cloud: CloudName;
  plan: CloudPlan;
  grant: CloudGrant;
}

/** A cloud's failure as the broker answers it: 400 naming the field, 403, 503. */
export function cloudFailure(err: unknown): BrokerError {
  if (err instanceof BrokerError) return err;
  if (err instanceof IamFieldError) return new BrokerError('ERR_BAD_INPUT', err.message, { field: err.field, cause: err });
  if (err instanceof CloudError) {
    const code = err.code === 'ERR_CLOUD_DENIED' ? 'ERR_CLOUD_DENIED' : err.code === 'ERR_CLOUD_LIMIT' ? 'ERR_CLOUD_LIMIT' : 'ERR_CLOUD_UNAVAILABLE';
    return new BrokerError(code, err.message, { cause: err });
  }
  return new BrokerError('ERR_CLOUD_UNAVAILABLE', `cloud: ${describeError(err)}`, { cause: err });
}

/** Validates a request's `cloud` (400 naming `cloud`). */
export function parseCloud(v: unknown): CloudName {
  if (typeof v !== 'string' || !(CLOUDS as readonly string[]).includes(v)) throw badInput('cloud', `${JSON.stringify(v)} is not one of ${CLOUDS.join(', ')}`);
  return v as CloudName;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The role's target for the cloud, as Vault's answer carries it (`iam: { <cloud>: target }`, or the target itself). */
function targetOf(creds: Creds, cloud: CloudName): Record<string, unknown> {
  const iam = creds.iam;
  if (!isObject(iam)) throw new BrokerError('ERR_VAULT', `Vault's answer carries no iam target for cloud ${cloud} (is the engine older than the broker?)`);
  const t = iam[cloud];
  return isObject(t) ? t : iam;
}

export function subjectOf(token: string): string {
  try {
    const sub = decodeJwt(token).sub;
    if (typeof sub === 'string' && sub !== '') return sub;
  } catch {
    // fall through: never echo the token
  }
  throw new BrokerError('ERR_VAULT', "Vault's token carries no sub claim");
}

export class CloudGrants {
  constructor(private readonly d: GrantDeps) {}

  /** The provider for a cloud, or a 400 naming `cloud` when the broker was not configured for it. */
  provider(cloud: CloudName): CloudProvider {
    const p = this.d.providers[cloud];
    if (!p) {
      const have = Object.keys(this.d.providers);
      throw badInput('cloud', `this broker has no cloud "${cloud}" block${have.length ? ` (configured: ${have.join(', ')})` : ' (no cloud is configured)'}`);
    }
    return p;
  }

  private request(id: string, lease: { jti: string; token: string; expiresAt: number }, facts: GrantFacts): GrantRequest<Record<string, unknown>> {
    return {
      grantId: id,
      jti: lease.jti,
      token: lease.token,
      subject: facts.subject,
      role: facts.role,
      scopes: facts.scopes,
      target: facts.target,
      now: this.d.clock(),
      leaseExpiresAt: lease.expiresAt,
      leaseMaxExpiresAt: facts.leaseMaxExpiresAt,
    };
  }

  /**
   * When to refresh: about two thirds of the credential's remaining life. No
   * reserve rule here (the leases' outage reserve): cloud credentials live ten
   * minutes or more, where two thirds already leaves more than the reserve.
   */
  private refreshAt(now: number, expiresAt: number): number {
    return nextRenewalAt(now, expiresAt, { ...this.d.settings.timing, reserveMs: 0 }, this.d.random);
  }

  /**
   * Mint, after Vault answered and before the lease row is completed: the plan is
   * written (intent), then the cloud is asked. On failure what was created is
   * rolled back (or left to reconcile as a stale intent) and the mapped error thrown.
   */
  async issue(intent: LeaseRow, cloud: CloudName, creds: Creds, leaseExpiresAt: number, claimUntil: number): Promise<PendingGrant> {
    const provider = this.provider(cloud);
    const now = this.d.clock();
    const maxAt = Date.parse(creds.max_expires_at);
    const facts: GrantFacts = {
      subject: subjectOf(creds.token),
      role: creds.role || intent.role,
      scopes: { read: creds.read, write: creds.write },
      target: targetOf(creds, cloud),
      // Without the engine's hard end, the lease's current expiry is the safe bound.
      leaseMaxExpiresAt: Number.isFinite(maxAt) ? maxAt : leaseExpiresAt,
    };
    const id = randomUUID();
    const req = this.request(id, { jti: creds.jti, token: creds.token, expiresAt: leaseExpiresAt }, facts);
    let plan: CloudPlan;
    try {
      plan = provider.plan(req);
    } catch (err) {
      this.d.metrics.cloudFailures.inc({ cloud, op: 'issue' });
      throw cloudFailure(err);
    }
    const owner = this.d.settings.replica;
    await this.d.store.insertGrant({ id, leaseRowId: intent.id, workloadId: intent.workloadId, cloud, plan, facts, owner, at: now, claimUntil });
    await this.d.hook('cloud:before-cloud', intent);
    let grant: CloudGrant;
    try {
      grant = await provider.issue(req, plan);
    } catch (err) {
      this.d.metrics.cloudFailures.inc({ cloud, op: 'issue' });
      this.d.log.warn({ grant: id, lease: intent.id, cloud, err: describeError(err) }, 'cloud issue failed; rolling back');
      await this.rollbackNow(id, cloud, plan, describeError(err), intent);
      throw cloudFailure(err);
    }
    await this.d.hook('cloud:after-cloud', intent);
    return { id, cloud, plan, grant };
  }

  /** A refused or abandoned issue: teardown from the plan; a failing teardown is left to reconcile. */
  private async rollbackNow(id: string, cloud: CloudName, plan: CloudPlan, why: string, lease: LeaseRow): Promise<void> {
    const provider = this.provider(cloud);
    try {
      const r = await provider.teardown(plan, null, 'rollback', this.d.clock());
      await this.d.store.closeGrant(id, 'failed', why, this.d.clock(), r.detail, r.cleanupAt);
      this.d.metrics.cloudOps.inc({ cloud, op: 'rolled_back' });
      await this.d.event('cloud_failed', lease.workloadId, lease.id, null, `${cloud}: ${why}; rolled back: ${r.detail}`);
    } catch (err) {
      this.d.metrics.cloudFailures.inc({ cloud, op: 'rollback' });
      this.d.log.error({ grant: id, lease: lease.id, cloud, err: describeError(err) }, 'rollback failed; reconcile retries it');
      // Claim released and due now: the next reconcile rolls it back.
      await this.d.store.recordGrantFailure(id, this.d.settings.replica, 1, this.d.clock(), describeError(err));
    }
  }

  /** The lease row is complete: the grant becomes active. False when its claim was lost (reconcile rolls it back). */
  async complete(p: PendingGrant, lease: LeaseRow): Promise<boolean> {
    const now = this.d.clock();
    if (!(await this.d.store.completeGrant(p.id, this.d.settings.replica, p.grant, this.refreshAt(now, p.grant.expiresAt)))) return false;
    this.d.metrics.cloudOps.inc({ cloud: p.cloud, op: 'issued' });
    await this.d.event('cloud_issued', lease.workloadId, lease.id, null, `${p.cloud} grant ${p.id}`);
    this.d.log.info({ grant: p.id, lease: lease.id, cloud: p.cloud, expires_at: new Date(p.grant.expiresAt).toISOString() }, 'cloud grant issued');
    return true;
  }

  /** Undoes a pending grant whose lease could not be recorded. */
  async abandon(p: PendingGrant, lease: LeaseRow, why: string): Promise<void> {
    await this.rollbackNow(p.id, p.cloud, p.plan, why, lease);
  }

  /** The credential a workload may use now, if any. */
  credentialOf(g: GrantRow | null): CloudCredential | undefined {
    if (!g?.grant || (g.state !== 'active' && g.state !== 'revoking')) return undefined;
    return g.expiresAt > this.d.clock() ? g.grant.credential : undefined;
  }

  /** A cached lease's grant is usable: active with a credential that has not expired. */
  usable(g: GrantRow | null): boolean {
    return g?.state === 'active' && this.credentialOf(g) !== undefined;
  }

  // ---- the loop's work ----

  /** Claims due grants and refreshes, tears down or cleans them up. */
  async processDue(until = Infinity): Promise<number> {
    const now = this.d.clock();
    const s = this.d.settings;
    const rows = await this.d.store.claimDueGrants(s.replica, now, now + s.claimTtlMs, s.batchSize);
    await this.each(rows, until, async (g) => {
      if (!this.d.providers[g.cloud]) {
        await this.d.store.recordGrantFailure(g.id, s.replica, g.attempts, now + s.timing.backoffMaxMs, `no cloud "${g.cloud}" block in this broker's config`);
        this.d.log.error({ grant: g.id, cloud: g.cloud }, 'a grant of a cloud this broker is not configured for: add the cloud block back');
        return;
      }
      if (g.state === 'active') await this.refresh(g);
      else if (g.state === 'revoking') await this.teardown(g);
      else await this.cleanup(g);
    });
    return rows.length;
  }

  private async each(rows: GrantRow[], until: number, fn: (g: GrantRow) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < rows.length && this.d.clock() < until) {
        const g = rows[next++];
        try {
          await fn(g);
        } catch (err) {
          this.d.log.error({ grant: g.id, cloud: g.cloud, err: describeError(err) }, 'cloud grant step failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.d.settings.concurrency, rows.length) }, worker));
  }

  private async refresh(g: GrantRow): Promise<void> {
    const s = this.d.settings;
    const lease = await this.d.store.getLease(g.leaseRowId);
    if (!lease || lease.state !== 'active' || !lease.token || !lease.jti || !g.grant) {
      // The lease left active without taking its grant along (a crash between writes).
      await this.d.store.revokeGrantsOfEndedLeases(this.d.clock());
      return;
    }
    const provider = this.provider(g.cloud);
    let fresh: CloudGrant;
    try {
      fresh = await provider.renew(this.request(g.id, { jti: lease.jti, token: lease.token, expiresAt: lease.expiresAt }, g.facts), g.plan, g.grant);
    } catch (err) {
      this.d.metrics.cloudFailures.inc({ cloud: g.cloud, op: 'refresh' });
      const t = this.d.clock();
      const attempts = g.attempts + 1;
      // Back off within what is left of the credential, else of the lease; past both, on the plain schedule.
      const bound = g.expiresAt > t ? g.expiresAt : lease.expiresAt > t ? lease.expiresAt : null;
      const due = backoffAt(t, attempts, bound, s.timing, this.d.random);
      await this.d.store.recordGrantFailure(g.id, s.replica, attempts, due, describeError(err));
      this.d.log.warn({ grant: g.id, lease: g.leaseRowId, cloud: g.cloud, attempts, retry_in_ms: due - t, err: describeError(err) }, 'cloud credential refresh failed; backing off');
      return;
    }
    const t = this.d.clock();
    // No later expiry (the cloud cannot do better yet): wait for the lease's next renewal, which makes it due again.
    const due =
      fresh.expiresAt > g.expiresAt ? this.refreshAt(t, fresh.expiresAt) : Math.max(t + s.timing.backoffMinMs, Math.min(lease.dueAt, fresh.expiresAt));
    if (!(await this.d.store.recordGrantRefresh(g.id, s.replica, fresh, due))) return;
    this.d.metrics.cloudOps.inc({ cloud: g.cloud, op: 'refreshed' });
    await this.d.event('cloud_refreshed', g.workloadId, g.leaseRowId, null, `${g.cloud} grant ${g.id}`);
    this.d.log.debug({ grant: g.id, cloud: g.cloud, expires_at: new Date(fresh.expiresAt).toISOString() }, 'cloud credential refreshed');
  }

  private async teardown(g: GrantRow): Promise<void> {
    const s = this.d.settings;
    const reason = g.reason ?? 'explicit';
    let r: Awaited<ReturnType<CloudProvider['teardown']>>;
    try {
      r = await this.provider(g.cloud).teardown(g.plan, g.grant, 'revoke', this.d.clock());
    } catch (err) {
      await this.failedTeardown(g, 'teardown', err);
      return;
    }
    const t = this.d.clock();
    const ok = r.cleanupAt !== null ? await this.d.store.grantTornDown(g.id, s.replica, r.detail, r.cleanupAt, t) : await this.d.store.grantDone(g.id, s.replica, r.detail, t);
    if (!ok) return;
    this.d.metrics.cloudOps.inc({ cloud: g.cloud, op: 'torn_down' });
    await this.d.event('cloud_revoked', g.workloadId, g.leaseRowId, reason, `${g.cloud}: ${r.detail}`);
    this.d.log.info(
      { grant: g.id, lease: g.leaseRowId, cloud: g.cloud, reason, cleanup_at: r.cleanupAt === null ? null : new Date(r.cleanupAt).toISOString(), detail: r.detail },
      'cloud grant torn down',
    );
  }

  /** A teardown (revoke or rollback) failed: back off, or irrevocable after the last attempt. */
  private async failedTeardown(g: GrantRow, op: 'teardown' | 'rollback', err: unknown): Promise<void> {
    const s = this.d.settings;
    this.d.metrics.cloudFailures.inc({ cloud: g.cloud, op });
    const t = this.d.clock();
    const attempts = g.attempts + 1;
    if (attempts >= s.maxRevokeAttempts) {
      await this.d.store.grantIrrevocable(g.id, t, describeError(err));
      await this.d.event('cloud_irrevocable', g.workloadId, g.leaseRowId, g.reason, `${g.cloud}: ${describeError(err)}`);
      this.d.log.error({ alert: true, grant: g.id, lease: g.leaseRowId, cloud: g.cloud, attempts, err: describeError(err) }, 'cloud grant is irrevocable');
      return;
    }
    const due = backoffAt(t, attempts, null, s.timing, this.d.random);
    await this.d.store.recordGrantFailure(g.id, s.replica, attempts, due, describeError(err));
    this.d.log.warn({ grant: g.id, lease: g.leaseRowId, cloud: g.cloud, op, attempts, retry_in_ms: due - t, err: describeError(err) }, `cloud ${op} failed; backing off`);
  }

  private async cleanup(g: GrantRow): Promise<void> {
    const s = this.d.settings;
    try {
      await this.provider(g.cloud).cleanup?.(g.plan, g.grant, this.d.clock());
    } catch (err) {
      // Cleanup removes what revoke added (a deny policy): retried with capped backoff, shown, never dropped.
      this.d.metrics.cloudFailures.inc({ cloud: g.cloud, op: 'cleanup' });
      const t = this.d.clock();
      const due = backoffAt(t, g.attempts + 1, null, s.timing, this.d.random);
      await this.d.store.recordGrantFailure(g.id, s.replica, g.attempts + 1, due, describeError(err));
      this.d.log.warn({ grant: g.id, cloud: g.cloud, attempts: g.attempts + 1, retry_in_ms: due - t, err: describeError(err) }, 'cloud cleanup failed; backing off');
      return;
    }
    if (!(await this.d.store.grantDone(g.id, s.replica, null, this.d.clock()))) return;
    this.d.metrics.cloudOps.inc({ cloud: g.cloud, op: 'cleaned_up' });
    await this.d.event('cloud_cleaned_up', g.workloadId, g.leaseRowId, null, g.cloud);
    this.d.log.info({ grant: g.id, cloud: g.cloud }, 'cloud grant cleaned up');
  }

  /** Reconcile: intents whose issuer died are rolled back from their plan; their lease is revoked. */
  async rollbackStale(): Promise<number> {
    const s = this.d.settings;
    const now = this.d.clock();
    const rows = await this.d.store.claimStaleGrants(s.replica, now, now + s.claimTtlMs, 1000);
    let n = 0;
    await this.each(rows, Infinity, async (g) => {
      if (!this.d.providers[g.cloud]) {
        this.d.log.error({ grant: g.id, cloud: g.cloud }, 'cannot roll back a grant of a cloud this broker is not configured for');
        await this.d.store.recordGrantFailure(g.id, s.replica, g.attempts, now + s.timing.backoffMaxMs, `no cloud "${g.cloud}" block in this broker's config`);
        return;
      }
      try {
        const r = await this.provider(g.cloud).teardown(g.plan, null, 'rollback', this.d.clock());
        await this.d.store.closeGrant(g.id, 'rolled_back', 'issuer stopped before recording the answer', this.d.clock(), r.detail, r.cleanupAt);
      } catch (err) {
        await this.failedTeardown(g, 'rollback', err);
        return;
      }
      n++;
      this.d.metrics.cloudOps.inc({ cloud: g.cloud, op: 'rolled_back' });
      await this.d.event('cloud_rolled_back', g.workloadId, g.leaseRowId, null, g.cloud);
      this.d.log.warn({ grant: g.id, lease: g.leaseRowId, cloud: g.cloud }, 'rolled back a cloud grant whose issuer stopped');
      await this.d.revokeLease(g.leaseRowId, 'cloud_rollback');
    });
    return n;
  }

  async refreshGauges(grants: Record<string, Record<string, number>>): Promise<void> {
    for (const cloud of CLOUDS) {
      this.d.metrics.cloudGrantsActive.set({ cloud }, grants[cloud]?.active ?? 0);
      this.d.metrics.cloudIrrevocable.set({ cloud }, grants[cloud]?.irrevocable ?? 0);
    }
  }
}
