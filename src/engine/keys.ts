// The signing key ring: one active key signs; retired keys stay published
// (in the JWKS) until every token they could have signed has expired.

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { ConfigEntry, SigningAlgorithm } from './config.ts';
import { getJson, putJson } from '../sdk/storage.ts';
import type { Storage } from '../sdk/logical.ts';
import { StoredRecordCache } from './cache.ts';
import { newPrivateKeyAsync, type KeyType, type KeyTypeOptions } from './jwk.ts';

export const KEYS_KEY = 'keys';

export interface StoredKey {
  kid: string;
  alg: SigningAlgorithm;
  private_jwk: JWK;
  public_jwk: JWK;
  created_at: number;
  /** When the key stopped signing (ms); absent while active. */
  retired_at?: number;
  /** Published until (ms): retired_at plus the longest ttl a token of it could have. */
  publish_until?: number;
  /** The largest mount max_ttl (ms) in force while the key was active. */
  max_ttl_ms: number;
}

interface KeyRingEntry {
  active: string;
  keys: StoredKey[];
}

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
}

interface Loaded {
  entry: KeyRingEntry;
  privateKeys: Map<string, KeyObject>;
  publicKeys: Map<string, { alg: SigningAlgorithm; key: KeyObject }>;
}

/** What node:crypto generates for each algorithm. */
function keyType(alg: SigningAlgorithm): { type: KeyType; options: KeyTypeOptions } {
  if (alg === 'ES256') return { type: 'ec', options: { namedCurve: 'P-256' } };
  if (alg === 'EdDSA') return { type: 'ed25519', options: {} };
  return { type: 'rsa', options: { modulusLength: 2048 } };
}

async function newKey(alg: SigningAlgorithm, now: number, maxTtlMs: number): Promise<StoredKey> {
  // Off the event loop, and never exported from the generation job's own key (see newPrivateKey).
  const { type, options } = keyType(alg);
  const privateKey = await newPrivateKeyAsync(type, options);
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK;
  const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(publicJwk, 'sha256');
  return {
    kid,
    alg,
    private_jwk: privateJwk,
    public_jwk: { ...publicJwk, kid, alg, use: 'sig' },
    created_at: now,
    max_ttl_ms: maxTtlMs,
  };
}

export class KeyRing extends StoredRecordCache<Loaded> {
  /** The key that signs now; creates the first key, or rotates when the algorithm changed. */
  async signingKey(storage: Storage, config: ConfigEntry): Promise<SigningKey> {
    const loaded = this.loaded ?? (await this.load(storage));
    const active = loaded.entry.keys.find((k) => k.kid === loaded.entry.active);
    if (active && active.alg === config.signing_algorithm) {
      return { kid: active.kid, alg: active.alg, privateKey: loaded.privateKeys.get(active.kid)! };
    }
    await this.rotate(storage, config, (entry) => {
      const current = entry.keys.find((k) => k.kid === entry.active);
      return !current || current.alg !== config.signing_algorithm;
    });
    return this.signingKey(storage, config);
  }

  /** Retires the active key and makes a new one. */
  async rotate(
    storage: Storage,
    config: ConfigEntry,
    onlyIf: (entry: KeyRingEntry) => boolean = () => true,
  ): Promise<StoredKey> {
    return this.exclusive(async () => {
      this.loaded = null;
      const { entry } = await this.load(storage);
      const current = entry.keys.find((k) => k.kid === entry.active);
      if (current && !onlyIf(entry)) return current;
      const now = this.clock();
      const fresh = await newKey(config.signing_algorithm, now, config.max_ttl * 1000);
      const keys = entry.keys.map((k) =>
        k.kid === entry.active && k.retired_at === undefined
          ? { ...k, retired_at: now, publish_until: now + k.max_ttl_ms }
          : k,
      );
      const next: KeyRingEntry = { active: fresh.kid, keys: [...keys, fresh] };
      await putJson(storage, KEYS_KEY, next);
      this.loaded = null;
      return fresh;
    });
  }

  /** Keeps the active key's ttl ceiling at the largest max_ttl it served under. */
  async onConfigChange(storage: Storage, config: ConfigEntry): Promise<void> {
    await this.exclusive(async () => {
      this.loaded = null;
      const { entry } = await this.load(storage);
      const maxTtlMs = config.max_ttl * 1000;
      const active = entry.keys.find((k) => k.kid === entry.active);
      if (!active || active.max_ttl_ms >= maxTtlMs) return;
      const next = { ...entry, keys: entry.keys.map((k) => (k.kid === active.kid ? { ...k, max_ttl_ms: maxTtlMs } : k)) };
      await putJson(storage, KEYS_KEY, next);
      this.loaded = null;
    });
    await this.signingKey(storage, config);
  }

  /** Public JWKs that may still verify a live token. */
  async publishedJwks(storage: Storage): Promise<JWK[]> {
    const loaded = this.loaded ?? (await this.load(storage));
    const now = this.clock();
    return loaded.entry.keys.filter((k) => isPublished(k, now)).map((k) => k.public_jwk);
  }

  /** The public key for a kid, when it is still published. */
  async verificationKey(storage: Storage, kid: string): Promise<{ alg: SigningAlgorithm; key: KeyObject } | null> {
    const loaded = this.loaded ?? (await this.load(storage));
    const stored = loaded.entry.keys.find((k) => k.kid === kid);
    if (!stored || !isPublished(stored, this.clock())) return null;
    return loaded.publicKeys.get(kid) ?? null;
  }

  /** Drops keys whose tokens have all expired. */
  async prune(storage: Storage): Promise<number> {
    return this.exclusive(async () => {
      this.loaded = null;
      const { entry } = await this.load(storage);
      const now = this.clock();
      const keep = entry.keys.filter((k) => isPublished(k, now));
      if (keep.length === entry.keys.length) return 0;
      await putJson(storage, KEYS_KEY, { ...entry, keys: keep });
      this.loaded = null;
      return entry.keys.length - keep.length;
    });
  }

  private async load(storage: Storage): Promise<Loaded> {
    const entry = (await getJson<KeyRingEntry>(storage, KEYS_KEY)) ?? { active: '', keys: [] };
    const privateKeys = new Map<string, KeyObject>();
    const publicKeys = new Map<string, { alg: SigningAlgorithm; key: KeyObject }>();
    for (const k of entry.keys) {
      if (k.kid === entry.active) privateKeys.set(k.kid, createPrivateKey({ key: k.private_jwk as never, format: 'jwk' }));
      publicKeys.set(k.kid, { alg: k.alg, key: createPublicKey({ key: k.public_jwk as never, format: 'jwk' }) });
    }
    const loaded = { entry, privateKeys, publicKeys };
    this.loaded = loaded;
    return loaded;
  }
}

function isPublished(k: StoredKey, now: number): boolean {
  return k.publish_until === undefined || k.publish_until > now;
}
