// The JWT auth method (Vault's vault-plugin-auth-jwt, JWT flow only): a
// config naming where signing keys come from (PEM public keys, a JWKS URL, or
// an OIDC discovery URL) and the expected issuer; roles binding audiences,
// subject and claims to token settings; and login with a signed JWT, such as
// a Kubernetes service-account token or a CI system's OIDC token. The alias
// (and the workload's subject) is the value of the role's user claim.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet } from 'jose';
import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import { KeyedMutex } from '../../sdk/storage.ts';
import type { Clock, Storage } from '../../sdk/logical.ts';
import { addressAllowed } from './cidr.ts';
import { audiences, JwtValidationError, SUPPORTED_ALGS, validateJwt, type KeySource } from './jwt_verify.ts';
import { AuthRouter, type AuthRoute } from './router.ts';
import { getJson, putJson } from './storage.ts';
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

const CONFIG_KEY = 'config';
const ROLE_PREFIX = 'role/';
const NAME = String.raw`\w(?:[\w.-]*\w)?`;
const FETCH_TIMEOUT_MS = 5_000;
/** The JWT method's words for a role whose token_max_ttl the mount will cap. */
const MAX_TTL_WARNING = "token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated";
/** Metadata keys a claim may not be mapped to. */
const RESERVED_METADATA = ['role'];

// ---------------------------------------------------------------------------
// Stored types

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
// Routes

const CONFIG_FIELDS: Fields = {
  oidc_discovery_url: { type: 'string', description: 'OIDC discovery URL; its JWKS verifies tokens and its issuer is required.' },
  oidc_discovery_ca_pem: { type: 'string', description: 'Not supported: set NODE_EXTRA_CA_CERTS for private CAs.' },
  oidc_client_id: { type: 'string', description: 'Not supported: this server serves the JWT flow only.' },
  oidc_client_secret: { type: 'string', description: 'Not supported: this server serves the JWT flow only.' },
  oidc_response_mode: { type: 'string', description: 'Accepted for compatibility (OIDC flow only).' },
  oidc_response_types: { type: 'string_list', description: 'Accepted for compatibility (OIDC flow only).' },
  jwks_url: { type: 'string', description: 'A JSON Web Key Set URL whose keys verify tokens.' },
  jwks_ca_pem: { type: 'string', description: 'Not supported: set NODE_EXTRA_CA_CERTS for private CAs.' },
  default_role: { type: 'string', description: 'The role used when a login names none.' },
  jwt_validation_pubkeys: { type: 'string_list', description: 'PEM-encoded public keys that verify tokens.' },
  jwt_supported_algs: { type: 'string_list', description: `Accepted signing algorithms (default: ${SUPPORTED_ALGS.join(', ')}).` },
  bound_issuer: { type: 'string', description: 'The required "iss" claim.' },
  provider_config: { type: 'object', description: 'Accepted for compatibility (OIDC providers only).' },
  namespace_in_state: { type: 'bool', description: 'Accepted for compatibility (OIDC flow only).' },
  unsupported_critical_cert_extensions: { type: 'string_list', description: 'Accepted for compatibility.' },
};

const ROLE_FIELDS: Fields = {
  name: { type: 'string', description: 'Name of the role.' },
  role_type: { type: 'string', description: 'Must be "jwt" (the OIDC browser flow is not served).' },
  expiration_leeway: { type: 'string', description: 'Leeway (seconds) for tokens without "exp"; 0: 150, -1: none.' },
  not_before_leeway: { type: 'string', description: 'Leeway (seconds) for tokens without "nbf"; 0: 150, -1: none.' },
  clock_skew_leeway: { type: 'string', description: 'Clock skew (seconds) allowed on all time claims; 0: 60, -1: none.' },
  bound_audiences: { type: 'string_list', description: 'The token\'s "aud" must include one of these.' },
  bound_subject: { type: 'string', description: 'The token\'s "sub" must equal this.' },
  bound_claims_type: { type: 'string', description: '"string" (exact match, the default) or "glob" ("*" wildcards).' },
  bound_claims: { type: 'object', description: 'Claims (name or JSON pointer) and the values one of which each must have.' },
  claim_mappings: { type: 'string_map', description: 'Claims copied to token metadata (claim: metadata key).' },
  user_claim: { type: 'string', description: 'The claim naming the workload: alias name and subject.' },
  user_claim_json_pointer: { type: 'bool', description: 'user_claim is a JSON pointer (/a/b) into nested claims.' },
  groups_claim: { type: 'string', description: 'A claim that must hold a list of group names.' },
  oidc_scopes: { type: 'string_list', description: 'Accepted for compatibility (OIDC flow only).' },
  allowed_redirect_uris: { type: 'string_list', description: 'Accepted for compatibility (OIDC flow only).' },
  verbose_oidc_logging: { type: 'bool', description: 'Accepted for compatibility; tokens are never logged here.' },
  max_age: { type: 'duration', description: 'Accepted for compatibility (OIDC flow only).' },
  ...TOKEN_FIELDS,
};

