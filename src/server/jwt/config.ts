// The JWT method's config as stored (`config`): where the keys that verify
// logins come from (PEM public keys, a JWKS URL, or an OIDC discovery URL)
// and the expected issuer; and the key source built from it, checked when the
// config is written and cached while the stored config stays the same. The
// route is path_config.ts.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet } from 'jose';
import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { Storage } from '../../sdk/logical.ts';
import { KeyedMutex } from '../../sdk/storage.ts';
import { getJson } from '../auth/storage.ts';
import type { KeySource } from './verify.ts';

// ---------------------------------------------------------------------------
// Constants

export const CONFIG_KEY = 'config';
const FETCH_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------
// Stored type

export interface JwtConfig {
  oidc_discovery_url: string;
  oidc_discovery_ca_pem: string;
  oidc_client_id: string;
  oidc_response_mode: string;
  oidc_response_types: string[];
  jwks_url: string;
  jwks_ca_pem: string;
  jwks_pairs: unknown[];
  default_role: string;
  jwt_validation_pubkeys: string[];
  jwt_supported_algs: string[];
  bound_issuer: string;
  provider_config: Record<string, unknown>;
  namespace_in_state: boolean;
  unsupported_critical_cert_extensions: string[];
}

/** The key source of a config, with the config it was built from. */
export interface ConfigKeys {
  config: JwtConfig;
  source: KeySource;
  /** The issuer a discovery document declared ('' without discovery). */
  discoveredIssuer: string;
}

// ---------------------------------------------------------------------------
// Storage helpers

export function readConfig(storage: Storage): Promise<JwtConfig | null> {
  return getJson<JwtConfig>(storage, CONFIG_KEY);
}

/** The config, or a 400 saying it must be written first. */
export async function mustConfig(storage: Storage): Promise<JwtConfig> {
  const config = await readConfig(storage);
  if (!config) throw new EngineError('ERR_INVALID_REQUEST', 'could not load configuration: write the config of this JWT auth method first');
  return config;
}

/** The key source of the stored config, built once per config (a remote key set keeps its own cache of keys). */
export class KeyCache {
  private readonly lock = new KeyedMutex();
  private cached: ConfigKeys | undefined;

  async keys(storage: Storage): Promise<ConfigKeys> {
    const config = await mustConfig(storage);
    if (this.fits(config)) return this.cached!;
    return this.lock.run('keys', async () => {
      if (this.fits(config)) return this.cached!;
      this.cached = await buildKeys(config);
      return this.cached;
    });
  }

  /** Keeps the keys a config write has just built and checked. */
  set(keys: ConfigKeys): void {
    this.cached = keys;
  }

  clear(): void {
    this.cached = undefined;
  }

  private fits(config: JwtConfig): boolean {
    return this.cached !== undefined && JSON.stringify(this.cached.config) === JSON.stringify(config);
  }
}

/** Builds (and checks) the key source a config names. Throws a 400 naming the problem. */
export async function buildKeys(config: JwtConfig): Promise<ConfigKeys> {
  if (config.jwt_validation_pubkeys.length > 0) {
    const keys: KeyObject[] = config.jwt_validation_pubkeys.map((pem, i) => {
      try {
        const key = createPublicKey(pem);
        if (key.type !== 'public') throw new Error('not a public key');
        return key;
      } catch (err) {
        throw invalidField(`jwt_validation_pubkeys[${i}]`, `error parsing public key: ${(err as Error).message}`);
      }
    });
    return { config, source: { kind: 'pem', keys }, discoveredIssuer: '' };
  }
  if (config.jwks_url !== '') {
    const url = parseUrl('jwks_url', config.jwks_url);
    const doc = await fetchJson(url, 'jwks_url', `error checking jwks URL ${config.jwks_url}`);
    if (!doc || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
      throw invalidField('jwks_url', `error checking jwks URL ${config.jwks_url}: the document has no "keys" list`);
    }
    return { config, source: remoteKeys(url), discoveredIssuer: '' };
  }
  const base = config.oidc_discovery_url.replace(/\/+$/, '');
  const wellKnown = parseUrl('oidc_discovery_url', `${base}/.well-known/openid-configuration`);
  const doc = (await fetchJson(wellKnown, 'oidc_discovery_url', 'error checking oidc discovery URL')) as {
    issuer?: unknown;
    jwks_uri?: unknown;
  } | null;
  if (!doc || typeof doc.jwks_uri !== 'string') {
    throw invalidField('oidc_discovery_url', 'error checking oidc discovery URL: the discovery document has no "jwks_uri"');
  }
  if (typeof doc.issuer !== 'string' || doc.issuer.replace(/\/+$/, '') !== base) {
    throw invalidField(
      'oidc_discovery_url',
      `error checking oidc discovery URL: the document's issuer ${showValue(doc.issuer ?? null)} is not ${showValue(config.oidc_discovery_url)}`,
    );
  }
  const jwks = parseUrl('oidc_discovery_url', doc.jwks_uri);
  return { config, source: remoteKeys(jwks), discoveredIssuer: doc.issuer };
}

function remoteKeys(url: URL): KeySource {
  return {
    kind: 'jwks',
    url: url.href,
    getKey: createRemoteJWKSet(url, { timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 }),
  };
}

function parseUrl(field: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidField(field, `${showValue(value)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidField(field, `${showValue(value)} is not an http(s) URL`);
  return url;
}

async function fetchJson(url: URL, field: string, context: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw invalidField(field, `${context}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (!res.ok) throw invalidField(field, `${context}: ${url.href} answered HTTP ${res.status}`);
  try {
    return await res.json();
  } catch {
    throw invalidField(field, `${context}: ${url.href} did not answer JSON`);
  }
}
