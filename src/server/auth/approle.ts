// The AppRole auth method (Vault's builtin/credential/approle): roles with
// token settings and secret-ID constraints, a role ID per role, secret IDs
// issued against a role (stored as an HMAC under a per-role key, never raw;
// with a ttl, a use count and CIDR bindings), and login with role_id +
// secret_id. A login's entity alias is the role ID, as in Vault; the
// workload's subject is the role name.

import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import { KeyedMutex } from '../../sdk/storage.ts';
import type { Clock, Storage } from '../../sdk/logical.ts';
import { addressAllowed, checkCidrList, cidrSubset } from './cidr.ts';
import type { LockoutGate } from './lockout.ts';
import { AuthRouter, type AuthRoute } from './router.ts';
import { deleteTree, getJson, hmacHex, putJson, rfc3339, sha256Hex } from './storage.ts';
import {
  defaultTokenParams,
  maxTtlWarnings,
  parseTokenFields,
  TOKEN_FIELDS,
  tokenAuth,
  tokenFieldsData,
  type TokenParams,
} from './token_params.ts';
import type { AuthBackend, AuthRequest, AuthResponse } from './types.ts';

// ---------------------------------------------------------------------------
// Constants

const ROLE_PREFIX = 'role/';
const ROLE_ID_PREFIX = 'role_id/';
const SECRET_ID_PREFIX = 'secret_id/';
const ACCESSOR_PREFIX = 'secret_id_accessor/';
/** Vault answers every unknown role ID, unknown secret ID, used-up or expired secret ID alike. */
export const INVALID_CREDENTIALS = 'invalid role or secret ID';
const NAME = String.raw`\w(?:[\w.-]*\w)?`;
const MAX_NAME_LENGTH = 4096;
/** Vault's AppRole words for a role whose token_max_ttl the mount will cap. */
const MAX_TTL_WARNING = "token_max_ttl is greater than the backend mount's maximum TTL value; issued tokens' max TTL value will be truncated";
/** AppRole keeps these legacy names for other things (or never had them). */
const SKIP_LEGACY = ['ttl', 'max_ttl', 'num_uses', 'bound_cidrs'];

// ---------------------------------------------------------------------------
// Stored types

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

/** A secret ID as stored, under the HMAC of its value. */
interface SecretIdEntry {
  secret_id_accessor: string;
  /** Uses left; 0 = unlimited. */
  secret_id_num_uses: number;
  /** Seconds; 0 = never expires. */
  secret_id_ttl: number;
  creation_ms: number;
  /** 0 = never. */
  expiration_ms: number;
  last_updated_ms: number;
  metadata: Record<string, string>;
  cidr_list: string[];
  token_bound_cidrs: string[];
}

interface AccessorEntry {
  secret_id_hmac: string;
}

// ---------------------------------------------------------------------------
// Routes

const ROLE_FIELDS: Fields = {
  role_name: { type: 'string', description: 'Name of the role.' },
  bind_secret_id: { type: 'bool', default: true, description: 'Require a secret_id at login.' },
  secret_id_bound_cidrs: { type: 'string_list', description: 'CIDR blocks logins with this role may come from.' },
  bound_cidr_list: { type: 'string_list', description: 'Deprecated: use secret_id_bound_cidrs.' },
  secret_id_num_uses: { type: 'int', description: 'Logins a secret ID allows (0: unlimited).' },
  secret_id_ttl: { type: 'duration', description: 'Lifetime of secret IDs (0: no expiry).' },
  local_secret_ids: { type: 'bool', description: 'Accepted for compatibility; a single server has only local secret IDs.' },
  role_id: { type: 'string', description: 'A custom role ID (default: a random UUID).' },
  ...Object.fromEntries(Object.entries(TOKEN_FIELDS).filter(([k]) => !SKIP_LEGACY.includes(k))),
};