interface CachedKeys {
  config: JwtConfig;
  source: KeySource;
  /** The issuer a discovery document declared ('' without discovery). */
  discoveredIssuer: string;
}

export class JwtBackend implements AuthBackend {
  readonly type = 'jwt' as const;
  private readonly clock: Clock;
  private readonly router: AuthRouter;
  private readonly locks = new KeyedMutex();
  private cached: CachedKeys | undefined;

  constructor(options: { clock: Clock }) {
    this.clock = options.clock;
    const routes: AuthRoute[] = [
      {
        pattern: 'config',
        fields: CONFIG_FIELDS,
        operations: { read: (req) => this.readConfig(req), update: (req, f) => this.writeConfig(req, f) },
        // A list of objects; not supported, refused when not empty.
        raw: ['jwks_pairs'],
      },
      { pattern: 'role/?', fields: {}, operations: { list: (req) => this.listRoles(req) } },
      {
        pattern: `role/(?<name>${NAME})`,
        fields: ROLE_FIELDS,
        operations: {
          read: (req, f) => this.readRole(req, f),
          create: (req, f) => this.writeRole(req, f, true),
          update: (req, f) => this.writeRole(req, f, false),
          delete: async (req, f) => {
            await req.storage.delete(ROLE_PREFIX + roleName(f));
            return null;
          },
        },
        existenceCheck: async (req, f) => (await this.role(req.storage, roleName(f))) !== null,
      },
      {
        pattern: 'login',
        fields: {
          role: { type: 'string', description: 'The role to log in with (default: the config\'s default_role).' },
          jwt: { type: 'string', description: 'The signed JWT.' },
          distributed_claim_access_token: { type: 'string', description: 'Not supported (Azure only).' },
        },
        operations: { update: (req, f) => this.login(req, f) },
        secret: ['jwt'],
      },
    ];
    this.router = new AuthRouter(routes, { caseInsensitive: ['name'] });
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

  async cleanup(): Promise<void> {
    this.cached = undefined;
  }

  // -------------------------------------------------------------------------
  // Config

  private async readConfig(req: AuthRequest): Promise<AuthResponse | null> {
    const config = await getJson<JwtConfig>(req.storage, CONFIG_KEY);
    if (!config) return null;
    return { data: { ...config } };
  }

  private writeConfig(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    return this.locks.run('config', async () => {
      const previous = await getJson<JwtConfig>(req.storage, CONFIG_KEY);
      const config: JwtConfig = {
        oidc_discovery_url: f.get<string>('oidc_discovery_url').trim(),
        oidc_discovery_ca_pem: f.get<string>('oidc_discovery_ca_pem'),
        oidc_client_id: f.get<string>('oidc_client_id'),
        oidc_response_mode: f.get<string>('oidc_response_mode'),
        oidc_response_types: f.get<string[]>('oidc_response_types'),
        jwks_url: f.get<string>('jwks_url').trim(),
        jwks_ca_pem: f.get<string>('jwks_ca_pem'),
        jwks_pairs: Array.isArray(req.data.jwks_pairs) ? req.data.jwks_pairs : [],
        default_role: f.get<string>('default_role').toLowerCase(),
        jwt_validation_pubkeys: f.get<string[]>('jwt_validation_pubkeys').filter((k) => k.trim() !== ''),
        jwt_supported_algs: f.get<string[]>('jwt_supported_algs').filter((a) => a.trim() !== ''),
        bound_issuer: f.get<string>('bound_issuer'),
        provider_config: f.get<Record<string, unknown>>('provider_config'),
        namespace_in_state: f.has('namespace_in_state') ? f.get<boolean>('namespace_in_state') : (previous?.namespace_in_state ?? true),
        unsupported_critical_cert_extensions: f.get<string[]>('unsupported_critical_cert_extensions'),
      };
      const pairs = req.data.jwks_pairs;
      if (pairs !== undefined && pairs !== null && pairs !== '' && !Array.isArray(pairs)) throw invalidField('jwks_pairs', 'expected a list');
      if (config.oidc_client_id !== '' || f.get<string>('oidc_client_secret') !== '') {
        throw new EngineError(
          'ERR_INVALID_REQUEST',
          'oidc_client_id and oidc_client_secret (the OIDC browser flow) are not supported by this server; configure jwt_validation_pubkeys, jwks_url or oidc_discovery_url for JWT logins',
        );
      }
      const methods = [
        config.oidc_discovery_url !== '',
        config.jwt_validation_pubkeys.length > 0,
        config.jwks_url !== '',
        config.jwks_pairs.length > 0,
      ].filter(Boolean).length;
      if (methods !== 1) {
        throw new EngineError(
          'ERR_INVALID_REQUEST',
          "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
        );
      }
      if (config.jwks_pairs.length > 0) throw invalidField('jwks_pairs', 'not supported by this server; use one jwks_url');
      if (config.jwks_ca_pem.trim() !== '' || config.oidc_discovery_ca_pem.trim() !== '') {
        throw new EngineError(
          'ERR_INVALID_REQUEST',
          'jwks_ca_pem and oidc_discovery_ca_pem are not supported by this server; trust a private CA with the NODE_EXTRA_CA_CERTS environment variable',
        );
      }
      for (const alg of config.jwt_supported_algs) {
        if (!(SUPPORTED_ALGS as readonly string[]).includes(alg)) {
          throw invalidField('jwt_supported_algs', `unsupported signing algorithm ${showValue(alg)} (supported: ${SUPPORTED_ALGS.join(', ')})`);
        }
      }
      // Check the key source now, as Vault does, so a typo fails the write and not every login.
      const cached = await buildKeys(config);
      await putJson(req.storage, CONFIG_KEY, config);
      this.cached = cached;
      return null;
    });
  }

  private async keys(storage: Storage): Promise<CachedKeys> {
    const config = await getJson<JwtConfig>(storage, CONFIG_KEY);
    if (!config) throw new EngineError('ERR_INVALID_REQUEST', 'could not load configuration: write the config of this JWT auth method first');
    if (this.cached && JSON.stringify(this.cached.config) === JSON.stringify(config)) return this.cached;
    return this.locks.run('keys', async () => {
      if (this.cached && JSON.stringify(this.cached.config) === JSON.stringify(config)) return this.cached;
      this.cached = await buildKeys(config);
      return this.cached;
    });
  }

  // -------------------------------------------------------------------------
  // Roles

  private async listRoles(req: AuthRequest): Promise<AuthResponse> {
    return { data: { keys: (await req.storage.list(ROLE_PREFIX)).filter((k) => !k.endsWith('/')) } };
  }

  private async readRole(req: AuthRequest, f: FieldData): Promise<AuthResponse | null> {
    const role = await this.role(req.storage, roleName(f));
    return role ? { data: roleData(role) } : null;
  }

  private writeRole(req: AuthRequest, f: FieldData, create: boolean): Promise<AuthResponse | null> {
    const name = roleName(f);
    return this.locks.run(`role:${name}`, async () => {
      const existing = await this.role(req.storage, name);
      if (!existing && !create) throw new EngineError('ERR_INVALID_REQUEST', `role ${showValue(name)} does not exist`);
      const role: JwtRoleEntry = existing
        ? { ...existing }
        : {
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

      const roleType = f.get<string>('role_type').trim();
      if (roleType === '' && !existing) {
        throw invalidField(
          'role_type',
          'missing: Vault defaults to "oidc", the browser flow, which this server does not serve; set role_type to "jwt"',
        );
      }
      if (roleType !== '' && roleType !== 'jwt') {
        if (roleType === 'oidc') throw invalidField('role_type', '"oidc" (the browser flow) is not supported by this server; use "jwt"');
        throw invalidField('role_type', `${showValue(roleType)} is not a role type; use "jwt"`);
      }

      Object.assign(role, parseTokenFields(role, f));
      for (const name of ['expiration_leeway', 'not_before_leeway', 'clock_skew_leeway'] as const) {
        if (f.has(name)) role[name] = signedSeconds(name, f.get<string>(name));
      }
      if (f.has('bound_audiences')) role.bound_audiences = f.get<string[]>('bound_audiences').filter((a) => a !== '');
      if (f.has('bound_subject')) role.bound_subject = f.get<string>('bound_subject');
      if (f.has('verbose_oidc_logging')) role.verbose_oidc_logging = f.get<boolean>('verbose_oidc_logging');
      if (f.has('max_age')) role.max_age = Math.round(f.get<number>('max_age') / 1000);
      if (f.has('oidc_scopes')) role.oidc_scopes = f.get<string[]>('oidc_scopes');
      if (f.has('allowed_redirect_uris')) role.allowed_redirect_uris = f.get<string[]>('allowed_redirect_uris');
      if (f.has('user_claim')) role.user_claim = f.get<string>('user_claim');
      if (f.has('user_claim_json_pointer')) role.user_claim_json_pointer = f.get<boolean>('user_claim_json_pointer');
      if (f.has('groups_claim')) role.groups_claim = f.get<string>('groups_claim');

      const claimsType = f.has('bound_claims_type') ? f.get<string>('bound_claims_type') || 'string' : role.bound_claims_type;
      if (claimsType !== 'string' && claimsType !== 'glob') {
        throw invalidField('bound_claims_type', `${showValue(claimsType)} is not "string" or "glob"`);
      }
      role.bound_claims_type = claimsType;
      if (f.has('bound_claims')) role.bound_claims = checkBoundClaims(f.get<Record<string, unknown>>('bound_claims'), claimsType);
      else if (role.bound_claims) checkBoundClaims(role.bound_claims, claimsType);

      if (f.has('claim_mappings')) {
        const mappings = f.get<Record<string, string>>('claim_mappings');
        const targets = new Set<string>();
        for (const target of Object.values(mappings)) {
          if (RESERVED_METADATA.includes(target)) {
            throw invalidField('claim_mappings', `metadata key ${showValue(target)} is reserved and may not be a mapping destination`);
          }
          if (targets.has(target)) throw invalidField('claim_mappings', `multiple keys are mapped to metadata key ${showValue(target)}`);
          targets.add(target);
        }
        role.claim_mappings = mappings;
      }

      if (role.user_claim === '') throw invalidField('user_claim', 'a user claim must be defined on the role (for example "sub")');
      if (
        role.bound_audiences.length === 0 &&
        role.token_bound_cidrs.length === 0 &&
        role.bound_subject === '' &&
        Object.keys(role.bound_claims ?? {}).length === 0
      ) {
        throw new EngineError(
          'ERR_INVALID_REQUEST',
          'must have at least one bound constraint when creating/updating a role',
        );
      }
      await putJson(req.storage, ROLE_PREFIX + name, role);
      const warnings = maxTtlWarnings(role, req.mount.maxLeaseTtlSeconds, MAX_TTL_WARNING);
      return warnings ? { warnings } : null;
    });
  }

  private role(storage: Storage, name: string): Promise<JwtRoleEntry | null> {
    return getJson<JwtRoleEntry>(storage, ROLE_PREFIX + name);
  }

  // -------------------------------------------------------------------------
  // Login

  private async login(req: AuthRequest, f: FieldData): Promise<AuthResponse> {
    const config = await getJson<JwtConfig>(req.storage, CONFIG_KEY);
    if (!config) throw new EngineError('ERR_INVALID_REQUEST', 'could not load configuration: write the config of this JWT auth method first');
    const name = (f.get<string>('role').trim() || config.default_role).toLowerCase();
    if (name === '') throw new EngineError('ERR_MISSING_FIELD', 'missing role', { field: 'role' });
    const role = await this.role(req.storage, name);
    if (!role) throw new EngineError('ERR_INVALID_REQUEST', `role ${showValue(name)} could not be found`);
    const token = f.get<string>('jwt').trim();
    if (token === '') throw new EngineError('ERR_MISSING_FIELD', 'missing token: the "jwt" field is empty', { field: 'jwt' });
    if (role.token_bound_cidrs.length > 0 && !addressAllowed(role.token_bound_cidrs, req.remoteAddr)) {
      throw new EngineError('ERR_PERMISSION_DENIED', 'permission denied');
    }

    const keys = await this.keys(req.storage);
    let claims: Record<string, unknown>;
    try {
      claims = await validateJwt(token, keys.source, {
        issuer: config.bound_issuer !== '' ? config.bound_issuer : keys.discoveredIssuer,
        subject: role.bound_subject,
        audiences: role.bound_audiences,
        algorithms: config.jwt_supported_algs.length > 0 ? config.jwt_supported_algs : SUPPORTED_ALGS,
        notBeforeLeewayS: role.not_before_leeway,
        expirationLeewayS: role.expiration_leeway,
        clockSkewLeewayS: role.clock_skew_leeway,
        nowMs: this.clock(),
      });
    } catch (err) {
      if (err instanceof JwtValidationError) throw new EngineError('ERR_INVALID_REQUEST', `error validating token: ${err.message}`);
      throw err;
    }
    if (role.bound_audiences.length === 0 && audiences(claims.aud).length > 0) {
      throw new EngineError('ERR_INVALID_REQUEST', 'audience claim found in JWT but no audiences bound to the role');
    }

    const userValue = role.user_claim_json_pointer || role.user_claim.startsWith('/') ? claimAt(claims, role.user_claim) : claims[role.user_claim];
    if (userValue === undefined || userValue === null) {
      throw new EngineError('ERR_INVALID_REQUEST', `claim ${showValue(role.user_claim)} not found in token`);
    }
    if (typeof userValue !== 'string' || userValue === '') {
      throw new EngineError('ERR_INVALID_REQUEST', `claim ${showValue(role.user_claim)} could not be converted to string`);
    }
    const metadata: Record<string, string> = {};
    for (const [claim, key] of Object.entries(role.claim_mappings ?? {})) {
      const v = claimAt(claims, claim);
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string') throw new EngineError('ERR_INVALID_REQUEST', `error converting claim ${showValue(claim)} to string`);
      metadata[key] = v;
    }
    metadata.role = name;
    if (role.groups_claim !== '') {
      const groups = claimAt(claims, role.groups_claim);
      if (groups === undefined || groups === null) {
        throw new EngineError('ERR_INVALID_REQUEST', `failed to fetch groups: ${showValue(role.groups_claim)} claim not found in token`);
      }
      const list = Array.isArray(groups) ? groups : [groups];
      if (!list.every((g) => typeof g === 'string')) {
        throw new EngineError('ERR_INVALID_REQUEST', `${showValue(role.groups_claim)} claim could not be converted to string list`);
      }
    }
    const problem = boundClaimsProblem(role, claims);
    if (problem) throw new EngineError('ERR_INVALID_REQUEST', `error validating claims: ${problem}`);

    return {
      auth: {
        ...tokenAuth(role),
        metadata,
        displayName: userValue,
        alias: { name: userValue, metadata: { ...metadata, ...role.alias_metadata } },
        subjectName: userValue,
      },
    };
  }
}

// ---------------------------------------------------------------------------
// Helpers

function roleName(f: FieldData): string {
  return f.get<string>('name').toLowerCase();
}

/** Vault's signed duration seconds: an integer (-1 disables) or a duration string. */
function signedSeconds(field: string, raw: string): number {
  const text = raw.trim();
  if (text === '') return 0;
  if (/^-?\d+$/.test(text)) {
    const n = Number(text);
    if (n < -1) throw invalidField(field, `${text} is not a number of seconds (or -1 to disable)`);
    return n;
  }
  const m = /^(\d+)(s|m|h)$/.exec(text);
  if (!m) throw invalidField(field, `${showValue(raw)} is not a number of seconds (or -1 to disable)`);
  return Number(m[1]) * (m[2] === 's' ? 1 : m[2] === 'm' ? 60 : 3600);
}

function checkBoundClaims(claims: Record<string, unknown>, type: 'string' | 'glob'): Record<string, unknown> {
  for (const [name, value] of Object.entries(claims)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      const ok = type === 'glob' ? typeof v === 'string' : ['string', 'boolean', 'number'].includes(typeof v);
      if (!ok) {
        throw invalidField(
          `bound_claims.${name}`,
          `${showValue(v)} is not ${type === 'glob' ? 'a string (glob)' : 'a string, boolean, number'} or a list of them`,
        );
      }
    }
  }
  return claims;
}

/** A claim by name, or by JSON pointer (`/a/b`, RFC 6901) when the name starts with `/`. */
function claimAt(claims: Record<string, unknown>, name: string): unknown {
  if (!name.startsWith('/')) return claims[name];
  let cur: unknown = claims;
  for (const raw of name.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = Array.isArray(cur) ? cur[Number(key)] : (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(value);
}

function sameValue(expected: unknown, actual: unknown): boolean {
  if (typeof expected === typeof actual) return expected === actual;
  // Bound claims written through Terraform are strings: let them match a numeric or boolean claim.
  if (typeof expected === 'string' && (typeof actual === 'number' || typeof actual === 'boolean')) return expected === String(actual);
  return false;
}

/** The first unmet bound claim, described; null when all are met. */
function boundClaimsProblem(role: JwtRoleEntry, claims: Record<string, unknown>): string | null {
  for (const [name, bound] of Object.entries(role.bound_claims ?? {})) {
    const actual = claimAt(claims, name);
    if (actual === undefined || actual === null) return `claim ${showValue(name)} is missing`;
    const actualValues = Array.isArray(actual) ? actual : [actual];
    if (!actualValues.every((v) => ['string', 'boolean', 'number'].includes(typeof v))) {
      return `claim ${showValue(name)} is not a string, bool, number or list of them`;
    }
    const expected = Array.isArray(bound) ? bound : [bound];
    const found = expected.some((e) =>
      actualValues.some((a) =>
        role.bound_claims_type === 'glob' ? typeof a === 'string' && globMatch(String(e), a) : sameValue(e, a),
      ),
    );
    if (!found) return `claim ${showValue(name)} does not match any associated bound claim values`;
  }
  return null;
}

function roleData(role: JwtRoleEntry): Record<string, unknown> {
  return {
    role_type: role.role_type,
    expiration_leeway: role.expiration_leeway,
    not_before_leeway: role.not_before_leeway,
    clock_skew_leeway: role.clock_skew_leeway,
    bound_audiences: [...role.bound_audiences],
    bound_subject: role.bound_subject,
    bound_claims_type: role.bound_claims_type,
    bound_claims: role.bound_claims,
    claim_mappings: role.claim_mappings,
    user_claim: role.user_claim,
    user_claim_json_pointer: role.user_claim_json_pointer,
    groups_claim: role.groups_claim,
    // null when none are set, as Vault answers an unset list.
    allowed_redirect_uris: role.allowed_redirect_uris.length > 0 ? [...role.allowed_redirect_uris] : null,
    oidc_scopes: role.oidc_scopes.length > 0 ? [...role.oidc_scopes] : null,
    verbose_oidc_logging: role.verbose_oidc_logging,
    max_age: role.max_age,
    ...tokenFieldsData(role),
  };
}

/** Builds (and checks) the key source a config names. Throws a 400 naming the problem. */
async function buildKeys(config: JwtConfig): Promise<CachedKeys> {
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
