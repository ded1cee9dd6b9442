// role/<role_name>: an AppRole role (its token settings and what a login
// with it needs: a secret ID, source CIDRs), the list of roles, and
// role/<role_name>/role-id, the role's public identifier.

import { randomUUID } from 'node:crypto';
import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import type { LogicalRequest, LogicalResponse, Storage } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { checkCidrList } from '../auth/cidr.ts';
import { ROLE_PREFIX, roleListRoute } from '../auth/method.ts';
import { getJson, putJson, sha256Hex } from '../auth/storage.ts';
import { maxTtlWarnings, parseTokenFields, TOKEN_FIELDS, tokenFieldsData } from '../auth/token_params.ts';
import type { AppRoleContext } from './context.ts';
import { mustRole, newRole, readRole, ROLE_ID_PREFIX, roleName, roleRoute, type AppRoleEntry } from './roles.ts';
import { deleteRoleSecretIds } from './secret_ids.ts';

// ---------------------------------------------------------------------------
// Constants

/** Vault's AppRole words for a role whose token_max_ttl the mount will cap. */
const MAX_TTL_WARNING = "token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated";
/** AppRole keeps these legacy token field names for other things (or never had them). */
const SKIP_LEGACY = ['ttl', 'max_ttl', 'num_uses', 'bound_cidrs'];

const ROLE_FIELDS: Fields = {
  bind_secret_id: { type: 'bool', default: true, description: 'Require a secret_id at login.' },
  secret_id_bound_cidrs: { type: 'string_list', description: 'CIDR blocks logins with this role may come from.' },
  bound_cidr_list: { type: 'string_list', description: 'Deprecated: use secret_id_bound_cidrs.' },
  secret_id_num_uses: { type: 'int', description: 'Logins a secret ID allows (0: unlimited).' },
  secret_id_ttl: { type: 'duration', description: 'Lifetime of secret IDs (0: no expiry).' },
  local_secret_ids: { type: 'bool', description: 'Accepted for compatibility; a single server has only local secret IDs.' },
  role_id: { type: 'string', description: 'A custom role ID (default: a random UUID).' },
  ...Object.fromEntries(Object.entries(TOKEN_FIELDS).filter(([k]) => !SKIP_LEGACY.includes(k))),
};

// ---------------------------------------------------------------------------
// Routes

export function roleRoutes(ctx: AppRoleContext): Route[] {
  return [
    roleListRoute('AppRole'),
    roleRoute(
      '',
      ROLE_FIELDS,
      {
        read: (req, f) => readRoleEntry(req, f),
        create: (req, f) => writeRole(ctx, req, f, true),
        update: (req, f) => writeRole(ctx, req, f, false),
        delete: (req, f) => deleteRole(ctx, req, f),
      },
      ROLE_HELP,
      { existenceCheck: async (req, f) => (await readRole(req.storage, roleName(f))) !== null },
    ),
    roleRoute(
      '/role-id',
      { role_id: { type: 'string', required: true, description: 'The new role ID.' } },
      { read: (req, f) => readRoleId(req, f), update: (req, f) => writeRoleId(ctx, req, f) },
      ROLE_ID_HELP,
    ),
  ];
}

// ---------------------------------------------------------------------------
// Handlers

async function readRoleEntry(req: LogicalRequest, f: FieldData): Promise<LogicalResponse | null> {
  const role = await readRole(req.storage, roleName(f));
  return role ? { data: roleData(role) } : null;
}

/** Creates a role, or changes the fields a write gives (an update of a role that is gone is refused). */
function writeRole(ctx: AppRoleContext, req: LogicalRequest, f: FieldData, create: boolean): Promise<LogicalResponse | null> {
  const name = roleName(f);
  return ctx.locks.run(`role:${name}`, async () => {
    const existing = await readRole(req.storage, name);
    if (!existing && !create) throw new EngineError('ERR_INVALID_REQUEST', `role ${showValue(name)} does not exist`);
    const role: AppRoleEntry = existing ? { ...existing } : newRole(name);
    Object.assign(role, parseTokenFields(role, f, SKIP_LEGACY));

    if (f.has('bind_secret_id')) role.bind_secret_id = f.get<boolean>('bind_secret_id');
    if (f.has('secret_id_bound_cidrs') && f.has('bound_cidr_list')) {
      throw new EngineError('ERR_INVALID_REQUEST', 'cannot specify both "secret_id_bound_cidrs" and "bound_cidr_list"');
    }
    if (f.has('secret_id_bound_cidrs')) role.secret_id_bound_cidrs = checkCidrList('secret_id_bound_cidrs', f.get('secret_id_bound_cidrs'));
    if (f.has('bound_cidr_list')) role.secret_id_bound_cidrs = checkCidrList('bound_cidr_list', f.get('bound_cidr_list'));
    if (f.has('secret_id_num_uses')) {
      const n = f.get<number>('secret_id_num_uses');
      if (n < 0) throw invalidField('secret_id_num_uses', `${n} is negative; use 0 for unlimited`);
      role.secret_id_num_uses = n;
    }
    if (f.has('secret_id_ttl')) role.secret_id_ttl = Math.round(f.get<number>('secret_id_ttl') / 1000);
    if (f.has('local_secret_ids')) {
      const local = f.get<boolean>('local_secret_ids');
      if (existing && local !== existing.local_secret_ids) {
        throw invalidField('local_secret_ids', 'can only be set when the role is created');
      }
      role.local_secret_ids = local;
    }
    if (!role.bind_secret_id && role.secret_id_bound_cidrs.length === 0 && role.token_bound_cidrs.length === 0) {
      throw new EngineError(
        'ERR_INVALID_REQUEST',
        'at least one constraint should be enabled on the role: bind_secret_id, secret_id_bound_cidrs or token_bound_cidrs',
      );
    }

    const previousRoleId = existing?.role_id;
    if (f.has('role_id')) role.role_id = f.get<string>('role_id').trim();
    if (role.role_id === '') role.role_id = randomUUID();
    if (role.role_id !== previousRoleId) await claimRoleId(req.storage, role.role_id, name);
    await putJson(req.storage, ROLE_PREFIX + name, role);
    if (previousRoleId && previousRoleId !== role.role_id) await req.storage.delete(ROLE_ID_PREFIX + sha256Hex(previousRoleId));
    const warnings = await maxTtlWarnings(role, req, MAX_TTL_WARNING);
    return warnings ? { warnings } : null;
  });
}

