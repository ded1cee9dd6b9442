// role/<role_name>/secret-id and custom-secret-id: secret IDs issued against
// a role (random, or given by a trusted orchestrator), with their own use
// count, lifetime, metadata and CIDR bindings within the role's; the list of
// their accessors; and their lookup and destruction by value or by accessor.

import { randomUUID } from 'node:crypto';
import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields, FieldSchema } from '../../sdk/fields.ts';
import type { LogicalRequest, LogicalResponse, Storage } from '../../sdk/logical.ts';
import type { Handler, Route } from '../../sdk/route.ts';
import { checkCidrList, cidrSubset } from '../auth/cidr.ts';
import { getJson, hmacHex, putJson, sha256Hex } from '../auth/storage.ts';
import type { AppRoleContext } from './context.ts';
import { mustRole, roleName, roleRoute, type AppRoleEntry } from './roles.ts';
import {
  ACCESSOR_PREFIX,
  deleteSecretId,
  expired,
  secretIdData,
  secretIdsPrefix,
  secretKey,
  type AccessorEntry,
  type SecretIdEntry,
} from './secret_ids.ts';

// ---------------------------------------------------------------------------
// Constants

const SECRET_ID_FIELDS: Fields = {
  metadata: { type: 'string_map', description: 'Metadata (a JSON object, or its JSON text) set on tokens issued with this secret ID.' },
  cidr_list: { type: 'string_list', description: "CIDR blocks this secret ID may be used from (within the role's)." },
  token_bound_cidrs: { type: 'string_list', description: 'CIDR blocks the tokens issued with this secret ID may be used from.' },
  num_uses: { type: 'int', description: "Logins this secret ID allows (at most the role's secret_id_num_uses)." },
  ttl: { type: 'duration', description: "Lifetime of this secret ID (at most the role's secret_id_ttl)." },
  secret_id: { type: 'string', secret: true, description: 'The secret ID (custom-secret-id only).' },
};

/** The secret ID a lookup or a destroy names. */
const SECRET_ID_FIELD: FieldSchema = { type: 'string', required: true, secret: true, description: 'The secret ID.' };
const ACCESSOR_FIELD: FieldSchema = { type: 'string', required: true, description: 'The accessor of the secret ID.' };

// ---------------------------------------------------------------------------
// Routes

export function secretIdRoutes(ctx: AppRoleContext): Route[] {
  const byValue = { secret_id: SECRET_ID_FIELD };
  const byAccessor = { secret_id_accessor: ACCESSOR_FIELD };
  const custom = { ...SECRET_ID_FIELDS, secret_id: { ...SECRET_ID_FIELD, description: 'The secret ID to register.' } };
  return [
    roleRoute(
      '/secret-id/?',
      SECRET_ID_FIELDS,
      { update: (req, f) => issueSecretId(ctx, req, f, false), list: (req, f) => listSecretIds(ctx, req, f) },
      SECRET_ID_HELP,
    ),
    roleRoute('/custom-secret-id', custom, { update: (req, f) => issueSecretId(ctx, req, f, true) }, CUSTOM_HELP),
    roleRoute('/secret-id/lookup/?', byValue, { update: (req, f) => lookupSecretId(ctx, req, f, BY_VALUE) }, LOOKUP_HELP),
    roleRoute('/secret-id/destroy/?', byValue, destroying((req, f) => destroySecretId(ctx, req, f, BY_VALUE)), DESTROY_HELP),
    roleRoute('/secret-id-accessor/lookup/?', byAccessor, { update: (req, f) => lookupSecretId(ctx, req, f, BY_ACCESSOR) }, ACCESSOR_LOOKUP_HELP),
    roleRoute('/secret-id-accessor/destroy/?', byAccessor, destroying((req, f) => destroySecretId(ctx, req, f, BY_ACCESSOR)), ACCESSOR_DESTROY_HELP),
  ];
}

/** A destroy answers a write and a delete alike, as in Vault. */
function destroying(handler: Handler): Route['operations'] {
  return { update: handler, delete: handler };
}

