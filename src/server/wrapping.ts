// Response wrapping (Vault's cubbyhole response wrapping): a response is
// stored under a single-use, short-lived wrapping token and the caller gets
// `wrap_info` instead; `sys/wrapping/unwrap` hands the original back once.

import type { Clock } from '../sdk/logical.ts';
import type { KeyValueStorage } from './types.ts';
import { RESPONSE_WRAPPING_POLICY } from './policy.ts';
import { TokenError, type TokenEntry, type TokenStore } from './token/store.ts';

const RESPONSE_PREFIX = 'sys/wrapping/response/';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The parts of a response envelope that wrapping keeps. */
export interface WrappedResponse {
  data: Record<string, unknown> | null;
  auth: Record<string, unknown> | null;
  lease_id: string;
  lease_duration: number;
  renewable: boolean;
  warnings: string[] | null;
  mount_type: string;
}

export interface WrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

const INVALID = 'wrapping token is not valid or does not exist';

export class WrappingStore {
  private readonly storage: KeyValueStorage;
  private readonly tokens: TokenStore;
  private readonly clock: Clock;
  /** Wrapping tokens being unwrapped: a second concurrent unwrap must fail. */
  private readonly claimed = new Set<string>();

  constructor(options: { storage: KeyValueStorage; tokens: TokenStore; clock: Clock }) {
    this.storage = options.storage;
    this.tokens = options.tokens;
    this.clock = options.clock;
  }

  /** Stores a response under a new wrapping token; resolves once both are durable. */
  async wrap(
    response: WrappedResponse,
    ttlMs: number,
    creationPath: string,
    wrappedAccessor?: string,
  ): Promise<WrapInfo> {
    const { id, entry } = await this.tokens.create({
      policies: [RESPONSE_WRAPPING_POLICY],
      parent: '',
      ttlMs,
      explicitMaxTtlMs: ttlMs,
      displayName: 'response-wrapping',
      meta: null,
      renewable: false,
      numUses: 1,
      path: creationPath,
      wrapping: wrappedAccessor === undefined ? { creationPath } : { creationPath, wrappedAccessor },
    });
    try {
      await this.storage.put(RESPONSE_PREFIX + entry.hash, encoder.encode(JSON.stringify(response)));
    } catch (err) {
      await this.tokens.revoke(entry.hash).catch(() => undefined);
      throw err;
    }
    const info: WrapInfo = {
      token: id,
      accessor: entry.accessor,
      ttl: Math.round(ttlMs / 1000),
      creation_time: new Date(entry.creationTimeMs).toISOString(),
      creation_path: creationPath,
    };
    if (wrappedAccessor !== undefined) info.wrapped_accessor = wrappedAccessor;
    return info;
  }

  /** Returns the wrapped response and destroys the wrapping token: works once. */
  async unwrap(id: string): Promise<WrappedResponse> {
    const entry = this.wrappingEntry(id);
    if (this.claimed.has(entry.hash)) throw new TokenError(INVALID);
    this.claimed.add(entry.hash);
    try {
      const raw = await this.storage.get(RESPONSE_PREFIX + entry.hash);
      if (!raw) throw new TokenError(INVALID);
      await this.tokens.revoke(entry.hash);
      return JSON.parse(decoder.decode(raw)) as WrappedResponse;
    } finally {
      this.claimed.delete(entry.hash);
    }
  }

  /** What `sys/wrapping/lookup` tells about a wrapping token (without using it). */
  lookup(id: string): Record<string, unknown> {
    const entry = this.wrappingEntry(id);
    return {
      creation_path: entry.wrapping!.creationPath,
      creation_time: new Date(entry.creationTimeMs).toISOString(),
      creation_ttl: Math.round(entry.creationTtlMs / 1000),
    };
  }

  /** Token-store hook: drops the stored response of a revoked or expired wrapping token. */
  async dropResponse(entry: TokenEntry): Promise<void> {
    if (entry.wrapping) await this.storage.delete(RESPONSE_PREFIX + entry.hash);
  }

  private wrappingEntry(id: string): TokenEntry {
    const entry = this.tokens.lookup(id);
    if (!entry || !entry.wrapping || entry.expireTimeMs <= this.clock()) throw new TokenError(INVALID);
    return entry;
  }
}