/** Deletes a role with its secret IDs, their accessors and its role ID. */
function deleteRole(ctx: AppRoleContext, req: LogicalRequest, f: FieldData): Promise<LogicalResponse | null> {
  const name = roleName(f);
  return ctx.locks.run(`role:${name}`, async () => {
    const role = await readRole(req.storage, name);
    if (!role) return null;
    await deleteRoleSecretIds(req.storage, name);
    await req.storage.delete(ROLE_ID_PREFIX + sha256Hex(role.role_id));
    await req.storage.delete(ROLE_PREFIX + name);
    return null;
  });
}

async function readRoleId(req: LogicalRequest, f: FieldData): Promise<LogicalResponse | null> {
  const role = await readRole(req.storage, roleName(f));
  return role ? { data: { role_id: role.role_id } } : null;
}

/** Sets the role's role ID (the old one no longer logs in). */
function writeRoleId(ctx: AppRoleContext, req: LogicalRequest, f: FieldData): Promise<LogicalResponse | null> {
  const name = roleName(f);
  return ctx.locks.run(`role:${name}`, async () => {
    const role = await mustRole(req.storage, name);
    const roleId = f.get<string>('role_id').trim();
    if (roleId === '') throw new EngineError('ERR_MISSING_FIELD', 'missing required field role_id', { field: 'role_id' });
    if (roleId === role.role_id) return null;
    await claimRoleId(req.storage, roleId, name);
    const previous = role.role_id;
    role.role_id = roleId;
    await putJson(req.storage, ROLE_PREFIX + name, role);
    await req.storage.delete(ROLE_ID_PREFIX + sha256Hex(previous));
    return null;
  });
}

// ---------------------------------------------------------------------------
// Storage helpers

/** Points a role ID at a role; refuses one another role holds. */
async function claimRoleId(storage: Storage, roleId: string, name: string): Promise<void> {
  const key = ROLE_ID_PREFIX + sha256Hex(roleId);
  const holder = await getJson<{ name: string }>(storage, key);
  if (holder && holder.name !== name && (await readRole(storage, holder.name))) {
    throw invalidField('role_id', 'this role ID is already in use by another role');
  }
  await putJson(storage, key, { name });
}

/** A role as `GET role/<name>` shows it. */
function roleData(role: AppRoleEntry): Record<string, unknown> {
  return {
    bind_secret_id: role.bind_secret_id,
    local_secret_ids: role.local_secret_ids,
    // null when none are set, as Vault answers an unset list.
    secret_id_bound_cidrs: role.secret_id_bound_cidrs.length > 0 ? [...role.secret_id_bound_cidrs] : null,
    secret_id_num_uses: role.secret_id_num_uses,
    secret_id_ttl: role.secret_id_ttl,
    ...tokenFieldsData(role),
  };
}

// ---------------------------------------------------------------------------
// Help

const ROLE_HELP = {
  synopsis: 'Registers a role: the token a login with it gets, and what the login needs.',
  description: `
A role names the token settings of its logins (token_policies, token_ttl,
token_max_ttl, token_bound_cidrs, ...) and their constraints: bind_secret_id
(a secret ID of the role must be presented), secret_id_bound_cidrs (where
logins may come from), and the use count and lifetime of its secret IDs.
Role names are compared without case. A write changes only the fields it
gives; deleting a role deletes its secret IDs too.`,
};

const ROLE_ID_HELP = {
  synopsis: "Reads or sets the role's role ID.",
  description: `
The role ID identifies the role at login (with a secret ID when bind_secret_id
is set). It is random unless set; setting one another role holds is refused.`,
};
