// creds/<role>: issues a signed readwrite token under a renewable lease, and
// the secret type that renews (re-signs, same jti) and revokes it.

import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, importJWK, type JWK } from 'jose';
import { addressInside } from './cidr.ts';
import { holdsPrivateKey } from './jwk.ts';
import { insideWindows, parseWindows } from './windows.ts';
import { cloudAudience, isCloud } from '../iam/mapping.ts';
import { CLOUDS } from '../iam/types.ts';
import type { EngineContext } from './context.ts';
import { EngineError, invalidField, showValue } from '../sdk/errors.ts';
import type { FieldData } from '../sdk/fields.ts';
import type { Route, SecretType } from '../sdk/route.ts';
import { type EffectiveConfig } from './config.ts';
import { effectiveConfig } from './path_config.ts';
import { ROLE_NAME, roleNotFound, type RoleEntry } from './roles.ts';
import { patternCovers, patternProblem, scopeOf } from './patterns.ts';
import { rfc3339, signToken, tokenTypeOf, type Grant } from './token.ts';
import { deleteKey, getJson, putJson } from '../sdk/storage.ts';
import type { Caller, LogicalRequest, LogicalResponse, MountLimits } from '../sdk/logical.ts';

export const SECRET_TYPE = 'tvm_token';
/** Where a renewal keeps the token it signed, for its holder to fetch: `renewed/<role>/<jti>`. */
export const RENEWED_PREFIX = 'renewed/';

/** What a renewal signed (the creds answer, token included), kept until the lease is revoked. */
type RenewedToken = Record<string, unknown>;

/** What a lease keeps for its renew and revoke: the grant and its time bounds. */
export interface CredsInternalData extends Grant {
  issued_at_ms: number;
  max_exp_ms: number;
  exp_ms: number;
}

/**
 * A role's effective ttl and max ttl (ms) under the engine's config and the
 * server's limits for the mount (a tuned max_lease_ttl caps the lease, so the
 * token it carries must not outlive it).
 */
export function roleTtls(
  role: RoleEntry,
  config: EffectiveConfig,
  limits?: MountLimits,
): { ttlMs: number; maxTtlMs: number; cappedBy: "the role's max_ttl" | "the mount's max_lease_ttl" } {
  let maxTtlS = Math.min(role.max_ttl || config.max_ttl, config.max_ttl);
  let cappedBy: "the role's max_ttl" | "the mount's max_lease_ttl" = "the role's max_ttl";
  if (limits && limits.maxTtlMs > 0 && Math.floor(limits.maxTtlMs / 1000) < maxTtlS) {
    maxTtlS = Math.floor(limits.maxTtlMs / 1000);
    cappedBy = "the mount's max_lease_ttl";
  }
  const ttlS = Math.min(role.ttl || config.default_ttl, maxTtlS);
  return { ttlMs: ttlS * 1000, maxTtlMs: maxTtlS * 1000, cappedBy };
}

function narrow(field: 'read' | 'write', requested: string[], allowed: string[]): string[] {
  requested.forEach((p, i) => {
    const problem = patternProblem(p);
    if (problem) throw invalidField(`${field}[${i}]`, `${showValue(p)}: ${problem}`);
    if (!allowed.some((a) => patternCovers(a, p))) {
      throw new EngineError(
        'ERR_SCOPE_NOT_COVERED',
        `invalid ${field}[${i}]: ${showValue(p)} is not covered by the role's ${field} patterns (${allowed.length ? allowed.join(', ') : 'none'}); a request may only narrow the role`,
        { field },
      );
    }
  });
  return [...new Set(requested)];
}

function subjectOf(caller: Caller): string {
  return caller.entityId || caller.displayName || 'anonymous';
}

/**
 * Who holds a lease: the caller's identity entity, else its token (by
 * accessor). '' when the caller names neither: such a lease has no holder and
 * its renewed tokens can be fetched by nobody.
 */
export function holderOf(caller: Caller): string {
  if (caller.entityId) return `entity:${caller.entityId}`;
  if (caller.tokenAccessor) return `accessor:${caller.tokenAccessor}`;
  return '';
}

