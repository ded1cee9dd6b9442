// Contracts between the dev server's parts: physical storage (memory or
// SQLite), the expiration manager, and the core that ties them to the
// backends. Each part is in its own file; these interfaces are how they meet.

import type { Storage, StoredSecret } from '../sdk/logical.ts';
import type { MountLeaseLimits } from './lease_ttl.ts';

/**
 * The server's physical storage (Vault's physical.Backend): flat keys, byte
 * values. `list(prefix)` answers like Vault: keys directly under the prefix,
 * relative to it, sub-folders once each with a trailing `/`, sorted.
 * A write's promise resolves only once it is durable (persistent mode).
 */
export interface PhysicalStorage {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<string[]>;
  /**
   * Applies puts (value) and deletes (null) as one atomic write: after a crash
   * either all of them are there or none. Later ops on the same key win.
   */
  batch(ops: ReadonlyArray<StorageOp>): Promise<void>;
  /** The engine-facing Storage for one area (Vault's barrier view): every key is prefixed. */
  view(prefix: string): Storage;
  /** Flushes pending writes and releases the file. Safe to call twice. */
  close(): Promise<void>;
  readonly persistent: boolean;
}

/** One write of a batch: a put, or a delete when value is null. */
export interface StorageOp {
  key: string;
  value: Uint8Array | null;
  /** The array is the storage's to keep as is: whoever made it holds no other reference (else it is copied). */
  owned?: boolean;
}

/** One lease held by the expiration manager (Vault's leaseEntry). */
export interface LeaseEntry {
  /** `<mount><path>/<random id>`, e.g. `tvm/creds/demo/h3Kq...`. */
  leaseId: string;
  /** The mount the lease belongs to, with trailing slash: `tvm/`. */
  mountPoint: string;
  /** The request path relative to the mount that created it: `creds/demo`. */
  path: string;
  /** The secret as the engine returned it (type, internal data, ttl, max ttl). */
  secret: StoredSecret;
  /** The id of the token that obtained the lease (revoking it revokes the lease). */
  clientTokenId: string;
  issueTimeMs: number;
  expireTimeMs: number;
  lastRenewalMs?: number;
  /** Set once revocation has failed too often; the lease is then kept and listed, never dropped. */
  irrevocable?: boolean;
  /** How many revocation attempts have failed so far. */
  revokeAttempts?: number;
  /** The last revocation error's message (no secrets). */
  revokeError?: string;
}

/**
 * What the expiration manager calls to reach the engine that owns a lease.
 * The engine's writes come back as ops (held, not yet written): the manager
 * makes them durable in one batch with the lease's own change.
 */
export interface LeaseBackendCalls {
  /** Asks the owning engine to revoke; throws if it fails (the manager retries). */
  revoke(lease: LeaseEntry): Promise<StorageOp[]>;
  /** Asks the owning engine to renew; returns the engine's new secret and data. */
  renew(
    lease: LeaseEntry,
    incrementMs: number,
  ): Promise<{ secret: StoredSecret; data?: Record<string, unknown>; warnings?: string[]; writes?: StorageOp[]; mount?: MountLeaseLimits }>;
  /** The batch holding these ops failed: the owning engine drops what it cached of them. */
  discard(lease: LeaseEntry, writes: StorageOp[]): void;
}

/** The part of PhysicalStorage the stores (policies, tokens, identity) need. */
export interface KeyValueStorage {
  get(key: string): Promise<Uint8Array | null>;
  put(key: string, value: Uint8Array): Promise<void>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<string[]>;
}
