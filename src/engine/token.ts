// Minting and checking tvm tokens: JWS compact, RFC 9068 access-token profile.

import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { EngineContext } from './context.ts';
import type { EffectiveConfig, SigningAlgorithm } from './config.ts';
import type { Storage } from '../sdk/logical.ts';
import { statusUri, type StatusRef } from './status.ts';
import { scopeOf } from './patterns.ts';

export const TOKEN_TYP = 'at+jwt';

/** What a token says, apart from its time claims. */
export interface Grant {
  jti: string;
  sub: string;
  role: string;
  aud: string[];
  read: string[];
  write: string[];
  bound_cidrs: string[];
  extra_claims: Record<string, string>;
  /** The token's place in a status list (absent only for leases issued before status lists). */
  status?: StatusRef;
  /** The thumbprint of the key the token is bound to (cnf.jkt, RFC 9449). */
  cnf_jkt?: string;
  allowed_hours?: string[];
  time_zone?: string;
}

export function tokenTypeOf(read: string[], write: string[]): 'readwrite' | 'read' | 'write' {
  if (read.length > 0 && write.length > 0) return 'readwrite';
  return read.length > 0 ? 'read' : 'write';
}

/** The last few times formatted (a creds answer formats iat, exp and max exp: the same few values for a whole second). */
const formatted = new Map<number, string>();

export function rfc3339(seconds: number): string {
  let out = formatted.get(seconds);
  if (out === undefined) {
    const iso = new Date(seconds * 1000).toISOString();
    // Whole seconds: `YYYY-MM-DDTHH:MM:SS.000Z` loses its fraction (years past 9999 keep the general rule).
    out = iso.length === 24 ? `${iso.slice(0, 19)}Z` : iso.replace(/\.\d{3}Z$/, 'Z');
    if (formatted.size >= 64) formatted.clear();
    formatted.set(seconds, out);
  }
  return out;
}

/**
 * The encoded protected header of each signing key (alg, kid, typ), made once:
 * every token of a key carries the same one.
 */
const encodedHeaders = new Map<string, string>();

function encodedHeader(alg: SigningAlgorithm, kid: string): string {
  const id = `${alg}.${kid}`;
  let header = encodedHeaders.get(id);
  if (header === undefined) {
    header = Buffer.from(JSON.stringify({ alg, kid, typ: TOKEN_TYP })).toString('base64url');
    if (encodedHeaders.size > 64) encodedHeaders.clear();
    encodedHeaders.set(id, header);
  }
  return header;
}

/** A JWS signature over `input` (RFC 7518: ECDSA as r||s, RSASSA-PKCS1-v1_5, Ed25519). */
export function jwsSignature(alg: SigningAlgorithm, key: KeyObject, input: string): Buffer {
  switch (alg) {
    case 'ES256':
      return cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    case 'RS256':
      return cryptoSign('sha256', Buffer.from(input), key);
    case 'EdDSA':
      return cryptoSign(null, Buffer.from(input), key);
  }
}

/**
 * Signs a token for the grant, valid from `iatS` to `expS` (seconds). A JWS
 * compact serialisation made with node:crypto on the key ring's KeyObject
 * (one synchronous signature: no WebCrypto job, no thread pool round trip).
 */
export async function signToken(
  ctx: EngineContext,
  storage: Storage,
  config: EffectiveConfig,
  grant: Grant,
  iatS: number,
  expS: number,
): Promise<string> {
  const key = await ctx.keys.signingKey(storage, config);
  const claims: JWTPayload = {
    ...grant.extra_claims,
    client_id: grant.role,
    scope: scopeOf(grant.read, grant.write),
  };
  if (grant.bound_cidrs.length > 0) claims.bound_cidrs = grant.bound_cidrs;
  if (grant.allowed_hours && grant.allowed_hours.length > 0) {
    claims.allowed_hours = grant.allowed_hours;
    claims.time_zone = grant.time_zone ?? 'UTC';
  }
  if (grant.cnf_jkt) claims.cnf = { jkt: grant.cnf_jkt };
  if (grant.status) claims.status = { status_list: { idx: grant.status.idx, uri: statusUri(config.issuer, grant.status.list) } };
  claims.iss = config.issuer;
  claims.sub = grant.sub;
  claims.aud = grant.aud.length === 1 ? grant.aud[0] : grant.aud;
  claims.iat = iatS;
  claims.nbf = iatS;
  claims.exp = expS;
  claims.jti = grant.jti;
  const input = `${encodedHeader(key.alg, key.kid)}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${jwsSignature(key.alg, key.privateKey, input).toString('base64url')}`;
}

export type TokenCheck =
  | { active: true; claims: JWTPayload & { jti: string; exp: number; iat: number } }
  | { active: false; reason: string };

/**
 * Checks a token as a resource server would: a published key of this mount
 * signed it, it is an at+jwt for this issuer, inside its time window, and
 * its jti is not revoked. Never throws for a bad token.
 */
export async function checkToken(
  ctx: EngineContext,
  storage: Storage,
  config: EffectiveConfig,
  token: string,
): Promise<TokenCheck> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return { active: false, reason: 'malformed' };
  }
  if (!kid) return { active: false, reason: 'no kid' };
  const verifier = await ctx.keys.verificationKey(storage, kid);
  if (!verifier) return { active: false, reason: 'unknown key' };
  let payload: JWTPayload;
  try {
    const result = await jwtVerify(token, verifier.key, {
      algorithms: [verifier.alg],
      typ: TOKEN_TYP,
      issuer: config.issuer,
      currentDate: new Date(ctx.clock()),
      requiredClaims: ['jti', 'exp', 'iat', 'sub', 'client_id'],
    });
    payload = result.payload;
  } catch (err) {
    return { active: false, reason: (err as { code?: string }).code ?? 'invalid' };
  }
  if (await ctx.revocations.isRevoked(storage, payload.jti!)) return { active: false, reason: 'revoked' };
  return { active: true, claims: payload as JWTPayload & { jti: string; exp: number; iat: number } };
}