const SECRET_ID_FIELDS: Fields = {
  role_name: { type: 'string', description: 'Name of the role.' },
  metadata: { type: 'string_map', description: 'Metadata (a JSON object, or its JSON text) set on tokens issued with this secret ID.' },
  cidr_list: { type: 'string_list', description: 'CIDR blocks this secret ID may be used from (within the role\'s).' },
  token_bound_cidrs: { type: 'string_list', description: 'CIDR blocks the tokens issued with this secret ID may be used from.' },
  num_uses: { type: 'int', description: 'Logins this secret ID allows (at most the role\'s secret_id_num_uses).' },
  ttl: { type: 'duration', description: 'Lifetime of this secret ID (at most the role\'s secret_id_ttl).' },
  secret_id: { type: 'string', description: 'The secret ID (custom-secret-id only).' },
};

export class AppRoleBackend implements AuthBackend {
  readonly type = 'approle' as const;
  private readonly clock: Clock;
  private readonly router: AuthRouter;
  private readonly locks = new KeyedMutex();

  constructor(options: { clock: Clock }) {
    this.clock = options.clock;
    const role = (suffix: string): string => `role/(?<role_name>${NAME})${suffix}`;
    const routes: AuthRoute[] = [
      { pattern: 'role/?', fields: {}, operations: { list: (req) => this.listRoles(req) } },
      {
        pattern: role(''),
        fields: ROLE_FIELDS,
        operations: {
          read: (req, f) => this.readRole(req, f),
          create: (req, f) => this.writeRole(req, f, true),
          update: (req, f) => this.writeRole(req, f, false),
          delete: (req, f) => this.deleteRole(req, f),
        },
        existenceCheck: async (req, f) => (await this.role(req.storage, roleName(f))) !== null,
      },
      {
        pattern: role('/role-id'),
        fields: { role_name: ROLE_FIELDS.role_name, role_id: { type: 'string', description: 'The new role ID.' } },
        operations: { read: (req, f) => this.readRoleId(req, f), update: (req, f) => this.writeRoleId(req, f) },
        required: ['role_id'],
      },
      {
        pattern: role('/secret-id/?'),
        fields: SECRET_ID_FIELDS,
        operations: { update: (req, f) => this.issueSecretId(req, f, false), list: (req, f) => this.listSecretIds(req, f) },
      },
      {
        pattern: role('/custom-secret-id'),
        fields: SECRET_ID_FIELDS,
        operations: { update: (req, f) => this.issueSecretId(req, f, true) },
        required: ['secret_id'],
        secret: ['secret_id'],
      },
      {
        pattern: role('/secret-id/lookup/?'),
        fields: { role_name: ROLE_FIELDS.role_name, secret_id: SECRET_ID_FIELDS.secret_id },
        operations: { update: (req, f) => this.lookupSecretId(req, f) },
        required: ['secret_id'],
        secret: ['secret_id'],
      },
      {
        pattern: role('/secret-id/destroy/?'),
        fields: { role_name: ROLE_FIELDS.role_name, secret_id: SECRET_ID_FIELDS.secret_id },
        operations: { update: (req, f) => this.destroySecretId(req, f), delete: (req, f) => this.destroySecretId(req, f) },
        required: ['secret_id'],
        secret: ['secret_id'],
      },
      {
        pattern: role('/secret-id-accessor/lookup/?'),
        fields: { role_name: ROLE_FIELDS.role_name, secret_id_accessor: { type: 'string', description: 'The accessor.' } },
        operations: { update: (req, f) => this.lookupAccessor(req, f) },
        required: ['secret_id_accessor'],
      },
      {
        pattern: role('/secret-id-accessor/destroy/?'),
        fields: { role_name: ROLE_FIELDS.role_name, secret_id_accessor: { type: 'string', description: 'The accessor.' } },
        operations: { update: (req, f) => this.destroyAccessor(req, f), delete: (req, f) => this.destroyAccessor(req, f) },
        required: ['secret_id_accessor'],
      },
      {
        pattern: 'login',
        fields: {
          role_id: { type: 'string', description: 'The role ID.' },
          secret_id: { type: 'string', description: 'The secret ID.' },
        },
        operations: { update: (req, f) => this.login(req, f) },
        secret: ['role_id', 'secret_id'],
      },
    ];
    this.router = new AuthRouter(routes, { caseInsensitive: ['role_name'] });
  }

