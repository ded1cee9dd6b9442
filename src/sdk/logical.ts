// The engine's transport-neutral interface, modelled on Vault's logical backend
// (sdk/logical): a request shaped like logical.Request goes in, a response shaped
// like logical.Response (or a typed EngineError) comes out. Nothing here knows
// about HTTP or gRPC; the dev server and the plugin translate to and from it.

/** Vault's logical operations. */
export type Operation =
  | 'read'
  | 'create'
  | 'update'
  | 'delete'
  | 'list'
  | 'renew'
  | 'revoke'
  | 'rollback'
  | 'help'
  /** OpenBao 2.7+: asks the backend for the canonical form of a request path, which the ACL is then checked on. */
  | 'resolve-path';

export const OPERATIONS: readonly Operation[] = [
  'read',
  'create',
  'update',
  'delete',
  'list',
  'renew',
  'revoke',
  'rollback',
  'help',
  'resolve-path',
];

/** One entry of Vault's logical storage: a key and opaque bytes. */
export interface StorageEntry {
  key: string;
  value: Uint8Array;
}

/**
 * Vault's logical storage verbs. `list(prefix)` returns the keys directly under
 * the prefix, relative to it, with a trailing `/` for "folders", as Vault does.
 */
export interface Storage {
  get(key: string): Promise<StorageEntry | null>;
  put(entry: StorageEntry): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<string[]>;
}

/** Who is calling: what Vault knows about the token behind the request. */
export interface Caller {
  /** The token's display name (for example `token`, `approle`, `root`). */
  displayName: string;
  /** The identity entity id, when the token has one. */
  entityId?: string;
  /** The calling token's accessor (Vault's client_token_accessor): not a secret, names the token. */
  tokenAccessor?: string;
  /** The client's address as seen by the server (IPv4 or IPv6, no port). */
  remoteAddr?: string;
  /** The policies of the calling token (informational). */
  policies?: string[];
}

/**
 * A lease's secret as stored by Vault's expiration manager and handed back to
 * the engine on renew and revoke (logical.Secret).
 */
export interface StoredSecret {
  /** The secret type the engine declared (framework.Secret's Type). */
  type: string;
  /** Data the engine asked to keep for later renew/revoke; never shown to clients. */
  internalData: Record<string, unknown>;
  leaseId?: string;
  /** The lease's current ttl and cap, in milliseconds. */
  ttlMs: number;
  maxTtlMs: number;
  renewable: boolean;
  /** When the lease was first issued (ms since the epoch). */
  issueTimeMs: number;
  /** The increment the client asked for on renew, in ms (0: none asked). */
  incrementMs?: number;
}

/** A request to the engine (logical.Request). */
export interface LogicalRequest {
  operation: Operation;
  /** Path relative to the mount, without a leading slash (e.g. `creds/demo`). */
  path: string;
  /** The request body (or query for reads/lists), already JSON-decoded. */
  data: Record<string, unknown>;
  /** The stored secret, on renew and revoke. */
  secret?: StoredSecret;
  caller: Caller;
  storage: Storage;
  /** The mount point with a trailing slash, e.g. `tvm/`. */
  mountPoint: string;
  /**
   * The mount's lease ttls as the server applies them (Vault's SystemView
   * DefaultLeaseTTL/MaxLeaseTTL: the mount's tune, else the system's), asked
   * for only when needed. Absent: no limit beyond the engine's own.
   */
  mountLimits?: () => Promise<MountLimits>;
  /** The mount's accessor and type (auth methods key their state by accessor). */
  mountAccessor?: string;
  mountType?: string;
  /**
   * What the server's own backends (sys, the token store) need of the request
   * beyond this (the caller's token entry, its ACL, the wrapping ttl): set only
   * by the dev server for its built-in backends, never for an engine or a
   * plugin. Those backends read it through a typed accessor.
   */
  context?: object;
}

/** A mount's effective lease ttls in ms (0: none). */
export interface MountLimits {
  defaultTtlMs: number;
  maxTtlMs: number;
}

/** Lease options of a secret the engine returns (logical.Secret's LeaseOptions). */
export interface SecretOut {
  type: string;
  ttlMs: number;
  maxTtlMs: number;
  renewable: boolean;
  internalData: Record<string, unknown>;
  /** Kept from the stored secret on renew; set by the transport on issue. */
  issueTimeMs?: number;
}