function credsData(grant: Grant, token: string, iatS: number, expS: number, maxExpMs: number): Record<string, unknown> {
  return {
    token,
    token_type: tokenTypeOf(grant.read, grant.write),
    jti: grant.jti,
    scope: scopeOf(grant.read, grant.write),
    read: grant.read,
    write: grant.write,
    audiences: grant.aud,
    issued_at: rfc3339(iatS),
    expires_at: rfc3339(expS),
    max_expires_at: rfc3339(Math.floor(maxExpMs / 1000)),
    role: grant.role,
    ...(grant.cnf_jkt ? { cnf_jkt: grant.cnf_jkt } : {}),
  };
}

const BINDABLE = new Map<string, string>([['EC:P-256', 'ES256'], ['EC:P-384', 'ES384'], ['OKP:Ed25519', 'EdDSA'], ['RSA:', 'RS256']]);

/**
 * \`dpop_jwk\`: the public key the token is bound to, as its RFC 7638
 * thumbprint (cnf.jkt). Required when the role's binding is dpop; allowed on
 * any role (a workload may bind itself). No proof of possession is asked
 * here: a token bound to a key its requester does not hold is useless to
 * everyone, and every use proves possession to the resource server.
 */
async function bindingOf(fields: FieldData, role: RoleEntry): Promise<string | null> {
  if (!fields.has('dpop_jwk')) {
    if ((role.binding ?? 'none') === 'dpop') {
      throw invalidField('dpop_jwk', "the role's binding is dpop: name the public key the token is bound to (a JWK)");
    }
    return null;
  }
  let jwk: unknown = fields.get<unknown>('dpop_jwk');
  if (typeof jwk === 'string') {
    try {
      jwk = JSON.parse(jwk);
    } catch {
      throw invalidField('dpop_jwk', 'is not a JWK (JSON object)');
    }
  }
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw invalidField('dpop_jwk', 'is not a JWK (JSON object)');
  const key = jwk as Record<string, unknown>;
  if (holdsPrivateKey(key)) {
    throw invalidField('dpop_jwk', 'holds private or symmetric key material; send the public key only');
  }
  const kty = typeof key.kty === 'string' ? key.kty : '';
  const alg = BINDABLE.get(`${kty}:${kty === 'RSA' ? '' : String(key.crv ?? '')}`);
  if (!alg) throw invalidField('dpop_jwk', 'must be an EC P-256 or P-384, Ed25519 or RSA public key');
  try {
    await importJWK(key as JWK, alg);
    return await calculateJwkThumbprint(key as JWK, 'sha256');
  } catch {
    throw invalidField('dpop_jwk', `is not a valid ${kty} public key`);
  }
}

/** `cloud`: the role's target for that cloud, and the audience the cloud needs (null: the role's). */
function cloudOf(fields: FieldData, role: RoleEntry, name: string): { cloud: string; target: Record<string, unknown>; audience: string | null } | null {
  if (!fields.has('cloud')) return null;
  const cloud = fields.get<string>('cloud');
  if (!isCloud(cloud)) throw invalidField('cloud', `${showValue(cloud)} is not one of ${CLOUDS.join(', ')}`);
  const target = role.iam?.[cloud];
  if (target === null || typeof target !== 'object') {
    throw invalidField('cloud', `role ${showValue(name)} maps no ${cloud} target (its iam has ${Object.keys(role.iam ?? {}).join(', ') || 'none'})`);
  }
  const t = target as Record<string, unknown>;
  return { cloud, target: t, audience: cloudAudience(cloud, t) };
}

