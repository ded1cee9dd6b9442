// Column ↔ record mapping shared by both stores (columns are snake_case).

import type { CloudGrant, CloudName, CloudPlan } from '../../iam/types.ts';
import type { EventRow, GrantFacts, GrantRow, GrantState, LeaseRow, LeaseState, LoginRow, WorkloadRow } from '../types.ts';

type Raw = Record<string, unknown>;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function workloadFromRow(r: Raw): WorkloadRow {
  return {
    id: String(r.id),
    name: String(r.name),
    heartbeatIntervalMs: num(r.heartbeat_interval_ms),
    pid: numOrNull(r.pid),
    host: String(r.host),
    replica: String(r.replica),
    state: r.state === 'ended' ? 'ended' : 'active',
    reason: strOrNull(r.reason),
    createdAt: num(r.created_at),
    lastHeartbeatAt: num(r.last_heartbeat_at),
    endedAt: numOrNull(r.ended_at),
  };
}

export function leaseFromRow(r: Raw): LeaseRow {
  return {
    id: String(r.id),
    workloadId: String(r.workload_id),
    role: String(r.role),
    scopeKey: String(r.scope_key),
    state: String(r.state) as LeaseState,
    leaseId: strOrNull(r.lease_id),
    jti: strOrNull(r.jti),
    token: strOrNull(r.token),
    ttlMs: num(r.ttl_ms),
    createdAt: num(r.created_at),
    tokenIssuedAt: num(r.token_issued_at),
    expiresAt: num(r.expires_at),
    dueAt: num(r.due_at),
    attempts: num(r.attempts),
    renewals: num(r.renewals),
    lastError: strOrNull(r.last_error),
    claimOwner: strOrNull(r.claim_owner),
    claimUntil: num(r.claim_until),
    reason: strOrNull(r.reason),
    replacedBy: strOrNull(r.replaced_by),
    endedAt: numOrNull(r.ended_at),
    loginId: strOrNull(r.login_id),
  };
}

export function loginFromRow(r: Raw): LoginRow {
  return {
    id: String(r.id),
    replica: String(r.replica),
    method: r.method === 'jwt' ? 'jwt' : 'approle',
    loggedInAt: num(r.logged_in_at),
    expiresAt: numOrNull(r.expires_at),
    renewable: num(r.renewable) === 1,
    final: num(r.expiry_final) === 1,
    updatedAt: num(r.updated_at),
  };
}

export function eventFromRow(r: Raw): EventRow {
  return {
    at: num(r.at),
    kind: String(r.kind),
    workloadId: strOrNull(r.workload_id),
    leaseRowId: strOrNull(r.lease_row_id),
    reason: strOrNull(r.reason),
    detail: strOrNull(r.detail),
  };
}

/** A JSON column: TEXT in both stores. */
function json<T>(v: unknown): T | null {
  if (v === null || v === undefined) return null;
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

export function grantFromRow(r: Raw): GrantRow {
  return {
    id: String(r.id),
    leaseRowId: String(r.lease_row_id),
    workloadId: String(r.workload_id),
    cloud: String(r.cloud) as CloudName,
    state: String(r.state) as GrantState,
    plan: json<CloudPlan>(r.plan) as CloudPlan,
    facts: json<GrantFacts>(r.facts) as GrantFacts,
    grant: json<CloudGrant>(r.grant_json),
    expiresAt: num(r.expires_at),
    dueAt: num(r.due_at),
    attempts: num(r.attempts),
    refreshes: num(r.refreshes),
    lastError: strOrNull(r.last_error),
    claimOwner: strOrNull(r.claim_owner),
    claimUntil: num(r.claim_until),
    reason: strOrNull(r.reason),
    detail: strOrNull(r.detail),
    createdAt: num(r.created_at),
    endedAt: numOrNull(r.ended_at),
  };
}
