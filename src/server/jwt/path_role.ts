// role/<name>: a JWT role, what a login's token must show (audiences,
// subject, bound claims, within leeways), which claim names the workload,
// which claims become token metadata, and the token settings of its logins;
// and the list of roles.

import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { ROLE_NAME, ROLE_PREFIX, roleListRoute } from '../auth/method.ts';
import { putJson } from '../auth/storage.ts';
import { maxTtlWarnings, parseTokenFields, TOKEN_FIELDS, tokenFieldsData } from '../auth/token_params.ts';
import type { JwtContext } from './context.ts';
import { newRole, readRole, roleName, type JwtRoleEntry } from './roles.ts';

// ---------------------------------------------------------------------------
// Constants

/** The JWT method's words for a role whose token_max_ttl the mount will cap. */
const MAX_TTL_WARNING = "token max ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated";
/** Metadata keys a claim may not be mapped to. */
const RESERVED_METADATA = ['role'];

const ROLE_FIELDS: Fields = {
  name: { type: 'string', description: 'Name of the role (compared without case).' },
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

// ---------------------------------------------------------------------------
// Routes

export function roleRoutes(ctx: JwtContext): Route[] {
  return [
    roleListRoute('JWT'),
    {
      pattern: `role/(?<name>${ROLE_NAME})`,
      fields: ROLE_FIELDS,
      operations: {
        read: (req, f) => readRoleEntry(req, f),
        create: (req, f) => writeRole(ctx, req, f, true),
        update: (req, f) => writeRole(ctx, req, f, false),
        delete: (req, f) => deleteRole(req, f),
      },
      existenceCheck: async (req, f) => (await readRole(req.storage, roleName(f))) !== null,
      caseInsensitive: ['name'],
      synopsis: ROLE_HELP.synopsis,
      description: ROLE_HELP.description,
    },
  ];
}

// ---------------------------------------------------------------------------
// Handlers

async function readRoleEntry(req: LogicalRequest, f: FieldData): Promise<LogicalResponse | null> {
  const role = await readRole(req.storage, roleName(f));
  return role ? { data: roleData(role) } : null;
}

async function deleteRole(req: LogicalRequest, f: FieldData): Promise<LogicalResponse | null> {
  await req.storage.delete(ROLE_PREFIX + roleName(f));
  return null;
}

/** Creates a role, or changes the fields a write gives; the result must name a user claim and bind something. */
function writeRole(ctx: JwtContext, req: LogicalRequest, f: FieldData, create: boolean): Promise<LogicalResponse | null> {
  const name = roleName(f);
  return ctx.locks.run(`role:${name}`, async () => {
    const existing = await readRole(req.storage, name);
    if (!existing && !create) throw new EngineError('ERR_INVALID_REQUEST', `role ${showValue(name)} does not exist`);
    const role: JwtRoleEntry = existing ? { ...existing } : newRole(name);

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
    for (const leeway of ['expiration_leeway', 'not_before_leeway', 'clock_skew_leeway'] as const) {
      if (f.has(leeway)) role[leeway] = signedSeconds(leeway, f.get<string>(leeway));
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

    if (f.has('claim_mappings')) role.claim_mappings = checkClaimMappings(f.get<Record<string, string>>('claim_mappings'));

    if (role.user_claim === '') throw invalidField('user_claim', 'a user claim must be defined on the role (for example "sub")');
    if (
      role.bound_audiences.length === 0 &&
      role.token_bound_cidrs.length === 0 &&
      role.bound_subject === '' &&
      Object.keys(role.bound_claims ?? {}).length === 0
    ) {
      throw new EngineError('ERR_INVALID_REQUEST', 'must have at least one bound constraint when creating/updating a role');
    }
    await putJson(req.storage, ROLE_PREFIX + name, role);
    const warnings = await maxTtlWarnings(role, req, MAX_TTL_WARNING);
    return warnings ? { warnings } : null;
  });
}

// ---------------------------------------------------------------------------
// Helpers

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

/** Claim mappings with distinct targets, none of them reserved. */
function checkClaimMappings(mappings: Record<string, string>): Record<string, string> {
  const targets = new Set<string>();
  for (const target of Object.values(mappings)) {
    if (RESERVED_METADATA.includes(target)) {
      throw invalidField('claim_mappings', `metadata key ${showValue(target)} is reserved and may not be a mapping destination`);
    }
    if (targets.has(target)) throw invalidField('claim_mappings', `multiple keys are mapped to metadata key ${showValue(target)}`);
    targets.add(target);
  }
  return mappings;
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

// ---------------------------------------------------------------------------
// Help

const ROLE_HELP = {
  synopsis: 'Defines a role: what a login JWT must show, and the token a login with it gets.',
  description: `
A role binds what a token must show: bound_audiences (its "aud" must include
one), bound_subject, bound_claims (exact values, or globs with
bound_claims_type "glob"), within the leeways on its time claims. user_claim
names the claim that identifies the workload (alias and subject);
claim_mappings copy claims into token metadata. The token settings
(token_policies, token_ttl, ...) are those of the role's logins. role_type
must be "jwt". Role names are compared without case.`,
};