/** A jti as the engine issues it (a UUID). */
const JTI = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function credsRoutes(ctx: EngineContext): Route[] {
/** `jti`: the current token of one of the caller's own leases (the one its last renewal signed). */
  const fetchRenewed = async (req: LogicalRequest, fields: FieldData, name: string): Promise<LogicalResponse | null> => {
    for (const other of ['ttl', 'read', 'write', 'audience', 'cloud', 'dpop_jwk']) {
      if (fields.has(other)) throw invalidField(other, 'cannot be combined with jti (a fetch issues nothing)');
    }
    const jti = fields.get<string>('jti');
    if (!JTI.test(jti)) throw invalidField('jti', `${showValue(jti)} is not a token id`);
    const lease = await ctx.leases.get(req.storage, name, jti);
    // Revoked, expired, or never issued from this role: nothing to fetch.
    if (!lease) return null;
    const holder = holderOf(req.caller);
    if (holder === '' || lease.holder !== holder) {
      throw new EngineError('ERR_PERMISSION_DENIED', 'permission denied: the lease of this jti was obtained by another identity');
    }
    const renewed = await getJson<RenewedToken>(req.storage, `${RENEWED_PREFIX}${name}/${jti}`);
    if (!renewed) {
      throw invalidField('jti', 'the lease has not been renewed yet: its token is the one issued with it');
    }
    return { data: renewed };
  };

  const issue = async (req: LogicalRequest, fields: FieldData): Promise<LogicalResponse | null> => {
    const name = fields.get<string>('role');
    if (!ROLE_NAME.test(name)) throw invalidField('role', `${showValue(name)} is not a valid role name`);
    if (fields.has('jti')) return fetchRenewed(req, fields, name);
    const role = await ctx.roles.get(req.storage, name);
    if (!role) throw roleNotFound(name);
    const config = await effectiveConfig(ctx, req);
    const { ttlMs: roleTtlMs, maxTtlMs, cappedBy } = roleTtls(role, config, await req.mountLimits?.());

    let ttlMs = roleTtlMs;
    if (fields.has('ttl')) {
      ttlMs = fields.get<number>('ttl');
      if (ttlMs < 1000) throw invalidField('ttl', `${showValue(ttlMs / 1000)}s is shorter than the 1s minimum`);
      if (ttlMs % 1000 !== 0) throw invalidField('ttl', `${ttlMs}ms is not a whole number of seconds`);
      if (ttlMs > maxTtlMs) {
        throw invalidField('ttl', `${ttlMs / 1000}s is longer than ${cappedBy} ${maxTtlMs / 1000}s`);
      }
    }
    const read = fields.has('read') ? narrow('read', fields.get<string[]>('read'), role.read) : role.read;
    const write = fields.has('write') ? narrow('write', fields.get<string[]>('write'), role.write) : role.write;
    if (read.length === 0 && write.length === 0) {
      throw invalidField('read', 'the request leaves neither a read nor a write scope');
    }
    const cloud = cloudOf(fields, role, name);
    let aud = role.audiences.length > 0 ? role.audiences : [config.issuer];
    if (cloud?.audience) {
      // The cloud verifies the token: it carries exactly the audience that cloud expects.
      const wanted = fields.has('audience') ? fields.get<string[]>('audience') : [];
      if (wanted.length > 0 && (wanted.length !== 1 || wanted[0] !== cloud.audience)) {
        throw invalidField('audience', `a token for ${cloud.cloud} carries exactly the audience ${showValue(cloud.audience)}`);
      }
      aud = [cloud.audience];
    } else if (fields.has('audience')) {
      const wanted = fields.get<string[]>('audience');
      wanted.forEach((a, i) => {
        if (!aud.includes(a)) {
          throw new EngineError(
            'ERR_SCOPE_NOT_COVERED',
            `invalid audience[${i}]: ${showValue(a)} is not one of the role's audiences (${aud.join(', ')})`,
            { field: 'audience' },
          );
        }
      });
      if (wanted.length > 0) aud = [...new Set(wanted)];
    }
    if (role.bound_cidrs.length > 0 && !addressInside(role.bound_cidrs, req.caller.remoteAddr)) {
      throw new EngineError(
        'ERR_CIDR_DENIED',
        `permission denied: caller address ${showValue(req.caller.remoteAddr ?? 'unknown')} is outside the role's bound_cidrs`,
      );
    }

    const nowMs = ctx.clock();
    const hours = role.allowed_hours ?? [];
    const zone = role.time_zone ?? 'UTC';
    if (hours.length > 0 && !insideWindows(parseWindows(hours), zone, nowMs)) {
      throw new EngineError('ERR_OUTSIDE_WINDOW', `permission denied: role ${showValue(name)} issues only within its allowed_hours (${hours.join(', ')}, ${zone})`);
    }
    const cnfJkt = await bindingOf(fields, role);
    const iatS = Math.floor(nowMs / 1000);
    const expS = iatS + ttlMs / 1000;
    const grant: Grant = {
      // A UUID: 122 random bits, and never a leading "-" that a CLI would read as an option.
      jti: randomUUID(),
      sub: subjectOf(req.caller),
      role: name,
      aud,
      read,
      write,
      bound_cidrs: role.bound_cidrs,
      extra_claims: role.extra_claims,
      status: await ctx.status.allocate(req.storage),
      ...(cnfJkt ? { cnf_jkt: cnfJkt } : {}),
      ...(hours.length > 0 ? { allowed_hours: hours, time_zone: zone } : {}),
    };
    const internal: CredsInternalData = {
      ...grant,
      issued_at_ms: iatS * 1000,
      max_exp_ms: iatS * 1000 + maxTtlMs,
      exp_ms: expS * 1000,
    };
    const reserve = async () => {
      if (role.max_active_leases > 0) {
        const live = await ctx.leases.countLive(req.storage, name, nowMs);
        if (live >= role.max_active_leases) {
          throw new EngineError(
            'ERR_TOO_MANY_LEASES',
            `role ${showValue(name)} has ${live} active leases, its max_active_leases is ${role.max_active_leases}`,
          );
        }
      }
      const holder = holderOf(req.caller);
      await ctx.leases.put(req.storage, name, grant.jti, {
        exp_ms: internal.exp_ms,
        max_exp_ms: internal.max_exp_ms,
        ...(holder ? { holder } : {}),
        ...(grant.status ? { status: grant.status } : {}),
      });
    };
    if (role.max_active_leases > 0) await ctx.leases.mutex.run(name, reserve);
    else await reserve();

    let token: string;
    try {
      token = await signToken(ctx, req.storage, config, grant, iatS, expS);
    } catch (err) {
      await ctx.leases.remove(req.storage, name, grant.jti).catch(() => undefined);
      throw new EngineError('ERR_INTERNAL', 'signing the token failed', { cause: err });
    }
    return {
      data: {
        ...credsData(grant, token, iatS, expS, internal.max_exp_ms),
        ...(cloud ? { iam: { [cloud.cloud]: cloud.target } } : {}),
      },
      secret: {
        type: SECRET_TYPE,
        ttlMs,
        maxTtlMs,
        renewable: true,
        internalData: internal as unknown as Record<string, unknown>,
      },
    };
  };

  return [
    {
      pattern: 'creds/(?<role>[^/]+)',
      fields: {
        role: { type: 'string', description: 'The role to issue from.' },
        ttl: { type: 'duration', description: "Requested ttl; at most the role's max_ttl." },
        read: { type: 'string_list', description: "Narrow the read scope; each pattern must be covered by the role's." },
        write: { type: 'string_list', description: "Narrow the write scope; each pattern must be covered by the role's." },
        audience: { type: 'string_list', description: "A subset of the role's audiences." },
        cloud: {
          type: 'string',
          description: "aws, gcp, azure or kubernetes: the token is for that cloud's exchange (its audience), and the answer carries the role's target for it.",
        },
        dpop_jwk: {
          type: 'object',
          description:
            'The public key (a JWK) the token is bound to (cnf.jkt, RFC 9449): required when the role binding is dpop. Resource servers then accept the token only with a DPoP proof signed by its private key.',
        },
        jti: {
          type: 'string',
          description:
            "Fetch instead of issue: the token the last renewal of the caller's own lease with this jti signed. Only the identity that obtained the lease may fetch it.",
        },
      },
      operations: { read: issue, update: issue },
      synopsis: 'Issues a short-lived signed token for a role, under a renewable lease.',
      description: `
A read issues with the role's defaults. An update may narrow the request:
ttl (at most the role's max_ttl), read and write (each covered by one of the
role's patterns) and audience (a subset of the role's).

Renewing the lease (sys/leases/renew) extends it and signs a fresh token with
the same jti and a later exp, but does not return it: a lease id alone must
never yield a token. The identity that obtained the lease reads it here with
jti=<jti> (same capability as issuing from the role).`,
    },
  ];
}

