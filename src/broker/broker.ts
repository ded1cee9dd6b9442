// The broker's logic: workloads, tokens, renewal, revocation and reconcile,
// over a Store and a VaultGateway. No timers here (loop.ts drives it) and no
// HTTP (api.ts); time and randomness come in through the settings.

import type { AuditWriter } from '../audit/writer.ts';
import type { UsageEvent } from '../pep/types.ts';
import type { Rule } from '../watch/rules.ts';
import { createWatcher, type Watcher } from '../watch/watcher.ts';
import { UsageBook } from './usage.ts';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Creds, CredsRequest } from '../client/index.ts';
import type { CloudCredential, CloudName } from '../iam/types.ts';
import { BrokerError, PermanentError, describeError, notFound } from './errors.ts';
import { CloudGrants, type CloudProviders, type PendingGrant } from './grants.ts';
import type { Logger } from './log.ts';
import { LOGIN_RETENTION_MS, Logins } from './logins.ts';
import type { BrokerMetrics } from './metrics.ts';
import { DEFAULT_TIMING, backoffAt, freshEnough, nextRenewalAt, type RenewalTiming } from './timing.ts';
import type { Clock, GrantRow, LeaseRow, Random, RevokeReason, Store, WorkloadRow } from './types.ts';
import type { IssuedCreds, VaultGateway } from './vault.ts';

export interface AnomalySettings {
  /** The recent window whose issuance count is compared. */
  windowMs: number;
  /** The longer window that sets the workload's usual rate. */
  baselineMs: number;
  /** Recent rate above this multiple of the usual rate is an anomaly. */
  multiple: number;
  /** Fewer issuances than this in the window are never an anomaly. */
  minCount: number;
}

export interface BrokerSettings {
  /** This replica's name (claims and workload ownership). */
  replica: string;
  host: string;
  /** Roles reconcile always lists (those in the registry are added). */
  roles: string[];
  timing: RenewalTiming;
  /** How long a claim on a due lease (or an intent) holds; longer than a Vault call can take. */
  claimTtlMs: number;
  batchSize: number;
  concurrency: number;
  /** A replaced lease (re-fetched near max_ttl) is revoked after this grace. */
  replaceGraceMs: number;
  /** 0: no maximum age. */
  maxLeaseAgeMs: number;
  maxRevokeAttempts: number;
  /** A heartbeat workload is dead after interval × (1 + this) without one. */
  heartbeatTolerance: number;
  anomaly: AnomalySettings;
  revokeOnShutdown: boolean;
}

export const DEFAULT_SETTINGS: BrokerSettings = {
  replica: `${hostname()}-${process.pid}`,
  host: hostname(),
  roles: [],
  timing: DEFAULT_TIMING,
  claimTtlMs: 90_000,
  batchSize: 500,
  concurrency: 32,
  replaceGraceMs: 30_000,
  maxLeaseAgeMs: 0,
  maxRevokeAttempts: 10,
  heartbeatTolerance: 0.5,
  anomaly: { windowMs: 60_000, baselineMs: 3_600_000, multiple: 10, minCount: 50 },
  revokeOnShutdown: true,
};

/** Crash points the tests use to kill a broker at a precise step. */
export type HookPoint =
  | 'issue:before-vault'
  | 'issue:after-vault'
  | 'renew:after-vault'
  | 'renewed'
  /** The grant's plan is in the registry; the cloud not yet asked. */
  | 'cloud:before-cloud'
  /** The cloud answered (objects created, credential in hand); the registry not yet written. */
  | 'cloud:after-cloud';

export interface BrokerDeps {
  store: Store;
  vault: VaultGateway;
  log: Logger;
  metrics: BrokerMetrics;
  clock?: Clock;
  random?: Random;
  hooks?: { at?(point: HookPoint, row: LeaseRow): void | Promise<void> };
  /** The clouds this broker grants credentials for (src/iam/providers.ts builds them from config). */
  providers?: CloudProviders;
  /** The broker's audit file (`audit { ... }` in its config): every action, renewals included. */
  audit?: AuditWriter;
  /** Anomaly rules over the usage events the PEPs post (`rule "<name>" { ... }` blocks). */
  rules?: Rule[];
}

export interface WorkloadInput {
  name: string;
  heartbeatIntervalMs?: number;
  pid?: number;
}

export interface TokenInput {
  workload: string;
  role: string;
  ttl?: string | number;
  read?: string[];
  write?: string[];
  audience?: string[];
  /** A cloud credential beside the token, whose life follows the lease. */
  cloud?: CloudName;
  /**
   * The workload's PUBLIC key: the token is bound to it (cnf.jkt, RFC 9449).
   * The workload keeps the private key and signs its own proofs; the broker
   * never holds it (a broker that signed proofs on request would be a proof
   * oracle for anyone who reaches its API).
   */
  dpop_jwk?: Record<string, string>;
}

/** What a workload receives: never logged. */
export interface TokenView {
  token: string;
  jti: string;
  lease_id: string;
  role: string;
  workload: string;
  issued_at: string;
  expires_at: string;
  /** Seconds left. */
  ttl: number;
  cached: boolean;
  /** With `cloud`: the cloud credential (secret), fresh after each refresh. */
  cloud_credential?: CloudCredential;
}

