// A JWT role as stored (`role/<name>`): what a token must show (audiences,
// subject, claims) and the token settings of its logins; the role name's
// rule, and the storage helpers the role routes and login read roles
// through. The routes are path_role.ts.

import type { FieldData } from '../../sdk/fields.ts';
import type { Storage } from '../../sdk/logical.ts';
import { ROLE_PREFIX } from '../auth/method.ts';
import { getJson } from '../auth/storage.ts';
import { defaultTokenParams, type TokenParams } from '../auth/token_params.ts';

// ---------------------------------------------------------------------------
// Stored type

export interface JwtRoleEntry extends TokenParams {
  name: string;
  role_type: 'jwt';
  /** Seconds; 0: Vault's default; -1: none. */
  expiration_leeway: number;
  not_before_leeway: number;
  clock_skew_leeway: number;
  bound_audiences: string[];
  bound_subject: string;
  bound_claims_type: 'string' | 'glob';
  bound_claims: Record<string, unknown> | null;
  claim_mappings: Record<string, string> | null;
  user_claim: string;
  user_claim_json_pointer: boolean;
  groups_claim: string;
  oidc_scopes: string[];
  allowed_redirect_uris: string[];
  verbose_oidc_logging: boolean;
  max_age: number;
}

// ---------------------------------------------------------------------------
// Helpers

/** The role name of a request, in its one (lower-case) form. */
export function roleName(fields: FieldData): string {
  return fields.get<string>('name').toLowerCase();
}

/** A role as first written: Vault's defaults. */
export function newRole(name: string): JwtRoleEntry {
  return {
    ...defaultTokenParams(),
    name,
    role_type: 'jwt',
    expiration_leeway: 0,
    not_before_leeway: 0,
    clock_skew_leeway: 0,
    bound_audiences: [],
    bound_subject: '',
    bound_claims_type: 'string',
    bound_claims: null,
    claim_mappings: null,
    user_claim: '',
    user_claim_json_pointer: false,
    groups_claim: '',
    oidc_scopes: [],
    allowed_redirect_uris: [],
    verbose_oidc_logging: false,
    max_age: 0,
  };
}

export function readRole(storage: Storage, name: string): Promise<JwtRoleEntry | null> {
  return getJson<JwtRoleEntry>(storage, ROLE_PREFIX + name);
}
