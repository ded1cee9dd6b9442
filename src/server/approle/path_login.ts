// login: a workload logs in with its role ID and (when the role binds one) a
// secret ID, under the mount's user lockout. The answer is a login (Vault's
// logical.Auth): the server makes the identity and the token from it. The
// entity alias is the role ID, as in Vault; the workload's subject is the
// role name.

import { createHash, timingSafeEqual } from 'node:crypto';
import { EngineError, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import type { LogicalRequest, LogicalResponse, Storage } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { addressAllowed } from '../auth/cidr.ts';
import { loginRoute, ROLE_PREFIX } from '../auth/method.ts';
import { getJson, putJson, sha256Hex } from '../auth/storage.ts';
import { tokenAuth } from '../auth/token_params.ts';
import type { AppRoleContext } from './context.ts';
import { guardLogin, invalidCredentials } from './lockout.ts';
import { newRole, ROLE_ID_PREFIX, type AppRoleEntry } from './roles.ts';
import { deleteSecretId, expired, secretKey, type SecretIdEntry } from './secret_ids.ts';

// ---------------------------------------------------------------------------
// Constants

/**
 * Stands in for the role of an unknown role ID: a login with one reads and
 * parses a role-ID index entry and a role, HMACs the secret ID under a key
 * and reads the secret ID, exactly as a wrong secret ID of a real role
 * does, and fails the same way. Its name cannot be a role's (role names
 * have no spaces), so nothing is ever found under it.
 */
const UNKNOWN_ROLE: AppRoleEntry = newRole(' unknown role');
/** What is parsed in place of a missing index entry or role: the same work as a found one. */
const UNKNOWN_ENTRIES = {
  index: new TextEncoder().encode(JSON.stringify({ name: UNKNOWN_ROLE.name })),
  role: new TextEncoder().encode(JSON.stringify(UNKNOWN_ROLE)),
};

// ---------------------------------------------------------------------------
// Routes

export function loginRoutes(ctx: AppRoleContext): Route[] {
  const fields: Fields = {
    role_id: { type: 'string', secret: true, description: 'The role ID of the role to log in with.' },
    secret_id: { type: 'string', secret: true, description: 'A secret ID of the role (when it binds one).' },
  };
  return [loginRoute(fields, (req, f) => login(ctx, req, f), LOGIN_HELP)];
}

// ---------------------------------------------------------------------------
// Handlers

/** Vault's AppRole login, under the mount's lockout (keyed by role ID). */
async function login(ctx: AppRoleContext, req: LogicalRequest, f: FieldData): Promise<LogicalResponse> {
  const roleId = f.get<string>('role_id').trim();
  if (roleId === '') throw new EngineError('ERR_MISSING_FIELD', 'missing role_id', { field: 'role_id' });
  return guardLogin(ctx, roleId, () => checkLogin(ctx, req, f, roleId));
}

/** The credentials checked; the same reads and hashing whether the role ID exists or not. */
async function checkLogin(ctx: AppRoleContext, req: LogicalRequest, f: FieldData, roleId: string): Promise<LogicalResponse> {
  const role = await loginRole(req.storage, roleId);
  const remoteAddr = req.caller.remoteAddr;

  let metadata: Record<string, string> = {};
  let tokenBoundCidrs = role.token_bound_cidrs;
  if (role.bind_secret_id) {
    const secretId = f.get<string>('secret_id').trim();
    if (secretId === '') throw new EngineError('ERR_MISSING_FIELD', 'missing secret_id', { field: 'secret_id' });
    const key = secretKey(role, secretId);
    // One login at a time per secret ID, so a single-use secret ID logs in once.
    const entry = await ctx.locks.run(`secret:${key}`, () => useSecretId(ctx, req.storage, key, remoteAddr));
    metadata = { ...entry.metadata };
    if (entry.token_bound_cidrs.length > 0) tokenBoundCidrs = entry.token_bound_cidrs;
  }
  if (role.secret_id_bound_cidrs.length > 0 && !addressAllowed(role.secret_id_bound_cidrs, remoteAddr)) {
    throw new EngineError('ERR_INVALID_REQUEST', `source address ${showValue(remoteAddr ?? '')} unauthorized by CIDR restrictions on the role`);
  }
  metadata.role_name = role.name;
  return {
    login: {
      ...tokenAuth(role),
      boundCidrs: [...tokenBoundCidrs],
      metadata,
      displayName: '',
      alias: { name: role.role_id, metadata: { ...metadata, ...role.alias_metadata } },
      subjectName: role.name,
    },
  };
}

// ---------------------------------------------------------------------------
// Storage helpers

/** The role a login's role ID names (else the stand-in), read and parsed the same way whether it exists or not. */
async function loginRole(storage: Storage, roleId: string): Promise<AppRoleEntry> {
  const decode = <T>(bytes: Uint8Array): T => JSON.parse(new TextDecoder().decode(bytes)) as T;
  const index = decode<{ name: string }>((await storage.get(ROLE_ID_PREFIX + sha256Hex(roleId)))?.value ?? UNKNOWN_ENTRIES.index);
  const found = decode<AppRoleEntry>((await storage.get(ROLE_PREFIX + index.name))?.value ?? UNKNOWN_ENTRIES.role);
  // The stand-in's role_id is empty, and a login's never is: it never matches.
  return sameText(found.role_id ?? '', roleId) ? found : UNKNOWN_ROLE;
}

/** Checks a secret ID for a login and counts the use (deleting it at its last, or once expired). */
async function useSecretId(ctx: AppRoleContext, storage: Storage, key: string, remoteAddr: string | undefined): Promise<SecretIdEntry> {
  const found = await getJson<SecretIdEntry>(storage, key);
  if (!found) throw invalidCredentials();
  if (expired(found, ctx.clock())) {
    await deleteSecretId(storage, key);
    throw invalidCredentials();
  }
  if (found.cidr_list.length > 0 && !addressAllowed(found.cidr_list, remoteAddr)) {
    throw new EngineError(
      'ERR_INVALID_REQUEST',
      `source address ${showValue(remoteAddr ?? '')} unauthorized through CIDR restrictions on the secret ID`,
    );
  }
  if (found.secret_id_num_uses === 1) {
    await deleteSecretId(storage, key);
  } else if (found.secret_id_num_uses > 1) {
    found.secret_id_num_uses -= 1;
    found.last_updated_ms = ctx.clock();
    await putJson(storage, key, found);
  }
  return found;
}

/** Compares two strings in time that depends on neither (SHA-256 first, so the lengths match too). */
function sameText(a: string, b: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(a), digest(b));
}

// ---------------------------------------------------------------------------
// Help

const LOGIN_HELP = {
  synopsis: 'Logs in with a role ID and a secret ID; the answer carries a token.',
  description: `
The role ID names the role; a secret ID of the role is needed when it binds
one (bind_secret_id), from an address its CIDR bindings allow. A secret ID
with a use count is used up by its last login. Unknown role IDs and wrong,
used-up or expired secret IDs are all refused alike ("invalid role or secret
ID") and count towards the mount's user lockout.`,
};