export interface LeaseView {
  id: string;
  workload: string;
  role: string;
  state: string;
  lease_id: string | null;
  jti: string | null;
  created_at: string;
  expires_at: string | null;
  next_action_at: string | null;
  renewals: number;
  attempts: number;
  reason: string | null;
  last_error: string | null;
  replaced_by: string | null;
  /** The lease's cloud grant, when it has one (never its credential). */
  cloud: string | null;
  cloud_state: string | null;
  cloud_expires_at: string | null;
  cloud_attempts: number | null;
  cloud_last_error: string | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export function leaseView(r: LeaseRow, g: GrantRow | null = null): LeaseView {
  return {
    id: r.id,
    workload: r.workloadId,
    role: r.role,
    state: r.state,
    lease_id: r.leaseId,
    jti: r.jti,
    created_at: iso(r.createdAt),
    expires_at: r.expiresAt > 0 ? iso(r.expiresAt) : null,
    next_action_at: r.state === 'active' || r.state === 'revoking' ? iso(r.dueAt) : null,
    renewals: r.renewals,
    attempts: r.attempts,
    reason: r.reason,
    last_error: r.lastError,
    replaced_by: r.replacedBy,
    cloud: g?.cloud ?? null,
    cloud_state: g?.state ?? null,
    cloud_expires_at: g && g.expiresAt > 0 ? iso(g.expiresAt) : null,
    cloud_attempts: g ? g.attempts : null,
    cloud_last_error: g?.lastError ?? null,
  };
}

/**
 * The cache key of a request: its narrowing, canonical (sorted lists, fixed field
 * order), and the cloud when there is one (one lease per workload, role, scopes and cloud).
 */
export function scopeKeyOf(input: TokenInput): string {
  const sorted = (v: string[] | undefined) => (v && v.length > 0 ? [...v].sort() : null);
  const key: Record<string, unknown> = { ttl: input.ttl ?? null, read: sorted(input.read), write: sorted(input.write), audience: sorted(input.audience) };
  // Only when set, so the keys of leases held before clouds existed still match.
  if (input.cloud) key.cloud = input.cloud;
  // The public key, members sorted: a token bound to one key is never handed out for another.
  if (input.dpop_jwk) key.dpop_jwk = Object.fromEntries(Object.entries(input.dpop_jwk).sort(([a], [b]) => (a < b ? -1 : 1)));
  return JSON.stringify(key);
}

function requestOf(scopeKey: string): CredsRequest {
  const k = JSON.parse(scopeKey) as {
    ttl: string | number | null;
    read: string[] | null;
    write: string[] | null;
    audience: string[] | null;
    cloud?: CloudName;
    dpop_jwk?: Record<string, string>;
  };
  const req: CredsRequest = {};
  if (k.ttl !== null) req.ttl = k.ttl;
  if (k.read) req.read = k.read;
  if (k.write) req.write = k.write;
  if (k.audience) req.audience = k.audience;
  if (k.cloud) req.cloud = k.cloud;
  if (k.dpop_jwk) req.dpop_jwk = k.dpop_jwk;
  return req;
}

/** The cloud a lease's grant is for, from its cache key. */
function cloudOf(scopeKey: string): CloudName | undefined {
  return (JSON.parse(scopeKey) as { cloud?: CloudName }).cloud;
}

function expiresAtOf(creds: Creds, now: number): number {
  const parsed = Date.parse(creds.expires_at);
  const byTtl = now + creds.lease_duration * 1000;
  // The lease's own duration is what Vault enforces; the token's exp can only be later by rounding.
  return Number.isFinite(parsed) ? Math.min(parsed, byTtl) : byTtl;
}

/**
 * Whether the lease's hard end (`max_expires_at`) is within one ttl of `now`:
 * no renewal can grant it a full ttl again, so a successor is due.
 */
function nearHardEnd(creds: Creds, now: number, ttlMs: number): boolean {
  const hardEnd = Date.parse(creds.max_expires_at);
  // An answer without max_expires_at (an engine before it): a renewal granting less than the ttl asked says so.
  if (!Number.isFinite(hardEnd)) return creds.lease_duration * 1000 < ttlMs;
  return hardEnd - now < ttlMs;
}

/**
 * Why a lease is minted: a workload's request, or the broker keeping a chain
 * going (a successor near max_ttl or before the end of the login that obtained
 * the lease, or after an expiry it could not prevent). Only requests count
 * towards the issuance anomaly.
 */
type MintOrigin = 'request' | 'max_ttl' | 'login_end' | 'expired';

/** Why a lease is replaced by a successor while it lives. */
type ReplaceWhy = 'max_ttl' | 'login_end';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class Broker {
  readonly settings: BrokerSettings;
  private readonly store: Store;
  private readonly vault: VaultGateway;
  private readonly log: Logger;
  private readonly metrics: BrokerMetrics;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly hooks: BrokerDeps['hooks'];
  private readonly audit: AuditWriter | undefined;
  /** The PEPs' usage events as the console shows them. */
  readonly usage = new UsageBook();
  private readonly watcher: Watcher;
  private readonly inflight = new Map<string, Promise<TokenView>>();
  private readonly grants: CloudGrants;
  /** The registry's Vault logins: when the token that obtained each lease ends. */
  private readonly logins: Logins;
  /**
   * Silence before this moment is not held against a heartbeat workload: the
   * broker could not hear it (it was not running, or its registry could not be
   * written). Set at construction, when the API starts serving, and after a
   * registry outage; a workload gets a full interval × (1 + tolerance) from here.
   */
  private livenessFrom: number;
  /** A heartbeat or a trigger check failed on the registry: liveness restarts once it works again. */
  private registryFailed = false;
  /** Called when work became due now (an explicit revocation): the loop wakes. */
  onDue: () => void = () => undefined;

  constructor(deps: BrokerDeps, settings: Partial<BrokerSettings> = {}) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings, anomaly: { ...DEFAULT_SETTINGS.anomaly, ...settings.anomaly } };
    this.store = deps.store;
    this.vault = deps.vault;
    this.log = deps.log;
    this.metrics = deps.metrics;
    this.clock = deps.clock ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.hooks = deps.hooks;
    this.audit = deps.audit;
    this.watcher = createWatcher({
      rules: deps.rules ?? [],
      ...(deps.audit ? { audit: deps.audit } : {}),
      log: (line) => this.log.warn(line, 'anomaly rule'),
      clock: this.clock,
      onFiring: (f) => this.usage.fired(f),
      actions: {
        revokeToken: async (f) => {
          // A jti the broker issued, never a lease id or a row id that an event could name instead.
          if (!(await this.store.getLeaseByJti(f.jti))) return 'not a token this broker holds';
          const lease = await this.revokeToken(f.jti, 'anomaly_rule');
          return `token revoked (lease ${lease.state})`;
        },
        revokeWorkload: async (f) => {
          const r = await this.report(f.jti, `${f.rule}: ${f.reason}`);
          return `workload revoked (${r.revoked} leases)`;
        },
      },
    });
    this.livenessFrom = this.clock();
    this.logins = new Logins({ store: this.store, vault: this.vault, log: this.log, clock: this.clock, random: this.random, timing: this.settings.timing });
    this.grants = new CloudGrants({
      store: this.store,
      providers: deps.providers ?? {},
      log: this.log,
      metrics: this.metrics,
      clock: this.clock,
      random: this.random,
      settings: this.settings,
      event: (kind, w, l, reason, detail = null) => this.event(kind, w, l, reason, detail),
      hook: async (point, row) => {
        await this.hooks?.at?.(point, row);
      },
      revokeLease: async (leaseRowId, reason) => {
        if (await this.store.markRevoking(leaseRowId, reason, this.clock())) this.onDue();
      },
    });
  }

  private async event(kind: string, workloadId: string | null, leaseRowId: string | null, reason: string | null, detail: string | null = null) {
    await this.store.addEvent({ at: this.clock(), kind, workloadId, leaseRowId, reason, detail });
    await this.afterEvent(kind, workloadId, leaseRowId, reason, detail);
  }

  /** What follows an event's record: the usage counts and the audit line. */
  private async afterEvent(kind: string, workloadId: string | null, leaseRowId: string | null, reason: string | null, detail: string | null) {
    if (kind === 'issued' || kind === 'reissued') this.usage.count('issued', this.clock());
    else if (kind === 'revoked') this.usage.count('revoked', this.clock());
    if (this.audit) await this.auditLine(kind, workloadId, leaseRowId ? await this.store.getLease(leaseRowId) : null, reason, detail);
  }

  /**
   * One line on the broker's audit file, with the lease's jti, Vault lease id
   * and role so `tvm audit search` joins it to the token's story. A line that
   * cannot be written is logged, not fatal: the broker's duty to renew and
   * revoke outranks its record of doing so.
   */
  private async auditLine(action: string, workloadId: string | null, row: LeaseRow | null, reason: string | null, detail: string | null): Promise<void> {
    try {
      this.audit?.write({
        type: 'broker',
        broker: {
          action,
          ...(workloadId ? { workload: workloadId } : {}),
          ...(row ? { lease_row: row.id, role: row.role, ...(row.jti ? { jti: row.jti } : {}), ...(row.leaseId ? { lease_id: row.leaseId } : {}) } : {}),
          ...(reason ? { reason } : {}),
          ...(detail ? { detail: detail.slice(0, 500) } : {}),
        },
      });
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'the broker audit file could not be written');
    }
  }

  // ---- workloads ----

  async registerWorkload(input: WorkloadInput): Promise<WorkloadRow> {
    const now = this.clock();
    const w: WorkloadRow = {
      id: randomUUID(),
      name: input.name,
      heartbeatIntervalMs: input.heartbeatIntervalMs ?? 0,
      pid: input.pid ?? null,
      host: this.settings.host,
      replica: this.settings.replica,
      state: 'active',
      reason: null,
      createdAt: now,
      lastHeartbeatAt: now,
      endedAt: null,
    };
    await this.store.createWorkload(w);
    await this.event('workload_registered', w.id, null, null, w.name);
    this.log.info({ workload: w.id, name: w.name, heartbeat_interval_ms: w.heartbeatIntervalMs, pid: w.pid }, 'workload registered');
    return w;
  }

  /** The local API serves from now: heartbeat silence counts from here at the earliest. */
  acceptingHeartbeats(): void {
    this.livenessFrom = Math.max(this.livenessFrom, this.clock());
  }

  async heartbeat(id: string): Promise<WorkloadRow> {
    let recorded: boolean;
    try {
      recorded = await this.store.heartbeat(id, this.clock());
    } catch (err) {
      this.registryFailed = true;
      throw err;
    }
    if (!recorded) {
      const w = await this.store.getWorkload(id);
      if (!w) throw notFound(`workload ${id} is not registered`);
      throw new BrokerError('ERR_CONFLICT', `workload ${id} has ended (${w.reason ?? 'unknown reason'}); register again`);
    }
    return (await this.store.getWorkload(id)) as WorkloadRow;
  }

  async getWorkload(id: string): Promise<WorkloadRow> {
    const w = await this.store.getWorkload(id);
    if (!w) throw notFound(`workload ${id} is not registered`);
    return w;
  }

  /** Ends a workload and revokes all its leases. Idempotent: the first reason stays. */
  async endWorkload(id: string, reason: RevokeReason): Promise<number> {
    const w = await this.store.getWorkload(id);
    if (!w) throw notFound(`workload ${id} is not registered`);
    const ended = await this.store.endWorkload(id, reason, this.clock());
    if (ended) {
      await this.event('workload_ended', id, null, reason);
      const level = reason === 'anomaly_rate' || reason === 'anomaly_report' ? 'error' : 'info';
      this.log[level]({ workload: id, name: w.name, reason, alert: level === 'error' || undefined }, 'workload ended; revoking its leases');
    }
    return this.revokeWorkloadLeases(id, reason);
  }

  private async revokeWorkloadLeases(workloadId: string, reason: RevokeReason): Promise<number> {
    let n = 0;
    const now = this.clock();
    for (const l of await this.store.leasesOfWorkload(workloadId, ['active'])) {
      if (await this.store.markRevoking(l.id, reason, now)) n++;
    }
    if (n > 0) this.onDue();
    return n;
  }

  // ---- tokens ----

  async requestToken(input: TokenInput): Promise<TokenView> {
    const w = await this.store.getWorkload(input.workload);
    if (!w) throw notFound(`workload ${input.workload} is not registered`);
    if (w.state !== 'active') throw new BrokerError('ERR_CONFLICT', `workload ${w.id} has ended (${w.reason ?? 'unknown reason'}); register again`);
    // A cloud this broker has no provider for is refused before Vault is asked.
    if (input.cloud) this.grants.provider(input.cloud);
    return this.obtain(w, input.role, scopeKeyOf(input), 'request');
  }

  /**
   * The workload's lease for this role and scopes: the cached one while a third
   * of its token's life remains, else a new one (concurrent callers share one mint).
   */
  private async obtain(w: WorkloadRow, role: string, scopeKey: string, origin: MintOrigin): Promise<TokenView> {
    const cloud = cloudOf(scopeKey);
    const cached = await this.store.findCached(w.id, role, scopeKey);
    const now = this.clock();
    if (cached && cached.token && freshEnough(now, cached.tokenIssuedAt, cached.expiresAt)) {
      const grant = cloud ? await this.store.grantOfLease(cached.id) : null;
      // A cloud request needs the lease's grant live; otherwise a fresh lease and grant are minted.
      if (!cloud || this.grants.usable(grant)) {
        this.metrics.issued.inc({ source: 'cache' });
        return this.view(cached, true, grant);
      }
    }
    // Concurrent identical requests share one mint.
    const key = `${w.id}\u0000${role}\u0000${scopeKey}`;
    const pending = this.inflight.get(key);
    if (pending) return { ...(await pending), cached: true };
    const p = this.mint(w, role, scopeKey, origin).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /**
   * A lease that expired unrenewed (Vault unreachable, or the broker down, past
   * its expiry) while its workload lives: the workload's lease for the same role
   * and scopes (the fresh one it holds, else a new one) becomes its successor, so
   * the old jti answers it. Returns the chain's end; null when the workload has
   * ended or is dead (the trigger check ends it). Vault unreachable: throws, and
   * the next GET of the jti tries again.
   */
  private async reissue(expired: LeaseRow): Promise<LeaseRow | null> {
    const w = await this.store.getWorkload(expired.workloadId);
    if (!w || w.state !== 'active' || this.deathOf(w, this.clock()) !== null) return null;
    const fresh = await this.obtain(w, expired.role, expired.scopeKey, 'expired');
    const successor = await this.store.getLeaseByJti(fresh.jti);
    if (successor && (await this.store.linkSuccessor(expired.id, successor.id))) {
      await this.event('replaced', w.id, expired.id, 'expired', successor.id);
      this.log.info({ lease: expired.id, successor: successor.id, workload: w.id }, 'lease expired unrenewed; re-issued for the live workload');
    }
    // Linked now, or by a concurrent caller (another replica) a moment ago: either way the chain's end.
    return this.store.chainEnd(expired.id);
  }

  private view(r: LeaseRow, cached: boolean, grant: GrantRow | null = null): TokenView {
    const now = this.clock();
    const credential = this.grants.credentialOf(grant);
    return {
      token: r.token ?? '',
      jti: r.jti ?? '',
      lease_id: r.leaseId ?? '',
      role: r.role,
      workload: r.workloadId,
      issued_at: iso(r.tokenIssuedAt),
      expires_at: iso(r.expiresAt),
      ttl: Math.max(0, Math.floor((r.expiresAt - now) / 1000)),
      cached,
      ...(credential ? { cloud_credential: credential } : {}),
    };
  }

  /**
   * Intent row, then Vault, then (with a cloud) the grant's plan and the cloud,
   * then completion: a crash anywhere leaves rows reconcile understands.
   */
  private async mint(w: WorkloadRow, role: string, scopeKey: string, origin: MintOrigin = 'request'): Promise<TokenView> {
    const id = randomUUID();
    const start = this.clock();
    const claimUntil = start + this.settings.claimTtlMs;
    const cloud = cloudOf(scopeKey);
    // Durable before Vault is asked (the store's group commit shares the fsync with concurrent writes).
    const intent = await this.store.insertIntent({ id, workloadId: w.id, role, scopeKey, owner: this.settings.replica, at: start, claimUntil });
    await this.hooks?.at?.('issue:before-vault', intent);
    let issuedBy: IssuedCreds;
    try {
      issuedBy = await this.vault.issue(role, requestOf(scopeKey));
    } catch (err) {
      await this.store.closeIntent(id, 'failed', describeError(err), this.clock());
      this.metrics.failures.inc({ op: 'issue' });
      this.log.warn({ workload: w.id, role, lease: id, err: describeError(err) }, 'issue failed');
      if (err instanceof PermanentError) {
        const message = describeError(err.cause ?? err);
        // The engine's 400 names the field (`invalid cloud: role ... maps no aws target`, `invalid read[0]: ...`).
        const field = /\binvalid ([A-Za-z_][\w.]*(?:\[\d+\])?):/.exec(message)?.[1];
        throw new BrokerError('ERR_BAD_INPUT', `Vault refused the request: ${message}`, { field });
      }
      throw err;
    }
    await this.hooks?.at?.('issue:after-vault', intent);
    const loginId = issuedBy.loginId;
    // Issued under a login whose end is final (a re-login failing at max ttl): no longer than that.
    const creds = (await this.logins.cap(issuedBy.creds, loginId)).creds;
    let now = this.clock();
    const expiresAt = expiresAtOf(creds, now);
    let pending: PendingGrant | null = null;
    if (cloud) {
      try {
        pending = await this.grants.issue(intent, cloud, creds, expiresAt, claimUntil);
      } catch (err) {
        // Nothing may be left without an owner: the Vault lease goes too (reconcile revokes it should this fail).
        await this.vault.revoke(creds.lease_id, loginId).catch(() => undefined);
        await this.store.closeIntent(id, 'failed', describeError(err), this.clock());
        throw err;
      }
      now = this.clock();
    }
    const issued = {
      loginId,
      leaseId: creds.lease_id,
      jti: creds.jti,
      token: creds.token,
      ttlMs: creds.lease_duration * 1000,
      tokenIssuedAt: now,
      expiresAt,
      dueAt: nextRenewalAt(now, expiresAt, this.settings.timing, this.random),
    };
    // A successor the broker fetched is not the workload asking: it is recorded apart from the issuance rate.
    const record =
      origin === 'request'
        ? { at: this.clock(), kind: 'issued', workloadId: w.id, leaseRowId: id, reason: null, detail: role }
        : { at: this.clock(), kind: 'reissued', workloadId: w.id, leaseRowId: id, reason: origin, detail: role };
    // With a cloud grant still to complete, the record waits for it (as before); otherwise it commits with the lease.
    let row = await this.store.completeIntent(id, this.settings.replica, issued, pending ? undefined : record);
    if (!row) {
      // Our claim on the intent lapsed and reconcile may have treated it as abandoned: do not hand out a lease we do not own.
      if (pending) await this.grants.abandon(pending, intent, 'issuing took longer than the intent claim');
      await this.vault.revoke(creds.lease_id, loginId).catch(() => undefined);
      throw new BrokerError('ERR_VAULT', 'issuing took longer than the intent claim; try again');
    }
    if (pending && !(await this.grants.complete(pending, row))) {
      // Reconcile took the grant's intent over (its claim lapsed) and rolls it back: the lease has no use.
      await this.store.markRevoking(id, 'cloud_rollback', this.clock());
      this.onDue();
      throw new BrokerError('ERR_CLOUD_UNAVAILABLE', 'issuing took longer than the intent claim; try again');
    }
    if (pending) await this.event(record.kind, w.id, id, record.reason, role);
    else await this.afterEvent(record.kind, w.id, id, record.reason, role);
    this.metrics.issued.inc({ source: 'vault' });
    this.log.info({ workload: w.id, role, lease: id, jti: creds.jti, ttl_s: creds.lease_duration, cloud, origin }, 'lease issued');
    row = (await this.store.getLease(id)) as LeaseRow;
    // The workload may have ended (or been revoked) while Vault (or the cloud) answered.
    const current = await this.store.getWorkload(w.id);
    if (current?.state !== 'active' || row.state !== 'active') {
      await this.store.markRevoking(id, current?.reason ?? 'workload_ended', now);
      // A grant completed after its lease left active is torn down too.
      await this.store.revokeGrantsOfEndedLeases(this.clock());
      this.onDue();
      throw new BrokerError('ERR_CONFLICT', `workload ${w.id} has ended (${current?.reason ?? 'unknown reason'})`);
    }
    if (origin === 'request') await this.checkIssuanceRate(w);
    return this.view(row, false, pending ? await this.store.grantOfLease(id) : null);
  }

  private async checkIssuanceRate(w: WorkloadRow): Promise<void> {
    const a = this.settings.anomaly;
    const now = this.clock();
    const recent = await this.store.countEvents(w.id, 'issued', now - a.windowMs);
    if (recent < a.minCount) return;
    const older = (await this.store.countEvents(w.id, 'issued', now - a.baselineMs)) - recent;
    const expected = (older * a.windowMs) / Math.max(1, a.baselineMs - a.windowMs);
    if (recent > a.multiple * Math.max(expected, 1)) {
      await this.event('anomaly', w.id, null, 'anomaly_rate', `${recent} issued in ${a.windowMs} ms; usual ${expected.toFixed(2)}`);
      this.log.error({ alert: true, workload: w.id, name: w.name, recent, usual: Number(expected.toFixed(2)) }, 'issuance spike: revoking the workload');
      await this.endWorkload(w.id, 'anomaly_rate');
      throw new BrokerError('ERR_CONFLICT', `workload ${w.id} was revoked: issuance rate anomaly`);
    }
  }

  /**
   * The current token of the chain a jti belongs to: a lease replaced near its
   * max_ttl (or re-issued after an expiry) answers its successor's, however
   * many hops on (one query follows the chain). A chain whose lease expired
   * unrenewed while its workload lives is re-issued here. Never an expired
   * token: a 410 when the chain was ended (revoked, gone, its workload ended),
   * a 502 while Vault cannot be reached.
   */
  async getToken(jti: string): Promise<TokenView> {
    const named = await this.store.getLeaseByJti(jti);
    if (!named) throw notFound(`no token with jti ${jti}`);
    let row = (await this.store.chainEnd(named.id)) ?? named;
    if (row.state === 'expired' && row.reason === null) row = (await this.reissue(row)) ?? row;
    if (row.state !== 'active' && !(row.state === 'revoking' && row.reason === 'replaced')) {
      throw new BrokerError('ERR_GONE', `token ${jti} is no longer valid: lease ${row.state}${row.reason ? ` (${row.reason})` : ''}`);
    }
    if (row.expiresAt <= this.clock()) {
      throw new BrokerError('ERR_VAULT', `token ${jti}: its lease reached its expiry before Vault renewed it; the broker is retrying, try again shortly`);
    }
    return this.view(row, true, cloudOf(row.scopeKey) ? await this.store.grantOfLease(row.id) : null);
  }

  async revokeToken(jtiOrLeaseId: string, reason: RevokeReason = 'explicit'): Promise<LeaseView> {
    const row = (await this.store.getLeaseByJti(jtiOrLeaseId)) ?? (await this.store.getLeaseByVaultId(jtiOrLeaseId)) ?? (await this.store.getLease(jtiOrLeaseId));
    if (!row) throw notFound(`no lease with jti or id ${jtiOrLeaseId}`);
    if (await this.store.markRevoking(row.id, reason, this.clock())) {
      await this.event('revoke_requested', row.workloadId, row.id, reason);
      this.onDue();
    }
    return leaseView((await this.store.getLease(row.id)) as LeaseRow, await this.store.grantOfLease(row.id));
  }

  /** Usage events a PEP posted: kept for the console, and run through the anomaly rules (whose actions finish later). */
  recordUsage(events: UsageEvent[]): { accepted: number } {
    for (const e of events) {
      this.usage.record(e);
      void this.watcher.observe(e);
    }
    return { accepted: events.length };
  }

  /** Resolves once every anomaly action started so far is done (tests, shutdown). */
  anomaliesSettled(): Promise<void> {
    return this.watcher.settled();
  }

  /** A resource server saw the token used out of scope: the whole workload is revoked. */
  async report(jti: string, reason: string): Promise<{ workload: string; revoked: number }> {
    const row = await this.store.getLeaseByJti(jti);
    if (!row) throw notFound(`no token with jti ${jti}`);
    await this.event('report', row.workloadId, row.id, 'anomaly_report', reason.slice(0, 500));
    this.log.error({ alert: true, workload: row.workloadId, jti, report: reason.slice(0, 200) }, 'out-of-scope use reported: revoking the workload');
    const revoked = await this.endWorkload(row.workloadId, 'anomaly_report');
    return { workload: row.workloadId, revoked };
  }

  // ---- the loop's work ----

  /** Claims due leases and renews or revokes them; returns how many it handled. */
  async processDue(): Promise<number> {
    const now = this.clock();
    const rows = await this.store.claimDue(this.settings.replica, now, now + this.settings.claimTtlMs, this.settings.batchSize);
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const row = rows[next++];
        try {
          if (row.state === 'active') await this.renewOne(row);
          else await this.revokeOne(row);
        } catch (err) {
          this.log.error({ lease: row.id, err: describeError(err) }, 'lease step failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, rows.length) }, worker));
    return rows.length + (await this.grants.processDue());
  }

  private async renewOne(row: LeaseRow): Promise<void> {
    const now = this.clock();
    this.metrics.renewalLag.observe(Math.max(0, now - row.dueAt) / 1000);
    // Past the registry's expiry, Vault may still hold the lease: a broker killed after Vault
    // renewed it and before the registry recorded that left a stale expiry. Vault decides.
    const pastExpiry = now >= row.expiresAt;
    let creds: Creds;
    let byLogin: boolean;
    try {
      // The ttl the lease was issued with, not the role's: a ttl asked above the role's stays that long.
      // Capped to the end of the token that obtained it, once that end counts (logins.ts).
      ({ creds, byLogin } = await this.logins.cap(await this.vault.renew(row.leaseId as string, row.ttlMs, row.loginId), row.loginId));
    } catch (err) {
      this.metrics.failures.inc({ op: 'renew' });
      const t = this.clock();
      // Vault dropped the lease with the token that obtained it (the broker was down past that
      // token's end): an end the broker could not prevent, like an expiry, so the chain goes on.
      const issuerEnded = err instanceof PermanentError && this.logins.ended(row.loginId, t);
      if (pastExpiry || issuerEnded) {
        const why = issuerEnded && !pastExpiry ? 'the broker login that obtained it ended before it could be re-fetched' : 'expired before it could be renewed';
        await this.store.finish(row.id, 'expired', t, row.lastError ?? why);
        await this.event('expired', row.workloadId, row.id, null, row.lastError);
        this.log.warn({ lease: row.id, workload: row.workloadId }, 'lease expired before it could be renewed');
        // Vault answered (the lease is gone there): re-issue now. Unreachable: the next GET of its jti does.
        if (err instanceof PermanentError) {
          await this.reissue({ ...row, state: 'expired' }).catch((e) => this.log.warn({ lease: row.id, err: describeError(e) }, 're-issue after expiry failed; the next GET of its jti retries'));
        }
        return;
      }
      if (err instanceof PermanentError) {
        this.metrics.renewals.inc({ result: 'gone' });
        await this.store.finish(row.id, 'gone', t, describeError(err));
        await this.event('gone', row.workloadId, row.id, null, describeError(err));
        this.log.warn({ lease: row.id, workload: row.workloadId, err: describeError(err) }, 'Vault no longer knows the lease');
        return;
      }
      this.metrics.renewals.inc({ result: 'error' });
      const attempts = row.attempts + 1;
      const due = backoffAt(t, attempts, row.expiresAt, this.settings.timing, this.random);
      await this.store.recordFailure(row.id, this.settings.replica, attempts, due, describeError(err));
      this.log.warn({ lease: row.id, attempts, retry_in_ms: due - t, err: describeError(err) }, 'renewal failed; backing off');
      return;
    }
    await this.hooks?.at?.('renew:after-vault', row);
    const t = this.clock();
    const expiresAt = expiresAtOf(creds, t);
    const renewed = { token: creds.token, tokenIssuedAt: t, expiresAt, dueAt: nextRenewalAt(t, expiresAt, this.settings.timing, this.random) };
    if (!(await this.store.recordRenewal(row.id, this.settings.replica, renewed))) return;
    this.metrics.renewals.inc({ result: 'ok' });
    this.usage.count('renewed', t);
    if (this.audit) await this.auditLine('renewed', row.workloadId, row, null, `until ${new Date(expiresAt).toISOString()}`);
    // Renewed past the cloud credential's expiry: refresh the credential now, with the new token.
    if (cloudOf(row.scopeKey)) await this.store.refreshGrantOfLease(row.id, expiresAt, t);
    await this.hooks?.at?.('renewed', { ...row, ...renewed });
    this.log.debug({ lease: row.id, ttl_s: creds.lease_duration }, 'lease renewed');
    // The hard end (max_ttl, or the end of the login that obtained it) is within one ttl. Fetch a successor now.
    if (nearHardEnd(creds, t, row.ttlMs)) await this.replace(row, byLogin ? 'login_end' : 'max_ttl');
  }

  private async replace(old: LeaseRow, why: ReplaceWhy): Promise<void> {
    const w = await this.store.getWorkload(old.workloadId);
    if (!w || w.state !== 'active') return;
    try {
      const fresh = await this.mint(w, old.role, old.scopeKey, why);
      const successor = await this.store.getLeaseByJti(fresh.jti);
      await this.store.markRevoking(old.id, 'replaced', this.clock() + this.settings.replaceGraceMs, successor?.id);
      await this.event('replaced', old.workloadId, old.id, 'replaced', successor?.id ?? null);
      const fields = { lease: old.id, successor: successor?.id, workload: old.workloadId, login: old.loginId ?? undefined };
      if (why === 'max_ttl') this.log.info(fields, 'max_ttl near: re-fetched; old lease revoked after grace');
      else this.log.info(fields, 'the broker login that obtained it ends: re-fetched under the current login; old lease revoked after grace');
    } catch (err) {
      this.log.warn({ lease: old.id, why, err: describeError(err) }, 're-fetch failed; will retry at the next renewal');
    }
  }

  private async revokeOne(row: LeaseRow): Promise<void> {
    const reason = row.reason ?? 'explicit';
    try {
      if (row.leaseId) await this.vault.revoke(row.leaseId, row.loginId);
    } catch (err) {
      this.metrics.failures.inc({ op: 'revoke' });
      const t = this.clock();
      const attempts = row.attempts + 1;
      if (t >= row.expiresAt) {
        await this.store.finish(row.id, 'expired', t, describeError(err));
        await this.event('expired', row.workloadId, row.id, reason, 'expired while revocation was failing');
        return;
      }
      if (err instanceof PermanentError || attempts >= this.settings.maxRevokeAttempts) {
        await this.store.finish(row.id, 'irrevocable', t, describeError(err));
        await this.event('irrevocable', row.workloadId, row.id, reason, describeError(err));
        this.log.error({ alert: true, lease: row.id, workload: row.workloadId, attempts, err: describeError(err) }, 'lease is irrevocable');
        return;
      }
      const due = backoffAt(t, attempts, row.expiresAt, this.settings.timing, this.random);
      await this.store.recordFailure(row.id, this.settings.replica, attempts, due, describeError(err));
      this.log.warn({ lease: row.id, attempts, retry_in_ms: due - t, err: describeError(err) }, 'revocation failed; backing off');
      return;
    }
    await this.store.finish(row.id, 'revoked', this.clock());
    await this.event('revoked', row.workloadId, row.id, reason);
    this.metrics.revocations.inc({ reason });
    this.log.info({ lease: row.id, workload: row.workloadId, jti: row.jti, reason }, 'lease revoked');
  }

  /**
   * Heartbeats, processes, maximum age. A heartbeat workload is dead after
   * interval × (1 + tolerance) of silence, counted from its last heartbeat or
   * from when the broker could last not hear it (its start, a registry outage),
   * whichever is later: the broker's own downtime never ends a workload.
   */
  async checkTriggers(): Promise<void> {
    const now = this.clock();
    let workloads: WorkloadRow[];
    try {
      workloads = await this.store.activeWorkloads();
    } catch (err) {
      this.registryFailed = true;
      throw err;
    }
    if (this.registryFailed) {
      this.registryFailed = false;
      this.livenessFrom = Math.max(this.livenessFrom, now);
      this.log.warn({ grace_from: iso(now) }, 'the registry works again: heartbeat silence counts from now');
    }
    for (const w of workloads) {
      const death = this.deathOf(w, now);
      if (death !== null) await this.endWorkload(w.id, death);
    }
    // Grants whose lease left active without them (a crash between two writes).
    if ((await this.store.revokeGrantsOfEndedLeases(now)) > 0) this.onDue();
    if (this.settings.maxLeaseAgeMs > 0) {
      let n = 0;
      for (const l of await this.store.leasesOlderThan(now - this.settings.maxLeaseAgeMs, 1000)) {
        if (await this.store.markRevoking(l.id, 'max_age', now)) n++;
      }
      if (n > 0) this.onDue();
    }
  }

  /** Why an active workload is dead now (heartbeats missed, its process gone), or null while it lives. */
  private deathOf(w: WorkloadRow, now: number): RevokeReason | null {
    const silentSince = Math.max(w.lastHeartbeatAt, this.livenessFrom);
    if (w.heartbeatIntervalMs > 0 && now - silentSince > w.heartbeatIntervalMs * (1 + this.settings.heartbeatTolerance)) return 'heartbeat_missed';
    if (w.pid !== null && w.host === this.settings.host && !pidAlive(w.pid)) return 'process_exited';
    return null;
  }

  /**
   * The logins whose tokens end (this process's earlier ones, a final current one,
   * those of processes gone): renewals of their leases that would come too late are
   * brought forward, so each is re-fetched under the current login before that end.
   */
  async followLogins(): Promise<number> {
    const moved = await this.logins.follow();
    if (moved > 0) this.onDue();
    return moved;
  }

  /**
   * At start, after the broker's own login: the logins of earlier processes are no longer
   * renewed (`all`: every other login, a SQLite file has one broker; else this replica's),
   * so their leases are renewed with the new token only until their login's recorded end,
   * and re-fetched before it. Returns how many logins it took over.
   */
  async inheritLogins(all: boolean): Promise<number> {
    const n = await this.logins.inherit(all ? null : this.settings.replica);
    if (n > 0) this.onDue();
    return n;
  }

  async refreshGauges(): Promise<void> {
    const s = await this.store.stats();
    this.metrics.activeLeases.set(s.byState.active ?? 0);
    this.metrics.irrevocable.set(s.byState.irrevocable ?? 0);
    await this.grants.refreshGauges(s.grants);
  }

  /**
   * Reconcile against Vault: every lease Vault holds for the broker's roles must
   * be owned by a registry row; any other is revoked. Intents whose issuer died
   * are closed. Vault is listed before the registry is read, so a lease that
   * completes in between is seen as owned; one still in flight belongs to an open intent.
   */
  async reconcile(): Promise<{ orphansRevoked: number; intentsClosed: number; skipped: number; grantsRolledBack: number }> {
    const roles = new Set([...this.settings.roles, ...(await this.store.knownRoles())]);
    const inVault: string[] = [];
    for (const role of roles) inVault.push(...(await this.vault.list(role)));
    const now = this.clock();
    const open = await this.store.openIntentCount(now);
    const owned = await this.store.ownedVaultLeaseIds();
    let orphansRevoked = 0;
    let skipped = 0;
    for (const leaseId of inVault) {
      if (owned.has(leaseId)) continue;
      if (open > 0) {
        const info = await this.vault.lookup(leaseId);
        if (info === null) continue;
        const issued = Date.parse(info.issue_time);
        if (Number.isFinite(issued) && now - issued < this.settings.claimTtlMs) {
          skipped++; // an issue under way may own it: look again once its claim has expired
          continue;
        }
      }
      try {
        await this.vault.revoke(leaseId);
        orphansRevoked++;
        this.metrics.revocations.inc({ reason: 'orphan' });
        await this.event('orphan_revoked', null, null, 'orphan', leaseId);
        this.log.warn({ lease_id: leaseId }, 'revoked a lease no registry row owns');
      } catch (err) {
        this.metrics.failures.inc({ op: 'revoke' });
        this.log.error({ lease_id: leaseId, err: describeError(err) }, 'could not revoke an orphan lease; will retry at the next reconcile');
      }
    }
    let intentsClosed = 0;
    for (const i of await this.store.staleIntents(now)) {
      await this.store.closeIntent(i.id, 'abandoned', 'issuer stopped before recording the answer', now);
      await this.event('intent_abandoned', i.workloadId, i.id, null);
      intentsClosed++;
    }
    // Cloud grants whose issuer died between the plan and the registry: rolled back from the plan.
    const grantsRolledBack = await this.grants.rollbackStale();
    await this.store.pruneLogins(now - LOGIN_RETENTION_MS);
    if (orphansRevoked + intentsClosed + grantsRolledBack > 0) {
      this.log.info({ orphans_revoked: orphansRevoked, intents_closed: intentsClosed, grants_rolled_back: grantsRolledBack }, 'reconciled with Vault');
    }
    return { orphansRevoked, intentsClosed, skipped, grantsRolledBack };
  }

  /**
   * SIGTERM with revoke_on_shutdown: end this replica's workloads (every
   * workload with `all`: a SQLite store has one broker) and revoke their leases now.
   */
  async revokeForShutdown(deadline: number, all: boolean): Promise<{ revoked: number; left: number }> {
    const rows: LeaseRow[] = [];
    for (const w of await this.store.activeWorkloads()) {
      if (!all && w.replica !== this.settings.replica) continue;
      await this.store.endWorkload(w.id, 'shutdown', this.clock());
      await this.revokeWorkloadLeases(w.id, 'shutdown');
      rows.push(...(await this.store.leasesOfWorkload(w.id, ['revoking'])));
    }
    let revoked = 0;
    let next = 0;
    const worker = async () => {
      while (next < rows.length && this.clock() < deadline) {
        const row = rows[next++];
        try {
          if (row.leaseId) await this.vault.revoke(row.leaseId, row.loginId);
          await this.store.finish(row.id, 'revoked', this.clock());
          await this.event('revoked', row.workloadId, row.id, row.reason ?? 'shutdown');
          this.metrics.revocations.inc({ reason: row.reason ?? 'shutdown' });
          revoked++;
        } catch (err) {
          // Left in 'revoking': the next start retries it.
          this.log.warn({ lease: row.id, err: describeError(err) }, 'revocation at shutdown failed; the next start retries it');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.settings.concurrency, rows.length) }, worker));
    // Their cloud grants went to revoking with them, due now: tear them down in what time is left.
    await this.grants.processDue(deadline).catch((err) => this.log.warn({ err: describeError(err) }, 'cloud teardown at shutdown failed; the next start retries it'));
    return { revoked, left: rows.length - revoked };
  }

  async status(): Promise<Record<string, unknown>> {
    const s = await this.store.stats();
    return { replica: this.settings.replica, store: this.store.kind, leases: s.byState, workloads: s.workloads, cloud_grants: s.grants };
  }

  async leases(states: readonly LeaseRow['state'][], limit: number): Promise<LeaseView[]> {
    const rows = await this.store.listLeases(states, limit);
    const grants = await this.store.grantsOfLeases(rows.map((r) => r.id));
    return rows.map((r) => leaseView(r, grants.get(r.id) ?? null));
  }

  async events(limit: number) {
    return this.store.recentEvents(limit);
  }

  /** The live leases for the console: with their workload's name and the current token's scope (never the token). */
  async inventory(limit = 1000): Promise<Array<LeaseView & { scope: string; workload_name: string }>> {
    const rows = await this.store.listLeases(['active', 'revoking', 'irrevocable'], limit);
    const names = new Map<string, string>();
    const out: Array<LeaseView & { scope: string; workload_name: string }> = [];
    for (const r of rows) {
      if (!names.has(r.workloadId)) names.set(r.workloadId, (await this.store.getWorkload(r.workloadId))?.name ?? '');
      out.push({ ...leaseView(r), scope: scopeClaim(r.token), workload_name: names.get(r.workloadId)! });
    }
    return out;
  }

  /** A token's lease and the broker's events about it, for the console; null when the broker holds no such token. */
  async story(jti: string): Promise<{ lease: LeaseView; events: Array<{ at: number; kind: string; reason: string | null; detail: string | null }> } | null> {
    const row = await this.store.getLeaseByJti(jti);
    if (!row) return null;
    const events = (await this.store.recentEvents(10_000)).filter((e) => e.leaseRowId === row.id || (e.workloadId === row.workloadId && e.leaseRowId === null));
    return { lease: leaseView(row), events: events.map((e) => ({ at: e.at, kind: e.kind, reason: e.reason, detail: e.detail })) };
  }
}

/** The scope claim of a token the broker holds (only that claim is read). */
function scopeClaim(token: string | null): string {
  if (!token) return '';
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { scope?: unknown };
    return typeof claims.scope === 'string' ? claims.scope : '';
  } catch {
    return '';
  }
}