// ---------------------------------------------------------------------------
// Handlers

/** Issues a secret ID (random, or the custom one given) within the role's constraints. */
function issueSecretId(ctx: AppRoleContext, req: LogicalRequest, f: FieldData, custom: boolean): Promise<LogicalResponse> {
  const name = roleName(f);
  return ctx.locks.run(`role:${name}`, async () => {
    const role = await mustRole(req.storage, name);
    if (!role.bind_secret_id) throw new EngineError('ERR_INVALID_REQUEST', 'bind_secret_id is not set on the role');
    const secretId = custom ? f.get<string>('secret_id') : randomUUID();
    if (custom && secretId.trim() === '') throw new EngineError('ERR_MISSING_FIELD', 'missing required field secret_id', { field: 'secret_id' });

    const cidrList = checkCidrList('cidr_list', f.get<string[]>('cidr_list'));
    if (role.secret_id_bound_cidrs.length > 0 && !cidrSubset(cidrList, role.secret_id_bound_cidrs)) {
      throw invalidField('cidr_list', `must be a subset of the role's secret_id_bound_cidrs (${role.secret_id_bound_cidrs.join(', ')})`);
    }
    const tokenCidrs = checkCidrList('token_bound_cidrs', f.get<string[]>('token_bound_cidrs'));
    if (role.token_bound_cidrs.length > 0 && !cidrSubset(tokenCidrs, role.token_bound_cidrs)) {
      throw invalidField('token_bound_cidrs', `must be a subset of the role's token_bound_cidrs (${role.token_bound_cidrs.join(', ')})`);
    }
    let numUses = role.secret_id_num_uses;
    if (f.has('num_uses')) {
      const n = f.get<number>('num_uses');
      if (n < 0) throw invalidField('num_uses', `${n} is negative; use 0 for unlimited`);
      if (role.secret_id_num_uses > 0 && (n === 0 || n > role.secret_id_num_uses)) {
        throw invalidField('num_uses', `cannot be higher than the role's secret_id_num_uses (${role.secret_id_num_uses})`);
      }
      numUses = n;
    }
    let ttlS = role.secret_id_ttl;
    if (f.has('ttl')) {
      const t = Math.round(f.get<number>('ttl') / 1000);
      if (role.secret_id_ttl > 0 && (t === 0 || t > role.secret_id_ttl)) {
        throw invalidField('ttl', `cannot be longer than the role's secret_id_ttl (${role.secret_id_ttl}s)`);
      }
      ttlS = t;
    }
    const metadata = f.get<Record<string, string>>('metadata');

    const hmac = hmacHex(role.hmac_key, secretId);
    const key = secretIdsPrefix(name) + hmac;
    if (await getJson<SecretIdEntry>(req.storage, key)) {
      throw new EngineError('ERR_INVALID_REQUEST', 'this secret ID is already registered on the role');
    }
    const now = ctx.clock();
    const entry: SecretIdEntry = {
      secret_id_accessor: randomUUID(),
      secret_id_num_uses: numUses,
      secret_id_ttl: ttlS,
      creation_ms: now,
      expiration_ms: ttlS > 0 ? now + ttlS * 1000 : 0,
      last_updated_ms: now,
      metadata,
      cidr_list: cidrList,
      token_bound_cidrs: tokenCidrs,
    };
    await putJson(req.storage, ACCESSOR_PREFIX + sha256Hex(entry.secret_id_accessor), { secret_id_hmac: hmac } satisfies AccessorEntry);
    await putJson(req.storage, key, entry);
    return {
      data: {
        secret_id: secretId,
        secret_id_accessor: entry.secret_id_accessor,
        secret_id_ttl: ttlS,
        secret_id_num_uses: numUses,
      },
    };
  });
}

