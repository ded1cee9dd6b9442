// Verifying a JWT for the JWT auth method: the signature with jose (against
// configured PEM public keys or a remote JWKS), the algorithm against an
// allow-list (never `none`, never HMAC), then the registered claims the way
// Vault's validator (hashicorp/cap) checks them: issuer, subject, audience,
// and the time claims with Vault's leeway rules. Every failure is a
// JwtValidationError whose message says what was wrong; no message ever holds
// the token itself.

import type { KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, type CompactVerifyGetKey, type CompactVerifyResult } from 'jose';

/** The signing algorithms Vault's JWT method accepts (and its default allow-list). */
export const SUPPORTED_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'] as const;

/** Where signing keys come from. */
export type KeySource =
  | { kind: 'pem'; keys: KeyObject[] }
  | { kind: 'jwks'; url: string; getKey: CompactVerifyGetKey };

export interface ExpectedClaims {
  /** '' skips the check. */
  issuer: string;
  subject: string;
  /** Empty skips the check. */
  audiences: string[];
  algorithms: readonly string[];
  /** Seconds; 0 means Vault's default (150 s, 150 s, 60 s), negative means none. */
  notBeforeLeewayS: number;
  expirationLeewayS: number;
  clockSkewLeewayS: number;
  nowMs: number;
}

export class JwtValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JwtValidationError';
  }
}

const DEFAULT_LEEWAY_S = 150;
const DEFAULT_CLOCK_SKEW_S = 60;

const fail = (message: string): JwtValidationError => new JwtValidationError(message);
const show = (v: unknown): string => {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
};

/** Verifies the token and returns all its claims. */
export async function validateJwt(token: string, source: KeySource, expected: ExpectedClaims): Promise<Record<string, unknown>> {
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw fail('the token is not a signed JWT (expected the JWS compact form: three base64url parts separated by dots)');
  }
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    throw fail('the token header is not base64url-encoded JSON');
  }
  const alg = header.alg;
  if (typeof alg !== 'string' || alg === '') throw fail('the token header has no "alg"');
  if (alg.toLowerCase() === 'none' || parts[2] === '') {
    throw fail(`unsigned tokens (alg ${show(alg)}) are not accepted`);
  }
  if (!expected.algorithms.includes(alg)) {
    throw fail(`token signed with algorithm ${show(alg)}, which is not allowed (allowed: ${expected.algorithms.join(', ')})`);
  }

  const verified = await verifySignature(token, alg, header.kid, source);
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(verified.payload));
  } catch {
    throw fail('the token payload is not JSON');
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw fail('the token payload is not a JSON object');
  const all = claims as Record<string, unknown>;
  checkRegisteredClaims(all, expected);
  return all;
}

async function verifySignature(token: string, alg: string, kid: unknown, source: KeySource): Promise<CompactVerifyResult> {
  const options = { algorithms: [alg] };
  if (source.kind === 'pem') {
    for (const key of source.keys) {
      try {
        return await compactVerify(token, key, options);
      } catch {
        // Not this key (wrong type for the algorithm, or another signer): try the next.
      }
    }
    throw fail("failed to verify the token's signature with any of the configured jwt_validation_pubkeys");
  }
  try {
    return await compactVerify(token, source.getKey, options);
  } catch (err) {
    const code = (err as { code?: string }).code;
    switch (code) {
      case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS': {
        // Several keys fit (no kid): the signature decides.
        for await (const key of err as AsyncIterable<CryptoKey>) {
          try {
            return await compactVerify(token, key, options);
          } catch {
            // next candidate
          }
        }
        throw fail("failed to verify the token's signature with any matching key of the issuer's key set");
      }
      case 'ERR_JWKS_NO_MATCHING_KEY':
        throw fail(
          `no key in the issuer's key set (${source.url}) matches the token's key ID ${typeof kid === 'string' ? show(kid) : '(none)'} and algorithm ${show(alg)}`,
        );
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        throw fail("failed to verify the token's signature");
      case 'ERR_JWKS_TIMEOUT':
        throw fail(`timed out fetching the issuer's key set from ${source.url}`);
      case 'ERR_JWKS_INVALID':
        throw fail(`the document at ${source.url} is not a valid JSON Web Key Set`);
      case 'ERR_JWS_INVALID':
        throw fail('the token is not a well-formed JWS');
      case 'ERR_JOSE_NOT_SUPPORTED':
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        throw fail(`algorithm ${show(alg)} cannot be verified with the issuer's keys`);
      default:
        throw fail(`failed to fetch the issuer's key set from ${source.url}: ${oneLine(err)}`);
    }
  }
}

function numericDate(claims: Record<string, unknown>, name: 'exp' | 'nbf' | 'iat', label: string): number {
  const v = claims[name];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw fail(`invalid ${label} (${name}) claim: ${show(v)} is not a number of seconds`);
  return Math.floor(v);
}

function leeway(value: number, fallback: number): number {
  if (value < 0) return 0;
  return value === 0 ? fallback : value;
}

const when = (s: number): string => new Date(s * 1000).toISOString();

function checkRegisteredClaims(claims: Record<string, unknown>, expected: ExpectedClaims): void {
  if (expected.issuer !== '' && claims.iss !== expected.issuer) {
    throw fail(`invalid issuer (iss) claim: ${show(claims.iss ?? null)} is not the bound issuer ${show(expected.issuer)}`);
  }
  if (expected.subject !== '' && claims.sub !== expected.subject) {
    throw fail(`invalid subject (sub) claim: ${show(claims.sub ?? null)} does not match the role's bound_subject`);
  }
  if (expected.audiences.length > 0) {
    const aud = audiences(claims.aud);
    if (!expected.audiences.some((a) => aud.includes(a))) {
      throw fail(
        `invalid audience (aud) claim: ${aud.length === 0 ? 'the token has none' : show(aud)}; the role's bound_audiences are ${show(expected.audiences)}`,
      );
    }
  }

  let exp = numericDate(claims, 'exp', 'expiration time');
  let nbf = numericDate(claims, 'nbf', 'not before');
  const iat = numericDate(claims, 'iat', 'issued at');
  if (exp === 0 && nbf === 0 && iat === 0) {
    throw fail('no issued at (iat), not before (nbf), or expiration time (exp) claims in token');
  }
  if (exp === 0) exp = Math.max(iat, nbf) + leeway(expected.expirationLeewayS, DEFAULT_LEEWAY_S);
  if (nbf === 0) nbf = iat !== 0 ? iat : exp - leeway(expected.notBeforeLeewayS, DEFAULT_LEEWAY_S);
  const skew = leeway(expected.clockSkewLeewayS, DEFAULT_CLOCK_SKEW_S);
  const now = expected.nowMs / 1000;
  if (now + skew < nbf) throw fail(`invalid not before (nbf) claim: token not yet valid (valid from ${when(nbf)}, leeway ${skew}s)`);
  if (now - skew > exp) throw fail(`invalid expiration time (exp) claim: token is expired (expired at ${when(exp)}, leeway ${skew}s)`);
  if (iat !== 0 && now + skew < iat) throw fail(`invalid issued at (iat) claim: token issued in the future (${when(iat)})`);
}

/** The `aud` claim as a list (a single string is one audience). */
export function audiences(aud: unknown): string[] {
  if (typeof aud === 'string') return aud === '' ? [] : [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

function oneLine(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const text = [e?.message ?? String(err), e?.cause?.code ?? e?.cause?.message].filter(Boolean).join(': ');
  return text.replace(/\s+/g, ' ').slice(0, 200);
}
