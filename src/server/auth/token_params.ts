// The token settings every auth role carries (Vault's sdk/helper/tokenutil):
// the `token_*` fields, their legacy names (`policies`, `ttl`, `max_ttl`,
// `num_uses`, `period`, `bound_cidrs`), how a write updates them, how a read
// shows them (durations as integer seconds, lists as lists), and what a login
// made with them asks of the token store.

import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import { checkCidrList } from './cidr.ts';
import { SYSTEM_MAX_TTL_MS } from '../lease_ttl.ts';
import type { LoginAuth, LogicalRequest } from '../../sdk/logical.ts';

/** The stored token settings (snake_case as in the API; durations in seconds). */
export interface TokenParams {
  token_bound_cidrs: string[];
  token_explicit_max_ttl: number;
  token_max_ttl: number;
  token_no_default_policy: boolean;
  token_num_uses: number;
  token_period: number;
  token_policies: string[];
  token_ttl: number;
  token_type: string;
  alias_metadata: Record<string, string>;
  /** Legacy names the role was last written with; reads show them too, as Vault does. */
  legacy?: string[];
}

/**
 * The warning Vault's methods give when a role's token_max_ttl is above the
 * mount's max lease ttl (its tokens will be capped there, silently, at login).
 */
export async function maxTtlWarnings(params: TokenParams, req: LogicalRequest, warning: string): Promise<string[] | undefined> {
  const mountMaxMs = (await req.mountLimits?.())?.maxTtlMs || SYSTEM_MAX_TTL_MS;
  return params.token_max_ttl * 1000 > mountMaxMs ? [warning] : undefined;
}

export const TOKEN_FIELDS: Fields = {
  token_bound_cidrs: { type: 'string_list', description: 'CIDR blocks the issued tokens may be used from.' },
  token_explicit_max_ttl: { type: 'duration', description: 'A hard cap on the issued tokens\' lifetime.' },
  token_max_ttl: { type: 'duration', description: 'The maximum lifetime of issued tokens, renewals included.' },
  token_no_default_policy: { type: 'bool', description: 'Do not add the default policy to issued tokens.' },
  token_num_uses: { type: 'int', description: 'How many requests an issued token may make (0: unlimited).' },
  token_period: { type: 'duration', description: 'Periodic tokens; not supported by this server (0 only).' },
  token_policies: { type: 'string_list', description: 'Policies of the issued tokens.' },
  token_ttl: { type: 'duration', description: 'The initial lifetime of issued tokens.' },
  token_type: { type: 'string', description: 'The type of issued tokens: "default" or "service" (batch tokens are not supported).' },
  alias_metadata: { type: 'string_map', description: 'Metadata set on the entity alias at login.' },
  // Legacy names (Vault keeps accepting them).
  policies: { type: 'string_list', description: 'Deprecated: use token_policies.' },
  ttl: { type: 'duration', description: 'Deprecated: use token_ttl.' },
  max_ttl: { type: 'duration', description: 'Deprecated: use token_max_ttl.' },
  num_uses: { type: 'int', description: 'Deprecated: use token_num_uses.' },
  period: { type: 'duration', description: 'Deprecated: use token_period.' },
  bound_cidrs: { type: 'string_list', description: 'Deprecated: use token_bound_cidrs.' },
};

const LEGACY: Array<[legacy: string, current: keyof TokenParams]> = [
  ['policies', 'token_policies'],
  ['ttl', 'token_ttl'],
  ['max_ttl', 'token_max_ttl'],
  ['num_uses', 'token_num_uses'],
  ['period', 'token_period'],
  ['bound_cidrs', 'token_bound_cidrs'],
];

const TOKEN_TYPES = new Set(['default', 'service', 'default-service']);

export function defaultTokenParams(): TokenParams {
  return {
    token_bound_cidrs: [],
    token_explicit_max_ttl: 0,
    token_max_ttl: 0,
    token_no_default_policy: false,
    token_num_uses: 0,
    token_period: 0,
    token_policies: [],
    token_ttl: 0,
    token_type: 'default',
    alias_metadata: {},
  };
}

const seconds = (ms: number): number => Math.round(ms / 1000);

/**
 * Applies the token fields of a write to `params` (fields not given keep their
 * value). `skipLegacy` names legacy fields the method uses for something else
 * (AppRole has no `bound_cidrs`; its `ttl` is unused too).
 */