function internalOf(req: LogicalRequest): CredsInternalData {
  const data = req.secret?.internalData as Partial<CredsInternalData> | undefined;
  if (!data || typeof data.jti !== 'string' || typeof data.role !== 'string' || typeof data.max_exp_ms !== 'number') {
    throw new EngineError('ERR_INVALID_REQUEST', 'the lease carries no tvm token data');
  }
  return data as CredsInternalData;
}

export function credsSecret(ctx: EngineContext): SecretType {
  const renew = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const internal = internalOf(req);
    if (await ctx.revocations.isRevoked(req.storage, internal.jti)) {
      throw new EngineError('ERR_LEASE_REVOKED', `the token ${internal.jti} was revoked; its lease cannot be renewed`);
    }
    const role = await ctx.roles.get(req.storage, internal.role);
    if (!role) throw new EngineError('ERR_ROLE_NOT_FOUND', `role ${showValue(internal.role)} no longer exists; the lease cannot be renewed`);
    const config = await effectiveConfig(ctx, req);
    const nowMs = ctx.clock();
    const iatS = Math.floor(nowMs / 1000);
    const limits = await req.mountLimits?.();
    const wantedMs = req.secret?.incrementMs && req.secret.incrementMs > 0 ? req.secret.incrementMs : roleTtls(role, config, limits).ttlMs;
    let remainingS = Math.floor((internal.max_exp_ms - iatS * 1000) / 1000);
    // A mount tuned down since the issue caps the renewal too, as the server caps the lease.
    if (limits && limits.maxTtlMs > 0) remainingS = Math.min(remainingS, Math.floor((internal.issued_at_ms + limits.maxTtlMs - iatS * 1000) / 1000));
    const ttlS = Math.min(Math.ceil(wantedMs / 1000), remainingS);
    if (ttlS <= 0) throw new EngineError('ERR_LEASE_EXPIRED', 'the lease has reached its max_ttl and cannot be renewed');
    const expS = iatS + ttlS;
    const existing = await ctx.leases.get(req.storage, internal.role, internal.jti);
    const latestExpMs = Math.max(expS * 1000, existing?.exp_ms ?? 0, internal.exp_ms ?? 0);
    // The role as it is now: a role that came to require binding renews no unbound
    // lease, and its current bound CIDRs and hours travel in the renewed token.
    if ((role.binding ?? 'none') === 'dpop' && !internal.cnf_jkt) {
      throw new EngineError('ERR_PERMISSION_DENIED', `permission denied: role ${showValue(internal.role)} now binds its tokens to a DPoP key and this lease's token is not bound; request a new one with dpop_jwk`);
    }
    const hours = role.allowed_hours ?? [];
    const current: CredsInternalData = {
      ...internal,
      bound_cidrs: role.bound_cidrs,
      allowed_hours: hours.length > 0 ? hours : undefined,
      time_zone: hours.length > 0 ? (role.time_zone ?? 'UTC') : undefined,
    };
    // A lease issued before status lists gets its place in one at its first renewal.
    const granted: CredsInternalData = current.status ? current : { ...current, status: await ctx.status.allocate(req.storage) };
    const token = await signToken(ctx, req.storage, config, granted, iatS, expS);
    await ctx.leases.put(req.storage, internal.role, internal.jti, {
      ...existing,
      exp_ms: latestExpMs,
      max_exp_ms: internal.max_exp_ms,
    });
    const renewed: RenewedToken = credsData(granted, token, iatS, expS, internal.max_exp_ms);
    await putJson(req.storage, `${RENEWED_PREFIX}${internal.role}/${internal.jti}`, renewed);
    const next: CredsInternalData = { ...granted, exp_ms: latestExpMs };
    // Who renews is not known here (Vault does not tell a plugin), so the token is not
    // in the answer: its holder fetches it from creds/<role> with jti.
    const { token: _signed, ...data } = renewed;
    return {
      data: { ...data, token_fetch: { path: `${req.mountPoint ?? ''}creds/${internal.role}`, jti: internal.jti } },
      secret: {
        type: SECRET_TYPE,
        ttlMs: ttlS * 1000,
        maxTtlMs: internal.max_exp_ms - internal.issued_at_ms,
        renewable: true,
        internalData: next as unknown as Record<string, unknown>,
        issueTimeMs: req.secret?.issueTimeMs,
      },
    };
  };

  const revoke = async (req: LogicalRequest): Promise<LogicalResponse | null> => {
    const internal = internalOf(req);
    const existing = await ctx.leases.get(req.storage, internal.role, internal.jti);
    // The newest token of the lease decides how long its jti must stay listed.
    const lastValidMs = Math.min(
      Math.max(internal.exp_ms ?? internal.max_exp_ms, existing?.exp_ms ?? 0),
      internal.max_exp_ms,
    );
    if (lastValidMs > ctx.clock()) {
      const entry = await ctx.revocations.add(req.storage, internal.jti, lastValidMs, internal.status);
      if (internal.status) ctx.status.notify({ ...internal.status, version: entry.version });
    }
    await deleteKey(req.storage, `${RENEWED_PREFIX}${internal.role}/${internal.jti}`);
    if (existing) await ctx.leases.remove(req.storage, internal.role, internal.jti);
    return null;
  };

  return { type: SECRET_TYPE, renew, revoke };
}
