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
import { InvalidInputError, UnexpectedResponseError, VaultRequestError } from './errors.ts';
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
  /** The claim whose check failed (`aud`, `iss`, `exp`, ...), when the reason is about one claim. */
  claim?: string;
}

export interface VerifyOptions {
  /** "Now" for the time checks; defaults to the system clock. */
  now?: Date;
  /** Allowed clock skew for exp, nbf and iat, in seconds. */
  clockToleranceS?: number;
  /**
   * The audiences this resource server answers to: the token's `aud` must
   * hold at least one of them (RFC 8725 §3.9, RFC 9068 §4). Default: the
   * expected issuer, which is what tvm puts in `aud` for a role without
   * audiences of its own.
   */
  audiences?: readonly string[];
  /** The expected `iss`. Default: the issuer the mount's discovery document names. */
  issuer?: string;
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

/** A claim value as a reason may show it: JSON, at most 80 characters (the claims come from an untrusted token). */
function shown(value: unknown): string {
  const text = JSON.stringify(value ?? null) ?? 'null';
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** What the claims were checked against, for the reasons that name it. */
export interface Expected {
  /** The issuer given by the caller (absent: the mount's was used). */
  issuer?: string;
  /** The audiences the token had to hold one of. */
  audiences?: readonly string[];
  /** The audiences are the default (the expected issuer), not given by the caller. */
  defaultAudience?: boolean;
}

/** The reason an audience check failed (never the token itself). */
function audienceReason(aud: unknown, expected: Expected): string {
  const wanted = expected.audiences ?? [];
  if (expected.defaultAudience) return `audience ${shown(aud)} does not include the issuer ${shown(wanted[0])}`;
  const names = wanted.length === 1 ? shown(wanted[0]) : `any of ${shown(wanted)}`;
  return `audience ${shown(aud)} does not include ${names}`;
}

/** A one-line reason for a jose verification failure (never the token itself). */
export function reasonFor(
  err: unknown,
  header: ProtectedHeaderParameters | null,
  claims: JWTPayload | null,
  expected: Expected = {},
): string {
  if (err instanceof joseErrors.JWTExpired) {
    return err.claim === 'exp' ? `expired at ${iso(claims?.exp)}` : `${err.claim}: ${err.reason}`;
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return `not valid before ${iso(claims?.nbf)}`;
    if (err.claim === 'typ') return `header typ is ${shown(header?.typ)}, expected "${TOKEN_TYP}"`;
    if (err.reason === 'missing') return `missing claim ${err.claim}`;
    if (err.claim === 'iss') {
      return expected.issuer === undefined
        ? `issuer ${shown(claims?.iss)} is not this mount's`
        : `issuer ${shown(claims?.iss)} is not the expected ${shown(expected.issuer)}`;
    }
    if (err.claim === 'aud') return audienceReason(claims?.aud, expected);
    return `claim ${err.claim}: ${err.message}`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof joseErrors.JWKSNoMatchingKey) {
    return `no published key matches kid ${shown(header?.kid)} (alg ${header?.alg ?? 'none'})`;
  }
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return 'more than one published key matches the token';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return `algorithm ${shown(header?.alg)} is not allowed`;
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return `malformed token: ${err.message}`;
  if (err instanceof joseErrors.JOSEError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/** The claim a jose failure is about, when it is about one. */
function failedClaim(err: unknown): string | undefined {
  if (err instanceof joseErrors.JWTExpired || err instanceof joseErrors.JWTClaimValidationFailed) return err.claim;
  return undefined;
}

/** The caller's expected audiences and issuer, checked before any request. */
function checkExpectations(options: VerifyOptions): void {
  if (options.audiences !== undefined) {
    if (options.audiences.length === 0) throw new InvalidInputError('audiences: give at least one, or leave it out for the issuer');
    options.audiences.forEach((a, i) => {
      if (typeof a !== 'string' || a.trim() === '') throw new InvalidInputError(`audiences[${i}]: an audience must be a non-empty string`);
    });
  }
  if (options.issuer !== undefined && (typeof options.issuer !== 'string' || options.issuer.trim() === '')) {
    throw new InvalidInputError('issuer: must be a non-empty string');
  }
}

/**
 * Verifies a tvm token as a resource server would: signature against the
 * mount's published JWKS, `typ: at+jwt`, the issuer (the caller's, else the
 * mount's), the audience (one of the caller's, else the issuer), exp/nbf/iat
 * with a small clock tolerance, and the jti against the revocation list.
 */
export async function verifyToken(conn: VaultConnection, token: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  checkExpectations(options);
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

  const [jwks, revocations, published] = await Promise.all([fetchJwks(conn), fetchRevocations(conn), fetchIssuer(conn)]);
  const algorithms = [...new Set(jwks.keys.map((k) => k.alg).filter((a): a is string => typeof a === 'string'))];
  const issuer = options.issuer ?? published;
  const audiences = options.audiences ?? (issuer ? [issuer] : null);
  const expected: Expected = {
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    ...(audiences ? { audiences, defaultAudience: options.audiences === undefined } : {}),
  };

  try {
    const verified = await jwtVerify(compact, createLocalJWKSet(jwks), {
      typ: TOKEN_TYP,
      algorithms: algorithms.length > 0 ? algorithms : SUPPORTED_ALGS,
      currentDate: now,
      clockTolerance: tolerance,
      requiredClaims: REQUIRED_CLAIMS,
      ...(issuer ? { issuer } : {}),
      ...(audiences ? { audience: [...audiences] } : {}),
    });
    header = verified.protectedHeader;
    claims = verified.payload;
  } catch (err) {
    const claim = failedClaim(err);
    return { valid: false, reason: reasonFor(err, header, claims, expected), header, claims, ...(claim ? { claim } : {}) };
  }

  if (!audiences) {
    // No audience given and no issuer to stand in for it: the token cannot be checked.
    return { valid: false, reason: 'the mount publishes no issuer, so the audience cannot be checked', header, claims, claim: 'aud' };
  }
  const nowS = Math.floor(now.getTime() / 1000);
  if (typeof claims.iat === 'number' && claims.iat > nowS + tolerance) {
    return { valid: false, reason: `issued in the future (iat ${iso(claims.iat)})`, header, claims, claim: 'iat' };
  }
  if (typeof claims.iat === 'number' && typeof claims.exp === 'number' && claims.iat > claims.exp) {
    return { valid: false, reason: 'iat is after exp', header, claims, claim: 'iat' };
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