  canonicalPath(path: string): string {
    return this.router.canonicalPath(path);
  }

  unauthenticated(path: string): boolean {
    return path === 'login';
  }

  exists(req: AuthRequest): Promise<boolean | undefined> {
    return this.router.exists(req);
  }

  handle(req: AuthRequest): Promise<AuthResponse | null> {
    return this.router.handle(req);
  }

  async cleanup(): Promise<void> {}

  // -------------------------------------------------------------------------
  // Roles

  private async listRoles(req: AuthRequest): Promise<AuthResponse> {
    const keys = (await req.storage.list(ROLE_PREFIX)).filter((k) => !k.endsWith('/'));
    return { data: { keys } };
  }

  private async readRole(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const role = await this.role(req.storage, roleName(f));
    if (!role) return null;
    return { data: roleData(role) };
  }

  private writeRole(req: AuthRequest, f: FieldData, create: boolean): Promise<AuthResponse | null> {
    const name = roleName(f);
    return this.locks.run(`role:${name}`, async () => {
      const existing = await this.role(req.storage, name);
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
      if (role.role_id !== previousRoleId) await this.claimRoleId(req.storage, role.role_id, name);
      await putJson(req.storage, ROLE_PREFIX + name, role);
      if (previousRoleId && previousRoleId !== role.role_id) await req.storage.delete(ROLE_ID_PREFIX + sha256Hex(previousRoleId));
      const warnings = maxTtlWarnings(role, req.mount.maxLeaseTtlSeconds, MAX_TTL_WARNING);
      return warnings ? { warnings } : null;
    });
  }

  private deleteRole(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const name = roleName(f);
    return this.locks.run(`role:${name}`, async () => {
      const role = await this.role(req.storage, name);
      if (!role) return null;
      // Secret IDs and their accessors go with the role.
      for (const key of await req.storage.list(`${SECRET_ID_PREFIX}${sha256Hex(name)}/`)) {
        const entry = await getJson<SecretIdEntry>(req.storage, `${SECRET_ID_PREFIX}${sha256Hex(name)}/${key}`);
        if (entry) await req.storage.delete(ACCESSOR_PREFIX + sha256Hex(entry.secret_id_accessor));
      }
      await deleteTree(req.storage, `${SECRET_ID_PREFIX}${sha256Hex(name)}/`);
      await req.storage.delete(ROLE_ID_PREFIX + sha256Hex(role.role_id));
      await req.storage.delete(ROLE_PREFIX + name);
      return null;
    });
  }

  private async readRoleId(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const role = await this.role(req.storage, roleName(f));
    if (!role) return null;
    return { data: { role_id: role.role_id } };
  }

  private writeRoleId(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const name = roleName(f);
    return this.locks.run(`role:${name}`, async () => {
      const role = await this.mustRole(req.storage, name);
      const roleId = f.get<string>('role_id').trim();
      if (roleId === '') throw new EngineError('ERR_MISSING_FIELD', 'missing required field role_id', { field: 'role_id' });
      if (roleId === role.role_id) return null;
      await this.claimRoleId(req.storage, roleId, name);
      const previous = role.role_id;
      role.role_id = roleId;
      await putJson(req.storage, ROLE_PREFIX + name, role);
      await req.storage.delete(ROLE_ID_PREFIX + sha256Hex(previous));
      return null;
    });
  }