/**
 * Keys of `data` that ask the transport for a raw HTTP response instead of
 * Vault's JSON envelope (logical.HTTPContentType, HTTPRawBody, HTTPStatusCode).
 */
export const HTTP_CONTENT_TYPE = 'http_content_type';
export const HTTP_RAW_BODY = 'http_raw_body';
export const HTTP_STATUS_CODE = 'http_status_code';
/**
 * A raw answer that goes on after its body (server-sent events): the
 * transport calls it with a writer once the body is out and calls what it
 * returns when the client goes. Only an in-process transport (the dev server)
 * can keep the answer open; one that cannot (a plugin's gRPC reply) sends the
 * body alone, which an event-stream client reads as a stream that ended.
 */
export const HTTP_RAW_STREAM = 'http_raw_stream';
export type RawStream = (write: (chunk: string) => void) => () => void;

/** A successful login (logical.Auth), before the server creates the identity and the token. */
export interface LoginAuth {
  /** The role's token policies (sanitised by the server). */
  policies: string[];
  noDefaultPolicy: boolean;
  /** 0: the mount's (else the system's) default. */
  ttlMs: number;
  /** 0: the mount's (else the system's) max. */
  maxTtlMs: number;
  explicitMaxTtlMs: number;
  numUses: number;
  /** The issued token may be used only from these blocks. */
  boundCidrs: string[];
  /** Token metadata (`role_name` for AppRole, `role` and mapped claims for JWT). */
  metadata: Record<string, string>;
  /** Appended to the mount's name for the token's display name. */
  displayName: string;
  /** The entity alias: AppRole's role_id, the JWT's user claim value. */
  alias: { name: string; metadata: Record<string, string> };
  /**
   * The workload's name within the mount (the AppRole role name, the JWT's
   * user claim value): the server qualifies it by mount to form the subject
   * of the tokens this workload vends.
   */
  subjectName: string;
}

/** How the HTTP layer shows an answer, where the server's own backends need more than `data` (never set by an engine). */
export interface HttpHints {
  /** The data repeated at the top level of the envelope, as Vault does for some sys endpoints. */
  topLevel?: boolean;
  /** The data is the whole body, without the envelope (sys/health, sys/seal-status), with this status. */
  plain?: { status: number };
  /** The accessor of a token the answer carries (wrap_info.wrapped_accessor when wrapped). */
  wrappedAccessor?: string;
  /** False: never wrapped (unwrap and lookup themselves). */
  wrappable?: boolean;
  /** The lease the answer is about (sys/leases/renew, an unwrapped secret): the envelope's lease fields. */
  lease?: { id: string; durationSeconds: number; renewable: boolean };
}

/** A response from a backend (logical.Response). */
export interface LogicalResponse {
  data?: Record<string, unknown>;
  secret?: SecretOut;
  warnings?: string[];
  /** A login: the server creates the identity and the token (auth methods). */
  login?: LoginAuth;
  /** A token the backend created itself (the token store), as Vault's envelope shows it. */
  auth?: Record<string, unknown>;
  http?: HttpHints;
}

/** The answer to an existence check (decides create vs update for ACLs). */
export interface ExistenceResult {
  /** Whether the path has an existence check at all. */
  checkFound: boolean;
  exists: boolean;
}

/** Paths with special handling, as Vault's logical.Paths. Globs end in `*`. */
export interface SpecialPaths {
  unauthenticated: string[];
  /** Paths that need sudo on top of the operation's capability. */
  root: string[];
  /** The server's own backends: a valid token is needed, and the backend decides what it may see (no ACL check on the path). */
  tokenOnly?: string[];
}

/** A secrets engine as the transports see it (logical.Backend). */
export interface Backend {
  readonly type: 'secret';
  /** Handles one request. Resolves to `null` for "not found" (HTTP 404). Throws EngineError. */
  handleRequest(req: LogicalRequest): Promise<LogicalResponse | null>;
  handleExistenceCheck(req: LogicalRequest): Promise<ExistenceResult>;
  specialPaths(): SpecialPaths;
  /** Called once the storage is reachable (logical.Backend Initialize). */
  initialize(storage: Storage): Promise<void>;
  /** Drops cached state for a storage key changed elsewhere (replication, another node). */
  invalidateKey(key: string): void;
  /** Releases timers and caches; the backend is not used afterwards. */
  cleanup(): Promise<void>;
}

/** Milliseconds since the epoch; injected so tests can freeze and move time. */
export type Clock = () => number;