/** The accessors of the role's live secret IDs. */
async function listSecretIds(ctx: AppRoleContext, req: LogicalRequest, f: FieldData): Promise<LogicalResponse> {
  const name = roleName(f);
  await mustRole(req.storage, name);
  const prefix = secretIdsPrefix(name);
  const keys: string[] = [];
  for (const k of await req.storage.list(prefix)) {
    const entry = await getJson<SecretIdEntry>(req.storage, prefix + k);
    if (entry && !expired(entry, ctx.clock())) keys.push(entry.secret_id_accessor);
  }
  return { data: { keys: keys.sort() } };
}

/** A live secret ID of the role, named by value or by accessor. */
async function lookupSecretId(ctx: AppRoleContext, req: LogicalRequest, f: FieldData, keyOf: SecretIdKey): Promise<LogicalResponse | null> {
  const role = await mustRole(req.storage, roleName(f));
  const entry = await getJson<SecretIdEntry>(req.storage, await keyOf(req.storage, role, f));
  if (!entry || expired(entry, ctx.clock())) return null;
  return { data: secretIdData(entry) };
}

/** Deletes a secret ID of the role, named by value or by accessor (one that is gone already: nothing to do). */
function destroySecretId(ctx: AppRoleContext, req: LogicalRequest, f: FieldData, keyOf: SecretIdKey): Promise<LogicalResponse | null> {
  const name = roleName(f);
  return ctx.locks.run(`role:${name}`, async () => {
    const role = await mustRole(req.storage, name);
    await deleteSecretId(req.storage, await keyOf(req.storage, role, f));
    return null;
  });
}

// ---------------------------------------------------------------------------
// Storage helpers

/** How a request names one secret ID of a role: its storage key. */
type SecretIdKey = (storage: Storage, role: AppRoleEntry, f: FieldData) => Promise<string>;

const BY_VALUE: SecretIdKey = async (_storage, role, f) => secretKey(role, f.get<string>('secret_id').trim());
const BY_ACCESSOR: SecretIdKey = (storage, role, f) => keyForAccessor(storage, role, f.get<string>('secret_id_accessor'));

/** The storage key of the role's secret ID an accessor names; a 400 when none has it. */
async function keyForAccessor(storage: Storage, role: AppRoleEntry, accessor: string): Promise<string> {
  const found = await getJson<AccessorEntry>(storage, ACCESSOR_PREFIX + sha256Hex(accessor.trim()));
  if (!found) throw invalidField('secret_id_accessor', `no secret ID of role ${showValue(role.name)} has accessor ${showValue(accessor)}`);
  return secretIdsPrefix(role.name) + found.secret_id_hmac;
}

// ---------------------------------------------------------------------------
// Help

const SECRET_ID_HELP = {
  synopsis: 'Issues a secret ID for the role, or lists the accessors of its secret IDs.',
  description: `
A write issues a random secret ID, with the role's secret_id_num_uses and
secret_id_ttl unless a lower num_uses or shorter ttl is given, optional
metadata for the tokens of its logins, and CIDR bindings within the role's
(cidr_list for the login, token_bound_cidrs for its token). Only its HMAC is
stored. A list answers the accessors of the role's live secret IDs.`,
};

const CUSTOM_HELP = {
  synopsis: 'Registers a secret ID chosen by the caller for the role.',
  description: `
As secret-id, with the value given in secret_id (a trusted orchestrator that
generates secret IDs itself pushes them here). A value already registered on
the role is refused.`,
};

const LOOKUP_HELP = {
  synopsis: "Reads a secret ID's properties by its value.",
  description: 'The accessor, use count, lifetime, metadata and CIDR bindings of a live secret ID of the role.',
};

const DESTROY_HELP = {
  synopsis: 'Destroys a secret ID by its value.',
  description: 'The secret ID and its accessor are deleted; destroying one that does not exist succeeds.',
};

const ACCESSOR_LOOKUP_HELP = {
  synopsis: "Reads a secret ID's properties by its accessor.",
  description: 'As secret-id/lookup, naming the secret ID by the accessor it was issued with.',
};

const ACCESSOR_DESTROY_HELP = {
  synopsis: 'Destroys a secret ID by its accessor.',
  description: 'As secret-id/destroy, naming the secret ID by the accessor it was issued with.',
};
