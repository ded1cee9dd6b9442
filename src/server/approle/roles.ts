// An AppRole role as stored (`role/<name>`), the index from role IDs to role
// names (`role_id/<sha256 of the role ID>`), the role name's rule, and the
// storage helpers every path family reads roles through. The routes are
// path_role.ts.

import { randomBytes } from 'node:crypto';
import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import type { Storage } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { ROLE_NAME, ROLE_PREFIX, type RouteHelp } from '../auth/method.ts';
import { getJson } from '../auth/storage.ts';
import { defaultTokenParams, type TokenParams } from '../auth/token_params.ts';

// ---------------------------------------------------------------------------
// Constants

export const ROLE_ID_PREFIX = 'role_id/';
const MAX_NAME_LENGTH = 4096;

// ---------------------------------------------------------------------------
// Stored type

/** A role as stored (API field names; durations in seconds). */
export interface AppRoleEntry extends TokenParams {
  name: string;
  role_id: string;
  /** The key secret IDs of this role are HMACed with. */
  hmac_key: string;
  bind_secret_id: boolean;
  secret_id_bound_cidrs: string[];
  secret_id_num_uses: number;
  secret_id_ttl: number;
  local_secret_ids: boolean;
}

// ---------------------------------------------------------------------------
// Helpers

/**
 * A route under one role, `role/<role_name>` and `suffix`: the role name is
 * a capture compared without case (resolve-path lower-cases it).
 */
export function roleRoute(suffix: string, fields: Fields, operations: Route['operations'], help: RouteHelp, extra: Pick<Route, 'existenceCheck'> = {}): Route {
  return {
    pattern: `role/(?<role_name>${ROLE_NAME})${suffix}`,
    fields: { role_name: { type: 'string', description: 'Name of the role (compared without case).' }, ...fields },
    operations,
    caseInsensitive: ['role_name'],
    ...help,
    ...extra,
  };
}

/** The role name of a request, in its one (lower-case) form. */
export function roleName(fields: FieldData): string {
  const name = fields.get<string>('role_name').toLowerCase();
  if (name.length > MAX_NAME_LENGTH) throw invalidField('role_name', `longer than ${MAX_NAME_LENGTH} characters`);
  return name;
}

/** A role as first written: Vault's defaults, a fresh HMAC key, no role ID yet. */
export function newRole(name: string): AppRoleEntry {
  return {
    ...defaultTokenParams(),
    name,
    role_id: '',
    hmac_key: randomBytes(32).toString('hex'),
    bind_secret_id: true,
    secret_id_bound_cidrs: [],
    secret_id_num_uses: 0,
    secret_id_ttl: 0,
    local_secret_ids: false,
  };
}

export function readRole(storage: Storage, name: string): Promise<AppRoleEntry | null> {
  return getJson<AppRoleEntry>(storage, ROLE_PREFIX + name);
}

/** The role, or a 400 saying it does not exist. */
export async function mustRole(storage: Storage, name: string): Promise<AppRoleEntry> {
  const role = await readRole(storage, name);
  if (!role) throw new EngineError('ERR_INVALID_REQUEST', `role ${showValue(name)} does not exist`);
  return role;
}
