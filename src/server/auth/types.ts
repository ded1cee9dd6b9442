// The contract between the dev server and its auth methods (Vault's
// credential backends): a request shaped like a logical request comes in, a
// response with data or with an `auth` (a successful login) goes out. The
// server, not the method, turns a login's auth into an identity and a token.

import type { Clock, LoginAuth, Operation, Storage } from '../../sdk/logical.ts';

export type { LoginAuth };

/** Auth method types this server can enable (besides the built-in token method). */
export const AUTH_METHOD_TYPES = ['approle', 'jwt'] as const;
export type AuthMethodType = (typeof AUTH_METHOD_TYPES)[number];

/** What a method knows about the mount it serves. */
export interface AuthMountContext {
  /** With trailing slash, relative to `auth/`: `approle/`. */
  path: string;
  accessor: string;
  type: string;
  /** The mount's max lease ttl (tuned, else the system's), in seconds: Vault's System().MaxLeaseTTL(). Absent: the system's. */
  maxLeaseTtlSeconds?: number;
}

export interface AuthRequest {
  operation: Exclude<Operation, 'renew' | 'revoke' | 'rollback' | 'resolve-path'>;
  /** Relative to the mount, no leading slash: `role/orders`, `login`. */
  path: string;
  data: Record<string, unknown>;
  storage: Storage;
  /** The client's address (IPv4 or IPv6, no port), for CIDR bindings. */
  remoteAddr?: string;
  mount: AuthMountContext;
}

export interface AuthResponse {
  data?: Record<string, unknown>;
  warnings?: string[];
  auth?: LoginAuth;
}

/** One auth method instance, serving one mount. */
export interface AuthBackend {
  readonly type: AuthMethodType;
  /** Paths (relative to the mount) served without a token: `login`. */
  unauthenticated(path: string): boolean;
  /** The one form of a path the ACL check and the handler both use (case-insensitive names lower-cased). */
  canonicalPath(path: string): string;
  /** Whether a write creates (false) or updates (true); undefined when the path has no existence check. */
  exists(req: AuthRequest): Promise<boolean | undefined>;
  handle(req: AuthRequest): Promise<AuthResponse | null>;
  /** Releases caches and timers; the backend is not used afterwards. */
  cleanup(): Promise<void>;
}

export interface AuthBackendOptions {
  clock: Clock;
}