export function parseTokenFields(params: TokenParams, fields: FieldData, skipLegacy: readonly string[] = []): TokenParams {
  const next: TokenParams = { ...params, legacy: [...(params.legacy ?? [])] };
  for (const [legacy, current] of LEGACY) {
    if (skipLegacy.includes(legacy)) continue;
    if (fields.has(legacy) && fields.has(current)) {
      throw new EngineError('ERR_INVALID_REQUEST', `cannot specify both "${current}" and "${legacy}"`, { field: legacy });
    }
  }
  // The value of a current field, else of its legacy name (remembered so reads show it).
  const take = (current: keyof TokenParams): unknown => {
    const legacyName = LEGACY.find(([, c]) => c === current)?.[0];
    if (fields.has(current)) {
      if (legacyName) next.legacy = next.legacy!.filter((l) => l !== legacyName);
      return fields.get(current);
    }
    if (legacyName && !skipLegacy.includes(legacyName) && fields.has(legacyName)) {
      if (!next.legacy!.includes(legacyName)) next.legacy!.push(legacyName);
      return fields.get(legacyName);
    }
    return undefined;
  };

  const policies = take('token_policies') as string[] | undefined;
  if (policies !== undefined) next.token_policies = policies.map((p) => p.trim()).filter((p) => p !== '');
  const cidrs = take('token_bound_cidrs') as string[] | undefined;
  if (cidrs !== undefined) next.token_bound_cidrs = checkCidrList('token_bound_cidrs', cidrs);
  const ttl = take('token_ttl') as number | undefined;
  if (ttl !== undefined) next.token_ttl = seconds(ttl);
  const maxTtl = take('token_max_ttl') as number | undefined;
  if (maxTtl !== undefined) next.token_max_ttl = seconds(maxTtl);
  const numUses = take('token_num_uses') as number | undefined;
  if (numUses !== undefined) {
    if (numUses < 0) throw invalidField('token_num_uses', `${numUses} is negative; use 0 for unlimited`);
    next.token_num_uses = numUses;
  }
  const period = take('token_period') as number | undefined;
  if (period !== undefined) next.token_period = seconds(period);
  if (fields.has('token_explicit_max_ttl')) next.token_explicit_max_ttl = seconds(fields.get<number>('token_explicit_max_ttl'));
  if (fields.has('token_no_default_policy')) next.token_no_default_policy = fields.get<boolean>('token_no_default_policy');
  if (fields.has('alias_metadata')) next.alias_metadata = fields.get<Record<string, string>>('alias_metadata');
  if (fields.has('token_type')) {
    const type = fields.get<string>('token_type').trim().toLowerCase() || 'default';
    if (!TOKEN_TYPES.has(type)) {
      throw invalidField(
        'token_type',
        `${showValue(type)} is not supported: this server issues service tokens only (use "default" or "service")`,
      );
    }
    next.token_type = type;
  }

  if (next.token_period !== 0) {
    throw invalidField('token_period', 'periodic tokens are not supported by this server; use token_ttl and token_max_ttl');
  }
  if (next.token_max_ttl > 0 && next.token_ttl > next.token_max_ttl) {
    throw new EngineError('ERR_INVALID_REQUEST', '"token_ttl" cannot be greater than "token_max_ttl"', { field: 'token_ttl' });
  }
  if (next.legacy!.length === 0) delete next.legacy;
  return next;
}

/** The token fields of a role read (Vault's PopulateTokenData), plus the legacy names the role was written with. */
export function tokenFieldsData(p: TokenParams): Record<string, unknown> {
  const data: Record<string, unknown> = {
    token_bound_cidrs: [...p.token_bound_cidrs],
    token_explicit_max_ttl: p.token_explicit_max_ttl,
    token_max_ttl: p.token_max_ttl,
    token_no_default_policy: p.token_no_default_policy,
    token_num_uses: p.token_num_uses,
    token_period: p.token_period,
    token_policies: [...p.token_policies],
    token_ttl: p.token_ttl,
    token_type: p.token_type,
    alias_metadata: { ...p.alias_metadata },
  };
  for (const legacy of p.legacy ?? []) {
    const current = LEGACY.find(([l]) => l === legacy)?.[1];
    if (current) data[legacy] = data[current];
  }
  return data;
}

/** The token part of a login's auth (Vault's PopulateTokenAuth). */
export function tokenAuth(p: TokenParams): Pick<
  LoginAuth,
  'policies' | 'noDefaultPolicy' | 'ttlMs' | 'maxTtlMs' | 'explicitMaxTtlMs' | 'numUses' | 'boundCidrs'
> {
  return {
    policies: [...p.token_policies],
    noDefaultPolicy: p.token_no_default_policy,
    ttlMs: p.token_ttl * 1000,
    maxTtlMs: p.token_max_ttl * 1000,
    explicitMaxTtlMs: p.token_explicit_max_ttl * 1000,
    numUses: p.token_num_uses,
    boundCidrs: [...p.token_bound_cidrs],
  };
}
