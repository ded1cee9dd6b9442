// The engine's config as stored (`config`), its defaults, and its cache: what
// the signing keys and every path family read. The routes are path_config.ts.

import { getJson, putJson } from '../sdk/storage.ts';
import type { Storage } from '../sdk/logical.ts';

export const CONFIG_KEY = 'config';
export const SIGNING_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export const DEFAULT_TTL_S = 15 * 60;
export const DEFAULT_MAX_TTL_S = 60 * 60;
export const DEFAULT_STATUS_LIST_TTL_S = 60;
export const MAX_STATUS_LIST_TTL_S = 24 * 60 * 60;

/** The stored config; an empty issuer means "derive it from the API address and mount". */
export interface ConfigEntry {
  issuer: string;
  signing_algorithm: SigningAlgorithm;
  default_ttl: number;
  max_ttl: number;
  /** Seconds a status list token may be cached (its `ttl`; its `exp` is iat plus this). */
  status_list_ttl: number;
}

/** The config with the issuer resolved for the request's mount. */
export interface EffectiveConfig extends ConfigEntry {
  issuer_is_default: boolean;
}

export const DEFAULT_CONFIG: ConfigEntry = {
  issuer: '',
  signing_algorithm: 'ES256',
  default_ttl: DEFAULT_TTL_S,
  max_ttl: DEFAULT_MAX_TTL_S,
  status_list_ttl: DEFAULT_STATUS_LIST_TTL_S,
};

export class ConfigStore {
  private cached: ConfigEntry | null = null;

  async load(storage: Storage): Promise<ConfigEntry> {
    if (this.cached) return this.cached;
    const stored = await getJson<ConfigEntry>(storage, CONFIG_KEY);
    this.cached = { ...DEFAULT_CONFIG, ...(stored ?? {}) };
    return this.cached;
  }

  async save(storage: Storage, entry: ConfigEntry): Promise<void> {
    await putJson(storage, CONFIG_KEY, entry);
    this.cached = entry;
  }

  invalidate(): void {
    this.cached = null;
  }
}

export function defaultIssuer(apiAddr: string, mountPoint: string): string {
  return `${apiAddr.replace(/\/+$/, '')}/v1/${mountPoint.replace(/\/+$/, '')}`;
}

