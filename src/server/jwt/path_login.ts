// login: a workload logs in with a signed JWT (a Kubernetes service-account
// token, a CI system's OIDC token) and a role. The token is verified against
// the config's keys and the role's bindings; the answer is a login (Vault's
// logical.Auth): the server makes the identity and the token from it. The
// alias, and the workload's subject, is the value of the role's user claim.

import { EngineError, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { addressAllowed } from '../auth/cidr.ts';
import { loginRoute } from '../auth/method.ts';
import { tokenAuth } from '../auth/token_params.ts';
import { boundClaimsProblem, claimAt } from './claims.ts';
import { mustConfig } from './config.ts';
import type { JwtContext } from './context.ts';
import { readRole, type JwtRoleEntry } from './roles.ts';
import { audiences, JwtValidationError, SUPPORTED_ALGS, validateJwt } from './verify.ts';

// ---------------------------------------------------------------------------
// Routes

export function loginRoutes(ctx: JwtContext): Route[] {
  const fields: Fields = {
    role: { type: 'string', description: "The role to log in with (default: the config's default_role)." },
    jwt: { type: 'string', secret: true, description: 'The signed JWT.' },
    distributed_claim_access_token: { type: 'string', secret: true, description: 'Not supported (Azure only).' },
  };
  return [loginRoute(fields, (req, f) => login(ctx, req, f), LOGIN_HELP)];
}

// ---------------------------------------------------------------------------
// Handlers

/** Vault's JWT login: the role, the token's signature and claims, the role's bindings, then the login. */
async function login(ctx: JwtContext, req: LogicalRequest, f: FieldData): Promise<LogicalResponse> {
  const config = await mustConfig(req.storage);
  const name = (f.get<string>('role').trim() || config.default_role).toLowerCase();
  if (name === '') throw new EngineError('ERR_MISSING_FIELD', 'missing role', { field: 'role' });
  const role = await readRole(req.storage, name);
  if (!role) throw new EngineError('ERR_INVALID_REQUEST', `role ${showValue(name)} could not be found`);
  const token = f.get<string>('jwt').trim();
  if (token === '') throw new EngineError('ERR_MISSING_FIELD', 'missing token: the "jwt" field is empty', { field: 'jwt' });
  if (role.token_bound_cidrs.length > 0 && !addressAllowed(role.token_bound_cidrs, req.caller.remoteAddr)) {
    throw new EngineError('ERR_PERMISSION_DENIED', 'permission denied');
  }

  const keys = await ctx.keys.keys(req.storage);
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
      nowMs: ctx.clock(),
    });
  } catch (err) {
    if (err instanceof JwtValidationError) throw new EngineError('ERR_INVALID_REQUEST', `error validating token: ${err.message}`);
    throw err;
  }
  if (role.bound_audiences.length === 0 && audiences(claims.aud).length > 0) {
    throw new EngineError('ERR_INVALID_REQUEST', 'audience claim found in JWT but no audiences bound to the role');
  }

  const user = userOf(role, claims);
  const metadata = mappedMetadata(role, claims);
  metadata.role = name;
  checkGroups(role, claims);
  const problem = boundClaimsProblem(role, claims);
  if (problem) throw new EngineError('ERR_INVALID_REQUEST', `error validating claims: ${problem}`);

  return {
    login: {
      ...tokenAuth(role),
      metadata,
      displayName: user,
      alias: { name: user, metadata: { ...metadata, ...role.alias_metadata } },
      subjectName: user,
    },
  };
}

// ---------------------------------------------------------------------------
// Helpers

/** The value of the role's user claim: the workload's name. */
function userOf(role: JwtRoleEntry, claims: Record<string, unknown>): string {
  const value = role.user_claim_json_pointer || role.user_claim.startsWith('/') ? claimAt(claims, role.user_claim) : claims[role.user_claim];
  if (value === undefined || value === null) {
    throw new EngineError('ERR_INVALID_REQUEST', `claim ${showValue(role.user_claim)} not found in token`);
  }
  if (typeof value !== 'string' || value === '') {
    throw new EngineError('ERR_INVALID_REQUEST', `claim ${showValue(role.user_claim)} could not be converted to string`);
  }
  return value;
}

/** The token metadata the role's claim mappings give (claims absent from the token are skipped). */
function mappedMetadata(role: JwtRoleEntry, claims: Record<string, unknown>): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [claim, key] of Object.entries(role.claim_mappings ?? {})) {
    const v = claimAt(claims, claim);
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw new EngineError('ERR_INVALID_REQUEST', `error converting claim ${showValue(claim)} to string`);
    metadata[key] = v;
  }
  return metadata;
}

/** A role with a groups claim needs it in the token, as a string or a list of strings. */
function checkGroups(role: JwtRoleEntry, claims: Record<string, unknown>): void {
  if (role.groups_claim === '') return;
  const groups = claimAt(claims, role.groups_claim);
  if (groups === undefined || groups === null) {
    throw new EngineError('ERR_INVALID_REQUEST', `failed to fetch groups: ${showValue(role.groups_claim)} claim not found in token`);
  }
  const list = Array.isArray(groups) ? groups : [groups];
  if (!list.every((g) => typeof g === 'string')) {
    throw new EngineError('ERR_INVALID_REQUEST', `${showValue(role.groups_claim)} claim could not be converted to string list`);
  }
}

// ---------------------------------------------------------------------------
// Help

const LOGIN_HELP = {
  synopsis: 'Logs in with a signed JWT; the answer carries a token.',
  description: `
The JWT is verified with the config's keys (signature, allowed algorithm,
issuer) and the role's bindings (audience, subject, bound claims, time claims
within the leeways). The role's user claim names the workload; its claim
mappings become token metadata. role defaults to the config's default_role.`,
};
