// The policy enforcement point: checks a tvm token and its context before one
// read or write of one resource, and answers allow (with the claims) or a
// typed deny. The checks, in order (a caller learns nothing of a later check
// from a token that fails an earlier one):
//   1. shape: a JWS compact JWT, no jku/x5u/jwk/x5c/crit/b64 header, typ at+jwt
//   2. signature: the kid's published key, with the alg that key publishes
//      (alg none, HMAC and any alg the JWKS does not publish are refused)
//   3. claims: iss, aud, exp/nbf/iat within the allowed clock skew
//   4. revocation: the token's entry in its signed status list
//   5. sender binding: a token with cnf.jkt needs a DPoP proof of that key
//   6. scope: the engine's own pattern matching (src/engine/patterns.ts)
//   7. context: bound CIDRs and allowed hours, at use, from the token
// A token whose signature was verified is remembered (by its exact bytes), so
// a workload's next request with it skips step 2; every other step runs on
// every request.

import type { KeyObject } from 'node:crypto';
import { compactVerify } from 'jose';
import { addressInside } from '../engine/cidr.ts';
import { matchesResource, parseScope } from '../engine/patterns.ts';
import { insideWindows, parseWindows } from '../engine/windows.ts';
import { DEFAULT_DPOP_ALGS, verifyDpopProof } from './dpop.ts';
import type { FetchLike } from './fetch.ts';
import { KeySet } from './jwks.ts';
import { ReplayCache } from './replay.ts';
import { StatusClient } from './status.ts';
import type { AuthorizeContext, Authorizer, Decision, Deny, DenyCode, TokenClaims, UsageEvent, UsageSink } from './types.ts';

export const TOKEN_TYP = 'at+jwt';
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64'];
const MAX_TOKEN_LENGTH = 16 * 1024;
/** At most the engine's REVOCATION_GRACE_S: a revoked token stays listed that long past its exp. */
const MAX_CLOCK_TOLERANCE_S = 300;
/** A `.` or `..` path segment, or a percent-encoded slash or backslash, or a backslash. */
const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)|%2f|%5c|\\/i;

/** http to anything but loopback. */
function insecure(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return true;
  }
  if (parsed.protocol === 'https:') return false;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return !(host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host));
}

export interface VerifierOptions {
  /** The expected iss, e.g. https://vault.example.com/v1/tvm. */
  issuer: string;
  /** The audiences this resource server answers to; the token's aud must hold one. */
  audience: string | readonly string[];
  /** Default: `<issuer>/.well-known/jwks.json`. */
  jwksUri?: string;
  /** Tokens must name a status list under this prefix. Default: `<issuer>/status/`. */
  statusListPrefix?: string;
  /** How often held status lists are fetched again (ms; default 5000). */
  statusPollMs?: number;
  /** Subscribe to the issuer's push stream (true: `<issuer>/status/events`; or a URL). Default: off. */
  push?: boolean | string;
  /** When a status list cannot be had (or refreshed past its exp): deny (true, the default) or allow. */
  failClosed?: boolean;
  /** Refuse tokens that name no status list (default true). */
  requireStatus?: boolean;
  /** Refuse tokens that are not DPoP-bound (default false: bound tokens always need their proof). */
  requireBinding?: boolean;
  /** Allowed clock skew for exp, nbf and iat (seconds; default 30, at most 300). */
  clockToleranceS?: number;
  /**
   * An unknown kid refetches the JWKS at most once per this (ms; default 5000):
   * a flood of forged kids costs one request per cooldown, and after a key
   * rotation the new key's tokens are refused for at most this long.
   */
  jwksCooldownMs?: number;
  /** DPoP proofs: how old iat may be (s; default 60), the replay cache's size (default 100000) and allowed algs. */
  dpop?: { iatWindowS?: number; replayCacheSize?: number; algs?: readonly string[] };
  /** Verified tokens remembered (default 10000). */
  tokenCacheSize?: number;
  /** The JWKS is fetched again this often even when no kid is new (ms; default 300000). */
  jwksMaxAgeMs?: number;
  /** Allow an http issuer or JWKS that is not on loopback (default false: https, or http on 127.0.0.1, ::1, localhost). */
  allowInsecureHttp?: boolean;
  /** The most DPoP proofs one key may have in the replay cache at once (default 10000). */
  dpopProofsPerKey?: number;
  /** Where usage events go (default: nowhere). */
  sink?: UsageSink;
  /** The realm in WWW-Authenticate (default "tvm"). */
  realm?: string;
  fetch?: FetchLike;
  /** Milliseconds since the epoch (tests freeze it). */
  clock?: () => number;
}

