// Checking a tvm token: offline verification the way a resource server does it
// (published JWKS, time claims, revocation list), and online introspection.

import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose';
import type { VaultConnection } from './connection.ts';
import { UnexpectedResponseError, VaultRequestError } from './errors.ts';
import { fetchJwks } from './keys.ts';

export const TOKEN_TYP = 'at+jwt';
const SUPPORTED_ALGS = ['ES256', 'EdDSA', 'RS256'];
/** Claims RFC 9068 requires of an access token. */
const REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'];

export interface RevocationList {
  version: number;
  revoked: Array<{ jti: string; exp: number }>;
}

export interface VerifyResult {
  valid: boolean;
  /** Why the token is not valid; absent when it is. */
  reason?: string;
  /** The protected header, when the token could be decoded. */
  header: ProtectedHeaderParameters | null;
  /** The claims, when the token could be decoded (even if the token is not valid). */
  claims: JWTPayload | null;
}

export interface VerifyOptions {
  /** "Now" for the time checks; defaults to the system clock. */
  now?: Date;
  /** Allowed clock skew for exp, nbf and iat, in seconds. */
  clockToleranceS?: number;
}

export const DEFAULT_CLOCK_TOLERANCE_S = 30;

export async function fetchRevocations(conn: VaultConnection): Promise<RevocationList> {
  const path = `${conn.mount}/revocations`;
  const d = (await conn.read(path))?.data;
  if (!d || !Array.isArray(d.revoked)) throw new UnexpectedResponseError(`GET ${path} answered without a revocation list`);
  const revoked = d.revoked.filter(
    (e): e is { jti: string; exp: number } => e !== null && typeof e === 'object' && typeof (e as { jti?: unknown }).jti === 'string',
  );
  return { version: typeof d.version === 'number' ? d.version : 0, revoked };
}

/** The issuer named by the mount's OIDC discovery document, or null if it publishes none. */
async function fetchIssuer(conn: VaultConnection): Promise<string | null> {
  let doc: unknown;
  try {
    doc = await conn.readRaw(`${conn.mount}/.well-known/openid-configuration`);
  } catch (err) {
    if (err instanceof VaultRequestError && err.status === 404) return null;
    throw err;
  }
  if (doc && typeof doc === 'object') {
    const d = doc as { issuer?: unknown; data?: { issuer?: unknown } };
    if (typeof d.issuer === 'string') return d.issuer;
    if (d.data && typeof d.data.issuer === 'string') return d.data.issuer;
  }
  return null;
}

function iso(seconds: unknown): string {
  return typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : String(seconds);
}

/** A one-line reason for a jose verification failure (never the token itself). */
export function reasonFor(err: unknown, header: ProtectedHeaderParameters | null, claims: JWTPayload | null): string {
  if (err instanceof joseErrors.JWTExpired) {
    return err.claim === 'exp' ? `expired at ${iso(claims?.exp)}` : `${err.claim}: ${err.reason}`;
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return `not valid before ${iso(claims?.nbf)}`;
    if (err.claim === 'typ') return `header typ is ${JSON.stringify(header?.typ ?? null)}, expected "${TOKEN_TYP}"`;
    if (err.claim === 'iss') return `issuer ${JSON.stringify(claims?.iss ?? null)} is not this mount's`;
    if (err.reason === 'missing') return `missing claim ${err.claim}`;
    return `claim ${err.claim}: ${err.message}`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return `no published key matches kid ${JSON.stringify(header?.kid ?? null)} (alg ${header?.alg ?? 'none'})`;
  }
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return 'more than one published key matches the token';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return `algorithm ${JSON.stringify(header?.alg ?? null)} is not allowed`;
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return `malformed token: ${err.message}`;
  if (err instanceof joseErrors.JOSEError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Verifies a tvm token as a resource server would: signature against the
 * mount's published JWKS, `typ: at+jwt`, the issuer, exp/nbf/iat with a small
 * clock tolerance, and the jti against the revocation list.
 */
export async function verifyToken(conn: VaultConnection, token: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const now = options.now ?? new Date();
  const tolerance = options.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S;
  const compact = token.trim();

  let header: ProtectedHeaderParameters | null = null;
  let claims: JWTPayload | null = null;
  try {
    header = decodeProtectedHeader(compact);
    claims = decodeJwt(compact);
  } catch {
    return { valid: false, reason: 'malformed token: not a JWS compact JWT', header, claims };
  }

  const [jwks, revocations, issuer] = await Promise.all([fetchJwks(conn), fetchRevocations(conn), fetchIssuer(conn)]);
  const algorithms = [...new Set(jwks.keys.map((k) => k.alg).filter((a): a is string => typeof a === 'string'))];

  try {
    const verified = await jwtVerify(compact, createLocalJWKSet(jwks), {
      typ: TOKEN_TYP,
      algorithms: algorithms.length > 0 ? algorithms : SUPPORTED_ALGS,
      currentDate: now,
      clockTolerance: tolerance,
      requiredClaims: REQUIRED_CLAIMS,
      ...(issuer ? { issuer } : {}),
    });
    header = verified.protectedHeader;
    claims = verified.payload;
  } catch (err) {
    return { valid: false, reason: reasonFor(err, header, claims), header, claims };
  }

  const nowS = Math.floor(now.getTime() / 1000);
  if (typeof claims.iat === 'number' && claims.iat > nowS + tolerance) {
    return { valid: false, reason: `issued in the future (iat ${iso(claims.iat)})`, header, claims };
  }
  if (typeof claims.iat === 'number' && typeof claims.exp === 'number' && claims.iat > claims.exp) {
    return { valid: false, reason: 'iat is after exp', header, claims };
  }
  if (revocations.revoked.some((e) => e.jti === claims?.jti)) {
    return { valid: false, reason: 'revoked', header, claims };
  }
  return { valid: true, header, claims };
}

/** RFC 7662 introspection answer; `{active: false}` for revoked, expired, foreign or malformed tokens. */
export interface Introspection {
  active: boolean;
  scope?: string;
  client_id?: string;
  sub?: string;
  aud?: string | string[];
  iss?: string;
  exp?: number;
  iat?: number;
  nbf?: number;
  jti?: string;
  token_type?: string;
  [field: string]: unknown;
}

/** Asks the mount whether a token is live (`<mount>/introspect`). */
export async function introspectToken(conn: VaultConnection, token: string): Promise<Introspection> {
  const path = `${conn.mount}/introspect`;
  const d = (await conn.write(path, { token: token.trim() }))?.data;
  if (!d || typeof d.active !== 'boolean') throw new UnexpectedResponseError(`POST ${path} answered without "active"`);
  return { ...d, active: d.active };
}
