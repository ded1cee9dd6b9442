// A request as the transport parsed it (its path in the one canonical form),
// and the answer before it is put in Vault's envelope: what http.ts hands
// the core and gets back.

import type { RawStream } from '../sdk/logical.ts';
import type { ACL } from './policy.ts';
import type { TokenEntry } from './token/store.ts';
import type { WrapInfo } from './wrapping.ts';

/** The operations a request can ask for: Vault's logical ones, with patch and help from the transport. */
export type HttpOperation = 'read' | 'list' | 'create' | 'update' | 'delete' | 'patch' | 'help';

/** One parsed request. */
export interface RequestContext {
  requestId: string;
  method: string;
  /** The path after /v1/, decoded, canonical (see canonicalPath), without a leading slash; lists end in `/`. */
  path: string;
  operation: HttpOperation;
  data: Record<string, unknown>;
  /** The raw X-Vault-Token / Bearer token, when given. */
  rawToken?: string;
  token?: TokenEntry;
  acl?: ACL;
  remoteAddr?: string;
  /** The If-None-Match header, for raw answers with an ETag. */
  ifNoneMatch?: string;
  wrapTtlMs?: number;
  /** This request used up the token's last use: it is revoked after the answer. */
  lastUse?: boolean;
  /** A backend served the path; unrouted paths are never logged whole. */
  routed?: boolean;
  /** Set while audit devices are enabled: where the request was routed, and whether its request line is written. */
  audit?: { mountPoint: string; mountType: string; requestLogged: boolean };
}

/** An answer before it is put in the envelope. */
export interface Reply {
  status?: number;
  data?: Record<string, unknown> | null;
  auth?: Record<string, unknown> | null;
  leaseId?: string;
  leaseDuration?: number;
  renewable?: boolean;
  warnings?: string[] | null;
  /** Fields repeated at the top level, as Vault does for some legacy sys endpoints. */
  top?: Record<string, unknown>;
  /** A JSON body sent as is, without the envelope (sys/health, sys/seal-status). */
  plain?: unknown;
  /** A raw body (logical.HTTPRawBody). */
  raw?: { status: number; contentType: string; body: string | Uint8Array; stream?: RawStream };
  /** 204 No Content. */
  empty?: boolean;
  /** The accessor of a token carried in the response (wrap_info.wrapped_accessor). */
  wrappedAccessor?: string;
  /** Whether wrapping may apply (false for unwrap itself and non-logical answers). */
  wrappable?: boolean;
  /** The envelope's mount_type. */
  mountType?: string;
  /** Set once the response was wrapped. */
  wrapInfo?: WrapInfo;
}

/**
 * The one form of a request path that routing, the ACL check and the handler
 * all use: no leading slash, no repeated slashes, and a trailing slash only on
 * lists (`sys/mounts//victim/` is `sys/mounts/victim`). Names a backend compares
 * without case are made canonical later, by the backend that knows them
 * (its resolve-path).
 */
export function canonicalPath(path: string, list: boolean): string {
  // Most paths are canonical already: no rewriting for them.
  const clean = !path.includes('//') && !path.startsWith('/') && !path.endsWith('/');
  const out = clean ? path : path.replace(/\/{2,}/g, '/').replace(/^\//, '').replace(/\/$/, '');
  return list ? `${out}/` : out;
}

/**
 * How many leading segments of a path are safe to show: paths that can carry a
 * secret (auth/token/lookup/<token> and kin, a lease id in
 * sys/leases/renew/<id>, a wrapping token) keep three; a path no backend
 * serves keeps two (a secret sent to the wrong place is still a secret); any
 * other path, all of them.
 */
export function clearSegments(path: string, routed: boolean): number {
  if (
    path.startsWith('auth/token/') ||
    path.startsWith('sys/wrapping/') ||
    path.startsWith('sys/leases/') ||
    /^sys\/(renew|revoke|revoke-prefix)\//.test(path)
  ) {
    return 3;
  }
  return routed ? Number.POSITIVE_INFINITY : 2;
}