  /** Points a role ID at a role; refuses one another role holds. */
  private async claimRoleId(storage: Storage, roleId: string, name: string): Promise<void> {
    const key = ROLE_ID_PREFIX + sha256Hex(roleId);
    const holder = await getJson<{ name: string }>(storage, key);
    if (holder && holder.name !== name && (await this.role(storage, holder.name))) {
      throw invalidField('role_id', 'this role ID is already in use by another role');
    }
    await putJson(storage, key, { name });
  }

  // -------------------------------------------------------------------------
  // Secret IDs

  private issueSecretId(req: AuthRequest, f: FieldData, custom: boolean): Promise<AuthResponse> {
    const name = roleName(f);
    return this.locks.run(`role:${name}`, async () => {
      const role = await this.mustRole(req.storage, name);
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
      const key = `${SECRET_ID_PREFIX}${sha256Hex(name)}/${hmac}`;
      if (await getJson<SecretIdEntry>(req.storage, key)) {
        throw new EngineError('ERR_INVALID_REQUEST', 'this secret ID is already registered on the role');
      }
      const now = this.clock();
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

  private async listSecretIds(req: AuthRequest, f: FieldData): Promise<AuthResponse> {
    const name = roleName(f);
    await this.mustRole(req.storage, name);
    const prefix = `${SECRET_ID_PREFIX}${sha256Hex(name)}/`;
    const keys: string[] = [];
    for (const k of await req.storage.list(prefix)) {
      const entry = await getJson<SecretIdEntry>(req.storage, prefix + k);
      if (entry && !this.expired(entry)) keys.push(entry.secret_id_accessor);
    }
    return { data: { keys: keys.sort() } };
  }

  private async lookupSecretId(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const role = await this.mustRole(req.storage, roleName(f));
    const entry = await getJson<SecretIdEntry>(req.storage, this.secretKey(role, f.get<string>('secret_id').trim()));
    if (!entry || this.expired(entry)) return null;
    return { data: secretIdData(entry) };
  }

  private destroySecretId(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const name = roleName(f);
    return this.locks.run(`role:${name}`, async () => {
      const role = await this.mustRole(req.storage, name);
      await this.deleteSecretId(req.storage, this.secretKey(role, f.get<string>('secret_id').trim()));
      return null;
    });
  }

  private async lookupAccessor(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const role = await this.mustRole(req.storage, roleName(f));
    const key = await this.keyForAccessor(req.storage, role, f.get<string>('secret_id_accessor'));
    const entry = await getJson<SecretIdEntry>(req.storage, key);
    if (!entry || this.expired(entry)) return null;
    return { data: secretIdData(entry) };
  }

  private destroyAccessor(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const name = roleName(f);
    return this.locks.run(`role:${name}`, async () => {
      const role = await this.mustRole(req.storage, name);
      const key = await this.keyForAccessor(req.storage, role, f.get<string>('secret_id_accessor'));
      await this.deleteSecretId(req.storage, key);
      return null;
    });
  }

  private async keyForAccessor(storage: Storage, role: AppRoleEntry, accessor: string): Promise<string> {
    const found = await getJson<AccessorEntry>(storage, ACCESSOR_PREFIX + sha256Hex(accessor.trim()));
    if (!found) throw invalidField('secret_id_accessor', `no secret ID of role ${showValue(role.name)} has accessor ${showValue(accessor)}`);
    return `${SECRET_ID_PREFIX}${sha256Hex(role.name)}/${found.secret_id_hmac}`;
  }

  private async deleteSecretId(storage: Storage, key: string): Promise<void> {
    const entry = await getJson<SecretIdEntry>(storage, key);
    if (!entry) return;
    await storage.delete(ACCESSOR_PREFIX + sha256Hex(entry.secret_id_accessor));
    await storage.delete(key);
  }

  private secretKey(role: AppRoleEntry, secretId: string): string {
    return `${SECRET_ID_PREFIX}${sha256Hex(role.name)}/${hmacHex(role.hmac_key, secretId)}`;
  }

  private expired(entry: SecretIdEntry): boolean {
    return entry.expiration_ms !== 0 && entry.expiration_ms <= this.clock();
  }

  // -------------------------------------------------------------------------
  // Login

  /** User lockout on this mount (the auth table sets it); none: logins are never locked out. */
  private lockout: LockoutGate | null = null;

  /**
   * Stands in for the role of an unknown role ID: a login with one reads and
   * parses a role-ID index entry and a role, HMACs the secret ID under a key
   * and reads the secret ID, exactly as a wrong secret ID of a real role
   * does, and fails the same way. Its name cannot be a role's (role names
   * have no spaces), so nothing is ever found under it.
   */
  private readonly unknownRole: AppRoleEntry = newRole(' unknown role');
  /** What is parsed in place of a missing index entry or role: the same work as a found one. */
  private readonly unknownEntries = {
    index: new TextEncoder().encode(JSON.stringify({ name: this.unknownRole.name })),
    role: new TextEncoder().encode(JSON.stringify(this.unknownRole)),
  };

  useLockout(gate: LockoutGate): void {
    this.lockout = gate;
  }

  /**
   * Vault's login with user lockout around it: a locked role ID is refused
   * ("permission denied") before its credentials are looked at, even the
   * right ones; a login refused as "invalid role or secret ID" counts
   * towards the lockout, whether the role ID exists or not; a successful
   * one clears the count.
   */
  private async login(req: AuthRequest, f: FieldData): Promise<AuthResponse> {
    const roleId = f.get<string>('role_id').trim();
    if (roleId === '') throw new EngineError('ERR_MISSING_FIELD', 'missing role_id', { field: 'role_id' });
    const gate = this.lockout;
    if (!gate?.enabled()) return this.checkLogin(req, f, roleId);
    // One login at a time per role ID, so a burst of guesses cannot outrun the count.
    return this.locks.run(`login:${sha256Hex(roleId)}`, async () => {
      if (gate.locked(roleId)) throw new EngineError('ERR_PERMISSION_DENIED', 'permission denied');
      try {
        const response = await this.checkLogin(req, f, roleId);
        gate.succeeded(roleId);
        return response;
      } catch (err) {
        if (err instanceof EngineError && err.message === INVALID_CREDENTIALS) gate.failed(roleId);
        throw err;
      }
    });
  }

  /** The role a login's role ID names (else the stand-in), read and parsed the same way whether it exists or not. */
  private async loginRole(storage: Storage, roleId: string): Promise<AppRoleEntry> {
    const decode = <T>(bytes: Uint8Array): T => JSON.parse(new TextDecoder().decode(bytes)) as T;
    const index = decode<{ name: string }>((await storage.get(ROLE_ID_PREFIX + sha256Hex(roleId)))?.value ?? this.unknownEntries.index);
    const found = decode<AppRoleEntry>((await storage.get(ROLE_PREFIX + index.name))?.value ?? this.unknownEntries.role);
    // The stand-in's role_id is empty, and a login's never is: it never matches.
    return sameText(found.role_id ?? '', roleId) ? found : this.unknownRole;
  }

  /** The credentials checked; the same reads and hashing whether the role ID exists or not. */
  private async checkLogin(req: AuthRequest, f: FieldData, roleId: string): Promise<AuthResponse> {
    const role = await this.loginRole(req.storage, roleId);

    let metadata: Record<string, string> = {};
    let tokenBoundCidrs = role.token_bound_cidrs;
    if (role.bind_secret_id) {
      const secretId = f.get<string>('secret_id').trim();
      if (secretId === '') throw new EngineError('ERR_MISSING_FIELD', 'missing secret_id', { field: 'secret_id' });
      const key = this.secretKey(role, secretId);
      // One login at a time per secret ID, so a single-use secret ID logs in once.
      const entry = await this.locks.run(`secret:${key}`, async () => {
        const found = await getJson<SecretIdEntry>(req.storage, key);
        if (!found) throw invalidCredentials();
        if (this.expired(found)) {
          await this.deleteSecretId(req.storage, key);
          throw invalidCredentials();
        }
        if (found.cidr_list.length > 0 && !addressAllowed(found.cidr_list, req.remoteAddr)) {
          throw new EngineError(
            'ERR_INVALID_REQUEST',
            `source address ${showValue(req.remoteAddr ?? '')} unauthorized through CIDR restrictions on the secret ID`,
          );
        }
        if (found.secret_id_num_uses === 1) {
          await this.deleteSecretId(req.storage, key);
        } else if (found.secret_id_num_uses > 1) {
          found.secret_id_num_uses -= 1;
          found.last_updated_ms = this.clock();
          await putJson(req.storage, key, found);
        }
        return found;
      });
      metadata = { ...entry.metadata };
      if (entry.token_bound_cidrs.length > 0) tokenBoundCidrs = entry.token_bound_cidrs;
    }
    if (role.secret_id_bound_cidrs.length > 0 && !addressAllowed(role.secret_id_bound_cidrs, req.remoteAddr)) {
      throw new EngineError(
        'ERR_INVALID_REQUEST',
        `source address ${showValue(req.remoteAddr ?? '')} unauthorized by CIDR restrictions on the role`,
      );
    }
    metadata.role_name = role.name;
    return {
      auth: {
        ...tokenAuth(role),
        boundCidrs: [...tokenBoundCidrs],
        metadata,
        displayName: '',
        alias: { name: role.role_id, metadata: { ...metadata, ...role.alias_metadata } },
        subjectName: role.name,
      },
    };
  }

  // -------------------------------------------------------------------------
  // Storage helpers

  private role(storage: Storage, name: string): Promise<AppRoleEntry | null> {
    return getJson<AppRoleEntry>(storage, ROLE_PREFIX + name);
  }

  private async mustRole(storage: Storage, name: string): Promise<AppRoleEntry> {
    const role = await this.role(storage, name);
    if (!role) throw new EngineError('ERR_INVALID_REQUEST', `role ${showValue(name)} does not exist`);
    return role;
  }
}

function roleName(f: FieldData): string {
  const name = f.get<string>('role_name').toLowerCase();
  if (name.length > MAX_NAME_LENGTH) throw invalidField('role_name', `longer than ${MAX_NAME_LENGTH} characters`);
  return name;
}

/** A role as first written: Vault's defaults, a fresh HMAC key, no role ID yet. */
function newRole(name: string): AppRoleEntry {
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

/** Compares two strings in time that depends on neither (SHA-256 first, so the lengths match too). */
function sameText(a: string, b: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function invalidCredentials(): EngineError {
  return new EngineError('ERR_INVALID_REQUEST', INVALID_CREDENTIALS);
}

/** A role as `GET role/<name>` shows it. */
function roleData(role: AppRoleEntry): Record<string, unknown> {
  const data: Record<string, unknown> = {
    bind_secret_id: role.bind_secret_id,
    local_secret_ids: role.local_secret_ids,
    // null when none are set, as Vault answers an unset list.
    secret_id_bound_cidrs: role.secret_id_bound_cidrs.length > 0 ? [...role.secret_id_bound_cidrs] : null,
    secret_id_num_uses: role.secret_id_num_uses,
    secret_id_ttl: role.secret_id_ttl,
    ...tokenFieldsData(role),
  };
  return data;
}

function secretIdData(entry: SecretIdEntry): Record<string, unknown> {
  return {
    cidr_list: [...entry.cidr_list],
    creation_time: rfc3339(entry.creation_ms),
    expiration_time: rfc3339(entry.expiration_ms),
    last_updated_time: rfc3339(entry.last_updated_ms),
    metadata: { ...entry.metadata },
    secret_id_accessor: entry.secret_id_accessor,
    secret_id_num_uses: entry.secret_id_num_uses,
    secret_id_ttl: entry.secret_id_ttl,
    token_bound_cidrs: [...entry.token_bound_cidrs],
  };
}
