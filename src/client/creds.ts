// creds/<role>: issue a signed token under a lease. A read takes the role's
// defaults; a write narrows the request (ttl, read, write, audience) or binds
// the token to a DPoP key (dpop_jwk).

import type { JsonWebKey } from 'node:crypto';
import { jwkThumbprint } from '../pep/dpop.ts';
import { apiPath, type VaultConnection, type VaultResponse } from './connection.ts';
import { UnexpectedResponseError } from './errors.ts';

export interface CredsRequest {
  /** A Vault duration string or seconds; at most the role's max_ttl. */
  ttl?: string | number;
  /** Narrow the read scope; each pattern must be covered by the role's. */
  read?: string[];
  /** Narrow the write scope; each pattern must be covered by the role's. */
  write?: string[];
  /** A subset of the role's audiences. */
  audience?: string[];
  /**
   * A cloud the token will be exchanged with: the role must map it (`iam.<cloud>`);
   * the token gets that cloud's audience and the answer carries the cloud's target.
   */
  cloud?: 'aws' | 'gcp' | 'azure' | 'kubernetes';
  /** The PUBLIC key to bind the token to (cnf.jkt, RFC 9449); resource servers then want a DPoP proof of it. */
  dpop_jwk?: JsonWebKey;
}

/** The creds data the engine returns, with the lease it was issued under. */
export interface Creds {
  token: string;
  token_type: string;
  jti: string;
  scope: string;
  read: string[];
  write: string[];
  audiences: string[];
  issued_at: string;
  expires_at: string;
  role: string;
  /** RFC 3339: the lease's hard end (issue time + max_ttl); no renewal goes past it. */
  max_expires_at: string;
  /** With `dpop_jwk`: the key's RFC 7638 thumbprint, the token's cnf.jkt. */
  cnf_jkt?: string;
  /** With `cloud`: `{ <cloud>: <that cloud's validated target> }` from the role's iam (not secret). */
  iam?: Record<string, unknown>;
  lease_id: string;
  /** Seconds. */
  lease_duration: number;
  renewable: boolean;
}

/** Reads creds data plus lease fields out of an envelope (issue and renew answer the same shape). */
export function credsFromResponse(res: VaultResponse | null, what: string): Creds {
  const d = res?.data;
  if (!res || !d || typeof d.token !== 'string') {
    throw new UnexpectedResponseError(`${what} answered without a token`);
  }
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return {
    token: d.token,
    token_type: str(d.token_type),
    jti: str(d.jti),
    scope: str(d.scope),
    read: list(d.read),
    write: list(d.write),
    audiences: list(d.audiences),
    issued_at: str(d.issued_at),
    expires_at: str(d.expires_at),
    role: str(d.role),
    max_expires_at: str(d.max_expires_at),
    ...(typeof d.cnf_jkt === 'string' ? { cnf_jkt: d.cnf_jkt } : {}),
    ...(d.iam !== null && typeof d.iam === 'object' && !Array.isArray(d.iam) ? { iam: d.iam as Record<string, unknown> } : {}),
    lease_id: res.lease_id,
    lease_duration: res.lease_duration,
    renewable: res.renewable,
  };
}

function narrowing(req: CredsRequest): Record<string, unknown> | null {
  const body: Record<string, unknown> = {};
  if (req.ttl !== undefined) body.ttl = req.ttl;
  if (req.read !== undefined && req.read.length > 0) body.read = req.read;
  if (req.write !== undefined && req.write.length > 0) body.write = req.write;
  if (req.audience !== undefined && req.audience.length > 0) body.audience = req.audience;
  if (req.cloud !== undefined) body.cloud = req.cloud;
  if (req.dpop_jwk !== undefined) body.dpop_jwk = req.dpop_jwk;
  return Object.keys(body).length > 0 ? body : null;
}

/** Issues creds for a role: GET with the role's defaults, POST when the request narrows them. */
export async function issueCreds(conn: VaultConnection, role: string, req: CredsRequest = {}): Promise<Creds> {
  const path = `${conn.mount}/${apiPath('creds', role)}`;
  const body = narrowing(req);
  const res = body ? await conn.write(path, body) : await conn.read(path);
  const creds = credsFromResponse(res, `${body ? 'POST' : 'GET'} ${path}`);
  if (req.dpop_jwk !== undefined && creds.cnf_jkt !== jwkThumbprint(req.dpop_jwk)) {
    // A mount that ignores dpop_jwk (one older than DPoP binding) issues a bearer token: never hand it out as bound.
    throw new UnexpectedResponseError(`POST ${path} answered a token not bound to the DPoP key (lease ${creds.lease_id} was issued; revoke it)`);
  }
  return creds;
}

/** What a wrapped answer carries instead of its data (Vault's wrap_info). */
export interface WrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
}

/** Issues creds through a connection made with wrapTtl: the token stays wrapped, only its wrapping token comes back. */
export async function issueWrappedCreds(conn: VaultConnection, role: string, req: CredsRequest = {}): Promise<WrapInfo> {
  const path = `${conn.mount}/${apiPath('creds', role)}`;
  const body = narrowing(req);
  const res = body ? await conn.write(path, body) : await conn.read(path);
  const w = res?.wrap_info as Partial<WrapInfo> | null | undefined;
  if (!w || typeof w.token !== 'string' || typeof w.accessor !== 'string') {
    throw new UnexpectedResponseError(`${body ? 'POST' : 'GET'} ${path} answered without wrap_info: does the server wrap answers?`);
  }
  return { token: w.token, accessor: w.accessor, ttl: Number(w.ttl ?? 0), creation_time: String(w.creation_time ?? ''), creation_path: String(w.creation_path ?? '') };
}

/** Unwraps a wrapped creds answer with a connection whose token is the wrapping token (used once). */
export async function unwrapCreds(conn: VaultConnection): Promise<Creds> {
  return credsFromResponse(await conn.write('sys/wrapping/unwrap', {}), 'POST sys/wrapping/unwrap');
}
