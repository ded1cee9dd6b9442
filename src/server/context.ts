// What the server's parts meet through: the services a request is served
// from (ServerCore), and what the server's own backends (sys, the token store,
// identity) learn of the request beyond a logical request (ServerRequest).

import type { AuditTable } from './audit_table.ts';
import type { AuthTable } from './auth/table.ts';
import type { IdentityStore } from './identity/store.ts';
import type { SecretsTable } from './mounts.ts';
import type { ACL, AclOperation, PolicyStore } from './policy.ts';
import type { Logger } from './logger.ts';
import type { TokenEntry, TokenStore } from './token/store.ts';
import type { LeaseEntry, StorageOp } from './types.ts';
import type { WrappingStore } from './wrapping.ts';
import { EngineError } from '../sdk/errors.ts';
import type { Backend, Clock, LogicalRequest, StoredSecret } from '../sdk/logical.ts';

/** What the core needs from the expiration manager. */
export interface LeaseManager {
  /** Tracks a secret; `writes` (the engine's, held) become durable in one batch with the lease. */
  register(input: {
    mountPoint: string;
    path: string;
    secret: StoredSecret;
    clientTokenId: string;
    writes?: StorageOp[];
  }): Promise<LeaseEntry> | LeaseEntry;
  lookup(leaseId: string): Promise<LeaseEntry | null | undefined> | LeaseEntry | null | undefined;
  renew(
    leaseId: string,
    incrementMs: number,
  ): Promise<{ lease: LeaseEntry; data?: Record<string, unknown>; warnings?: string[] }>;
  revoke(leaseId: string): Promise<unknown>;
  revokePrefix(prefix: string): Promise<unknown>;
  revokeByToken(tokenId: string): Promise<unknown>;
  revokeByMount(mountPoint: string): Promise<unknown>;
  list(prefix: string): Promise<string[]> | string[];
}

/** Everything the core serves from. */
export interface ServerCore {
  clock: Clock;
  logger?: Logger;
  tokens: TokenStore;
  policies: PolicyStore;
  mounts: SecretsTable;
  /** Enabled auth methods (`auth/<path>/`, besides the built-in `auth/token/`). */
  auth: AuthTable;
  identity: IdentityStore;
  wrapping: WrappingStore;
  leases: LeaseManager;
  /** The audit devices: every request and response is recorded on them. */
  audit: AuditTable;
  clusterName: string;
  clusterId: string;
  storageType: string;
  /** What sys/seal-status names the seal: `shamir` (dev, as Vault's dev mode), `static` (the persistent server's seal stanza). */
  sealType: string;
}

/** One entry of the router's mount table, as the system backend sees it. */
export interface RoutedMount {
  /** The path prefix with its trailing slash: `sys/`, `auth/token/`, `auth/approle/`, `tvm/`. */
  prefix: string;
  /** The backend's type (`system`, `token`, `approle`, `tvm`). */
  type: string;
  backend: Backend;
}

/** What the system backend asks of the router. */
export interface RouterView {
  /** The one form of a request path the ACL is checked on (names compared without case made canonical). */
  canonical(path: string): Promise<string>;
  /** Every mount, built-in and enabled, longest prefix first. */
  mounts(): RoutedMount[];
}

/**
 * The request as the server's own backends see it, beyond the logical
 * request: the services, and the caller's token (its entry, raw id, ACL).
 * Set on `LogicalRequest.context` by the core for the built-in mounts only.
 */
export class ServerRequest {
  readonly core: ServerCore;
  readonly router: RouterView;
  /** The full canonical request path (`sys/leases/renew`), for capability checks on it. */
  readonly path: string;
  /** The caller's token, once authenticated; absent on unauthenticated paths. */
  token?: TokenEntry;
  /** The raw token the request carried (X-Vault-Token / Bearer), which lookup-self and unwrap need. */
  rawToken?: string;
  acl?: ACL;
  /** The X-Vault-Wrap-TTL asked for (sys/wrapping/wrap needs it). */
  wrapTtlMs?: number;
  remoteAddr?: string;

  constructor(core: ServerCore, router: RouterView, path: string) {
    this.core = core;
    this.router = router;
    this.path = path;
  }

  /** Whether the caller holds sudo on `path` for `op` (root always does). */
  isSudo(path: string, op: AclOperation): boolean {
    const acl = this.acl;
    return acl !== undefined && (acl.root || acl.check(path, op).sudo);
  }
}

/** The server context of a request to a built-in backend (an internal error if the core did not set it). */
export function serverRequest(req: LogicalRequest): ServerRequest {
  if (req.context instanceof ServerRequest) return req.context;
  throw new EngineError('ERR_INTERNAL', 'a built-in backend was called without its server context');
}