/** The verifier was configured wrongly: thrown by createVerifier, naming the option. */
export class VerifierConfigError extends Error {
  readonly option: string;
  constructor(option: string, message: string) {
    super(`${option}: ${message}`);
    this.name = 'VerifierConfigError';
    this.option = option;
  }
}

/** authorize was called wrongly (an op or resource that is not one): a bug in the caller, not the token. */
export class AuthorizeUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthorizeUsageError';
  }
}

interface Verified {
  claims: TokenClaims;
  kid: string;
  /** The key that verified it: the token is remembered only while the set still holds this very key. */
  key: KeyObject;
  read: string[];
  write: string[];
}

export interface Verifier extends Authorizer {
  /**
   * Steps 1 to 4 only (shape, signature, claims, revocation): what a token is,
   * not what it may do here. For tools (\`tvm token verify\` without --op);
   * a resource server calls authorize. Emits no usage event.
   */
  verify(token: string): Promise<Decision>;
  /** Fetches the JWKS now (optional: the first token does it). */
  ready(): Promise<void>;
  /** Stops polling and the push stream. */
  close(): void;
  /** Counters for tests and benchmarks. */
  stats(): { jwksFetches: number; statusFetches: number; cachedTokens: number; replayEntries: number };
}

function quoted(text: string): string {
  // RFC 6750 §3: error_description is printable ASCII without " and \.
  return text.replace(/"/g, "'").replace(/\\/g, '/').replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
}

/** A claim value as a message may show it (from a verified token, still bounded). */
function shown(value: unknown): string {
  const text = JSON.stringify(value ?? null) ?? 'null';
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function decodePart(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

export function createVerifier(options: VerifierOptions): Verifier {
  if (typeof options.issuer !== 'string' || !/^https?:\/\/[^\s]+$/.test(options.issuer)) {
    throw new VerifierConfigError('issuer', 'must be the issuer URL the tokens carry (http or https)');
  }
  const issuer = options.issuer.replace(/\/+$/, '');
  const jwksUri = options.jwksUri ?? `${issuer}/.well-known/jwks.json`;
  for (const [option, url] of [['issuer', issuer], ['jwksUri', jwksUri]] as const) {
    if (!options.allowInsecureHttp && insecure(url)) {
      throw new VerifierConfigError(option, 'must be https (http only on loopback, or with allowInsecureHttp): keys and status lists fetched in clear can be swapped on the way');
    }
  }
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])];
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a.trim() === '')) {
    throw new VerifierConfigError('audience', 'name at least one non-empty audience this resource server answers to');
  }
  const toleranceS = options.clockToleranceS ?? 30;
  if (!(toleranceS >= 0 && toleranceS <= MAX_CLOCK_TOLERANCE_S)) {
    throw new VerifierConfigError('clockToleranceS', `must be 0 to ${MAX_CLOCK_TOLERANCE_S} seconds`);
  }
  const clock = options.clock ?? Date.now;
  const fetchFn: FetchLike = options.fetch ?? ((url, init) => fetch(url, init));
  const realm = quoted(options.realm ?? 'tvm');
  const statusPrefix = options.statusListPrefix ?? `${issuer}/status/`;
  const failClosed = options.failClosed ?? true;
  const requireStatus = options.requireStatus ?? true;
  const sink = options.sink;
  const dpopAlgs = options.dpop?.algs ?? DEFAULT_DPOP_ALGS;
  const iatWindowS = options.dpop?.iatWindowS ?? 60;

  const keys = new KeySet({ uri: jwksUri, fetch: fetchFn, clock, cooldownMs: options.jwksCooldownMs ?? 5_000, maxAgeMs: options.jwksMaxAgeMs ?? 300_000 });
  const pushUrl = options.push === true ? `${issuer}/status/events` : typeof options.push === 'string' ? options.push : undefined;
  const status = new StatusClient({
    fetch: fetchFn,
    keys,
    issuer,
    clock,
    pollMs: options.statusPollMs ?? 5000,
    toleranceMs: toleranceS * 1000,
    ...(pushUrl ? { pushUrl } : {}),
  });
  const replay = new ReplayCache({
    windowMs: (iatWindowS + 5) * 1000,
    maxEntries: options.dpop?.replayCacheSize ?? 100_000,
    perGroupMax: options.dpopProofsPerKey ?? 10_000,
    clock,
  });

  // Verified tokens by their exact bytes, insertion-ordered: the oldest goes first.
  const cacheSize = options.tokenCacheSize ?? 10_000;
  const verified = new Map<string, Verified>();
  keys.onRemoved = (kids) => {
    const gone = new Set(kids);
    for (const [token, v] of verified) if (gone.has(v.kid)) verified.delete(token);
  };

  const challenge = (error: string | null, description: string, bound: boolean, extra = ''): string => {
    const scheme = bound ? 'DPoP' : 'Bearer';
    const algs = bound ? `, algs="${dpopAlgs.join(' ')}"` : '';
    if (error === null) return `Bearer realm="${realm}", DPoP realm="${realm}", algs="${dpopAlgs.join(' ')}"`;
    return `${scheme} realm="${realm}", error="${error}", error_description="${quoted(description)}"${extra}${algs}`;
  };

  const deny = (code: DenyCode, message: string, claims?: TokenClaims, context?: AuthorizeContext): Deny => {
    const bound = claims?.cnf !== undefined || context?.scheme === 'DPoP';
    let status: Deny['status'] = 401;
    let header: string;
    if (code === 'ERR_TOKEN_MISSING') header = challenge(null, message, false);
    else if (code === 'ERR_SCOPE') {
      status = 403;
      const needed = context ? ` scope="${quoted(`${context.op}:${context.resource}`)}"` : '';
      header = challenge('insufficient_scope', message, bound, needed ? `,${needed}` : '');
    } else if (code === 'ERR_CONTEXT') {
      status = 403;
      header = challenge('insufficient_scope', message, bound);
    } else if (code === 'ERR_STATUS_UNAVAILABLE') {
      // Not the token's fault: no RFC 6750 error code fits, so the challenge names none.
      status = 503;
      header = `${bound ? 'DPoP' : 'Bearer'} realm="${realm}"`;
    } else if (code === 'ERR_BINDING') header = challenge('invalid_dpop_proof', message, true);
    else header = challenge('invalid_token', message, bound);
    return { allow: false, code, message, status, wwwAuthenticate: header, ...(claims ? { claims } : {}) };
  };

  /** Steps 1 to 3 for a token not seen before; the signature result is cached. */
  const verifySignature = async (token: string): Promise<Verified | Deny> => {
    const parts = token.split('.');
    if (parts.length !== 3 || parts.some((p) => p === '' || !/^[A-Za-z0-9_-]+$/.test(p))) {
      return deny('ERR_TOKEN_MALFORMED', 'not a JWS compact JWT');
    }
    let header: Record<string, unknown>;
    let payload: unknown;
    try {
      header = decodePart(parts[0]) as Record<string, unknown>;
      payload = decodePart(parts[1]);
    } catch {
      return deny('ERR_TOKEN_MALFORMED', 'the header or the claims are not base64url JSON');
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return deny('ERR_TOKEN_MALFORMED', 'the header is not a JSON object');
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return deny('ERR_TOKEN_MALFORMED', 'the claims are not a JSON object');
    const refused = FORBIDDEN_HEADERS.find((h) => h in header);
    if (refused) return deny('ERR_TOKEN_MALFORMED', `header ${refused} is not accepted: keys come only from the issuer's JWKS`);
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : header.typ;
    if (typ !== TOKEN_TYP && typ !== `application/${TOKEN_TYP}`) return deny('ERR_TOKEN_TYPE', `header typ is ${shown(header.typ)}, expected "${TOKEN_TYP}"`);
    const alg = header.alg;
    if (typeof alg !== 'string' || alg === 'none' || /^HS/i.test(alg)) return deny('ERR_TOKEN_ALG', `algorithm ${shown(alg)} is never accepted`);
    if (typeof header.kid !== 'string' || header.kid === '') return deny('ERR_TOKEN_MALFORMED', 'the header names no kid');
    let key;
    try {
      key = await keys.key(header.kid);
    } catch (err) {
      // No key, no verification: this never fails open, whatever failClosed says.
      return deny('ERR_STATUS_UNAVAILABLE', `the issuer's keys could not be fetched: ${(err as Error).message}`);
    }
    if (!key) return deny('ERR_KEY_UNKNOWN', `no published key has kid ${shown(header.kid)}`);
    if (!keys.algorithms().has(alg)) return deny('ERR_TOKEN_ALG', `algorithm ${shown(alg)} is not one the issuer publishes`);
    if (key.alg !== alg) return deny('ERR_TOKEN_ALG', `kid ${shown(header.kid)} is published for ${key.alg}, not ${shown(alg)}`);
    try {
      await compactVerify(token, key.key, { algorithms: [key.alg] });
    } catch {
      return deny('ERR_TOKEN_SIGNATURE', 'signature verification failed');
    }
    const claims = payload as TokenClaims;
    for (const name of ['jti', 'sub', 'client_id', 'scope', 'iss'] as const) {
      if (typeof claims[name] !== 'string') return deny('ERR_TOKEN_MALFORMED', `claim ${name} is missing or not a string`);
    }
    for (const name of ['exp', 'iat'] as const) {
      if (typeof claims[name] !== 'number') return deny('ERR_TOKEN_MALFORMED', `claim ${name} is missing or not a number`);
    }
    const { read, write } = parseScope(claims.scope);
    return { claims, kid: header.kid, key: key.key, read, write };
  };

  /** Steps 3 and on, run on every request (to 4 only without a context). */
  const check = async (token: string, v: Verified, context: AuthorizeContext | null): Promise<Decision> => {
    const { claims } = v;
    if (claims.iss !== issuer) return deny('ERR_TOKEN_ISSUER', `issuer ${shown(claims.iss)} is not ${shown(issuer)}`);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.some((a) => audiences.includes(a))) {
      return deny('ERR_TOKEN_AUDIENCE', `audience ${shown(claims.aud)} does not include ${audiences.length === 1 ? shown(audiences[0]) : `any of ${shown(audiences)}`}`);
    }
    const nowS = clock() / 1000;
    if (nowS >= claims.exp + toleranceS) return deny('ERR_TOKEN_EXPIRED', `expired at ${new Date(claims.exp * 1000).toISOString()}`);
    if (typeof claims.nbf === 'number' && claims.nbf > nowS + toleranceS) {
      return deny('ERR_TOKEN_NOT_YET_VALID', `not valid before ${new Date(claims.nbf * 1000).toISOString()}`);
    }
    if (claims.iat > nowS + toleranceS) return deny('ERR_TOKEN_NOT_YET_VALID', `issued in the future (iat ${new Date(claims.iat * 1000).toISOString()})`);

    const ref = claims.status?.status_list;
    if (ref === undefined) {
      if (requireStatus) return deny('ERR_TOKEN_STATUS', 'the token names no status list, so its revocation cannot be checked');
    } else {
      if (typeof ref.uri !== 'string' || !Number.isSafeInteger(ref.idx) || ref.idx < 0) return deny('ERR_TOKEN_MALFORMED', 'claim status.status_list is not {idx, uri}');
      if (!ref.uri.startsWith(statusPrefix) || ref.uri.length > statusPrefix.length + 64) {
        return deny('ERR_TOKEN_STATUS', `the token's status list ${shown(ref.uri)} is not under ${shown(statusPrefix)}`);
      }
      const answer = await status.status(ref.uri, ref.idx);
      if (answer.state === 'revoked') return deny('ERR_TOKEN_REVOKED', 'the token is revoked', claims);
      if (answer.state === 'invalid') return deny('ERR_TOKEN_STATUS', answer.reason, claims);
      if (answer.state === 'unavailable' && failClosed) return deny('ERR_STATUS_UNAVAILABLE', answer.reason, claims);
    }
    if (context === null) return { allow: true, claims };

    const jkt = claims.cnf?.jkt;
    if (jkt !== undefined) {
      if (typeof jkt !== 'string') return deny('ERR_TOKEN_MALFORMED', 'claim cnf.jkt is not a string', claims);
      if (context.scheme === 'Bearer') return deny('ERR_BINDING', 'the token is DPoP-bound: send it with the DPoP scheme and a proof', claims, context);
      if (!context.dpop) return deny('ERR_BINDING', 'the token is DPoP-bound and the request carries no DPoP proof', claims, context);
      if (!context.method || !context.url) throw new AuthorizeUsageError('a DPoP-bound token needs the request method and url in the context');
      const proof = verifyDpopProof(context.dpop, {
        method: context.method,
        url: context.url,
        accessToken: token,
        expectedJkt: jkt,
        nowMs: clock(),
        iatWindowS,
        replay,
        allowedAlgs: dpopAlgs,
      });
      if (!proof.ok) return deny('ERR_BINDING', `DPoP proof refused: ${proof.reason}`, claims, context);
    } else if (context.scheme === 'DPoP') {
      return deny('ERR_BINDING', 'the token is not DPoP-bound: send it with the Bearer scheme', claims, context);
    } else if (options.requireBinding) {
      return deny('ERR_BINDING', 'this resource server accepts DPoP-bound tokens only', claims, context);
    }

    if (DOT_SEGMENT.test(context.resource)) {
      // A wildcard would match it, and a handler that normalises the path would then reach outside the grant.
      return deny('ERR_SCOPE', `resource ${shown(context.resource)} has a . or .. segment or an encoded separator: normalise it before authorizing`, claims, context);
    }
    const patterns = context.op === 'read' ? v.read : v.write;
    if (!patterns.some((p) => matchesResource(p, context.resource))) {
      return deny('ERR_SCOPE', `the token does not grant ${context.op} on ${shown(context.resource)}`, claims, context);
    }

    if (Array.isArray(claims.bound_cidrs) && claims.bound_cidrs.length > 0 && !addressInside(claims.bound_cidrs, context.remoteAddr)) {
      return deny('ERR_CONTEXT', `the request comes from ${shown(context.remoteAddr ?? 'an unknown address')}, outside the token's bound_cidrs`, claims, context);
    }
    if (Array.isArray(claims.allowed_hours) && claims.allowed_hours.length > 0) {
      const zone = typeof claims.time_zone === 'string' ? claims.time_zone : 'UTC';
      let inside: boolean;
      try {
        inside = insideWindows(parseWindows(claims.allowed_hours), zone, clock());
      } catch {
        return deny('ERR_TOKEN_MALFORMED', 'claim allowed_hours or time_zone cannot be read', claims);
      }
      if (!inside) return deny('ERR_CONTEXT', `outside the token's allowed hours (${claims.allowed_hours.join(', ')}, ${zone})`, claims, context);
    }
    return { allow: true, claims };
  };

  const emit = (decision: Decision, context: AuthorizeContext): void => {
    if (!sink) return;
    const claims = decision.allow ? decision.claims : decision.claims;
    const event: UsageEvent = {
      time: new Date(clock()).toISOString(),
      decision: decision.allow ? 'allow' : 'deny',
      ...(decision.allow ? {} : { code: decision.code, detail: decision.message.slice(0, 200) }),
      ...(claims ? { jti: claims.jti, role: claims.client_id, sub: claims.sub } : {}),
      ...(typeof claims?.lease_id === 'string' ? { lease_id: claims.lease_id } : {}),
      op: context.op,
      resource: context.resource,
      ...(context.remoteAddr ? { remote_addr: context.remoteAddr } : {}),
      ...(context.method ? { method: context.method } : {}),
      ...(context.url ? { url: context.url.split('?')[0] } : {}),
    };
    try {
      sink(event);
    } catch {
      // A failing sink never changes a decision.
    }
  };

  /** The signature step, from the cache when the token was verified before. */
  const verifiedOf = async (token: string): Promise<Verified | Deny> => {
    keys.touch();
    const cached = verified.get(token);
    // Remembered only while the set still holds the very key that verified it.
    if (cached && keys.current(cached.kid)?.key === cached.key) return cached;
    if (cached) verified.delete(token);
    const result = await verifySignature(token);
    if ('allow' in result) return result;
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value as string);
    verified.set(token, result);
    return result;
  };

  const authorize = async (token: string | undefined, context: AuthorizeContext): Promise<Decision> => {
    if (context?.op !== 'read' && context?.op !== 'write') throw new AuthorizeUsageError(`op must be "read" or "write", got ${shown(context?.op)}`);
    if (typeof context.resource !== 'string' || context.resource === '' || context.resource.length > 2048 || /[\s\u0000-\u001f\u007f]/.test(context.resource)) {
      throw new AuthorizeUsageError('resource must be a concrete resource name such as db://orders/42');
    }
    let decision: Decision;
    if (token === undefined || token === '') {
      decision = deny('ERR_TOKEN_MISSING', 'no access token in the request');
    } else if (token.length > MAX_TOKEN_LENGTH) {
      decision = deny('ERR_TOKEN_MALFORMED', `the token is longer than ${MAX_TOKEN_LENGTH} characters`);
    } else {
      const v = await verifiedOf(token);
      if ('allow' in v) decision = v;
      else {
        decision = await check(token, v, context);
        // An expired token is not worth its place in the cache.
        if (!decision.allow && decision.code === 'ERR_TOKEN_EXPIRED') verified.delete(token);
      }
    }
    emit(decision, context);
    return decision;
  };

  const verify = async (token: string): Promise<Decision> => {
    if (typeof token !== 'string' || token === '') return deny('ERR_TOKEN_MISSING', 'no token');
    if (token.length > MAX_TOKEN_LENGTH) return deny('ERR_TOKEN_MALFORMED', `the token is longer than ${MAX_TOKEN_LENGTH} characters`);
    const v = await verifiedOf(token);
    return 'allow' in v ? v : check(token, v, null);
  };

  return {
    authorize,
    verify,
    report: (deny, context) => emit(deny, context),
    ready: () => keys.refresh(),
    close: () => status.close(),
    stats: () => ({ jwksFetches: keys.fetches, statusFetches: status.fetches, cachedTokens: verified.size, replayEntries: replay.size }),
  };
}
