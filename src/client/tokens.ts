// Checking a tvm token: offline verification through the PEP library (the
// checks a resource server makes: published JWKS, claims, the signed status
// list, and with an op and a resource also scope and context), and online
// introspection.

import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { AuthorizeUsageError, createVerifier, VerifierConfigError, type Decision, type DenyCode, type FetchLike, type Op } from '../pep/index.ts';
import { mapVaultError, type Env, type VaultConnection } from './connection.ts';
import { InvalidInputError, UnexpectedResponseError, VaultRequestError } from './errors.ts';

export { TOKEN_TYP } from '../pep/index.ts';

export interface VerifyResult {
  valid: boolean;
  /** Why the token is not valid; absent when it is. */
  reason?: string;
  /** The PEP's deny code (ERR_TOKEN_EXPIRED, ERR_SCOPE, ...); absent when the token is valid. */
  code?: DenyCode;
  /** The protected header, when the token could be decoded. */
  header: ProtectedHeaderParameters | null;
  /** The claims, when the token could be decoded (even if the token is not valid). */
  claims: JWTPayload | null;
  /** The claim whose check failed (`aud`, `iss`, `exp`, `nbf`, `iat`), when the reason is about one claim. */
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
  /** With `resource`: also check the token grants this op on it, its sender binding and its context. */
  op?: Op;
  /** With `op`: the concrete resource, e.g. db://orders/42. */
  resource?: string;
  /** With `op`: the client address bound_cidrs are checked against (none given: a token with bound_cidrs fails). */
  remoteAddr?: string;
  /** Where VAULT_CACERT, VAULT_SKIP_VERIFY and VAULT_NAMESPACE come from, as for connect(); default process.env. */
  env?: Env;
  /** How the verifier GETs the JWKS and status lists (at the connection's address); default: with the TLS settings of `env`. */
  fetch?: FetchLike;
}

export const DEFAULT_CLOCK_TOLERANCE_S = 30;
/** The most a fetched document may hold (the PEP refuses more than 1 MiB anyway). */
const MAX_BODY_BYTES = 2 << 20;

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

/** A GET over https with a CA or without verification (what global fetch cannot be told), buffered into a Response. */
function httpsGet(url: string, init: Parameters<FetchLike>[1], tls: { ca?: string; rejectUnauthorized: boolean }): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'GET', headers: init.headers, signal: init.signal, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) req.destroy(new Error(`GET ${url} answered more than ${MAX_BODY_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        try {
          const status = res.statusCode ?? 502;
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
          }
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks).toString('utf8');
          resolve(new Response(body, { status, headers }));
        } catch (err) {
          reject(err); // a status or header a Response cannot hold
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** GETs with the TLS settings and namespace connect() reads from the same environment. */
function transportFor(env: Env): FetchLike {
  const skipVerify = env.VAULT_SKIP_VERIFY !== undefined && !['', '0', 'false'].includes(env.VAULT_SKIP_VERIFY.toLowerCase());
  let ca: string | undefined;
  if (env.VAULT_CACERT) {
    try {
      ca = readFileSync(env.VAULT_CACERT, 'utf8');
    } catch (err) {
      throw new InvalidInputError(`VAULT_CACERT ${JSON.stringify(env.VAULT_CACERT)} cannot be read`, { cause: err });
    }
  }
  const namespace = env.VAULT_NAMESPACE;
  return (url, init) => {
    const headers = namespace ? { ...init.headers, 'x-vault-namespace': namespace } : init.headers;
    if (url.startsWith('https:') && (ca !== undefined || skipVerify)) {
      return httpsGet(url, { ...init, headers }, { ...(ca !== undefined ? { ca } : {}), rejectUnauthorized: !skipVerify });
    }
    return fetch(url, { ...init, headers });
  };
}

/**
 * Documents under the issuer (the status lists tokens name) are fetched from
 * the mount through the connection's address, as the JWKS is: the issuer may
 * be a public name this host does not reach.
 */
function throughMount(conn: VaultConnection, issuer: string, transport: FetchLike): FetchLike {
  const prefix = `${issuer.replace(/\/+$/, '')}/`;
  const mountUrl = `${conn.addr}/v1/${conn.mount}/`;
  return (url, init) => transport(url.startsWith(prefix) ? mountUrl + url.slice(prefix.length) : url, init);
}

/** The caller's expectations, checked before any request. */
function checkOptions(options: VerifyOptions): void {
  if (options.audiences !== undefined) {
    if (options.audiences.length === 0) throw new InvalidInputError('audiences: give at least one, or leave it out for the issuer');
    options.audiences.forEach((a, i) => {
      if (typeof a !== 'string' || a.trim() === '') throw new InvalidInputError(`audiences[${i}]: an audience must be a non-empty string`);
    });
  }
  if (options.issuer !== undefined) {
    if (typeof options.issuer !== 'string' || options.issuer.trim() === '') throw new InvalidInputError('issuer: must be a non-empty string');
    if (!/^https?:\/\/\S+$/.test(options.issuer)) throw new InvalidInputError('issuer: must be the http(s) URL the tokens carry');
  }
  if ((options.op === undefined) !== (options.resource === undefined)) throw new InvalidInputError('op and resource go together');
  if (options.op !== undefined && options.op !== 'read' && options.op !== 'write') throw new InvalidInputError('op: must be read or write');
  if (options.remoteAddr !== undefined && options.op === undefined) throw new InvalidInputError('remoteAddr goes with op and resource');
}

/** Header and claims as the token states them (unverified), or nulls when it is not a JWT. */
function decoded(token: string): { header: ProtectedHeaderParameters | null; claims: JWTPayload | null } {
  try {
    return { header: decodeProtectedHeader(token), claims: decodeJwt(token) };
  } catch {
    return { header: null, claims: null };
  }
}

/** The verifier could not fetch the mount's keys: a connection problem, not the token's. */
function keysUnavailable(err: unknown, conn: VaultConnection, path: string): Error {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return mapVaultError(cause, conn.addr, 'GET', path);
  if (typeof (err as { code?: unknown } | null)?.code === 'string') return mapVaultError(err, conn.addr, 'GET', path);
  return new UnexpectedResponseError(`cannot fetch the mount's keys: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/**
 * Verifies a tvm token with the PEP library (src/pep), as a resource server
 * would: signature against the mount's published JWKS, typ at+jwt, the issuer
 * (the caller's, else the mount's), the audience (one of the caller's, else
 * the issuer), exp/nbf/iat with a small clock tolerance, and revocation in
 * the token's signed status list. With `op` and `resource` also what
 * authorize checks: sender binding (a DPoP-bound token fails: there is no
 * proof here), scope, bound CIDRs against `remoteAddr`, allowed hours.
 */
export async function verifyToken(conn: VaultConnection, token: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  checkOptions(options);
  const compact = token.trim();
  const { header, claims } = decoded(compact);
  const published = options.issuer === undefined ? await fetchIssuer(conn) : null;
  // No issuer to expect but audiences given: the token's own iss stands in (as
  // before, iss is then not checked); its signature must still be the mount's.
  const issuer = options.issuer ?? published ?? (options.audiences && typeof claims?.iss === 'string' ? claims.iss : null);
  if (issuer === null) {
    const reason = 'the mount publishes no issuer, so the audience cannot be checked';
    return { valid: false, reason, code: 'ERR_TOKEN_AUDIENCE', header, claims, claim: 'aud' };
  }
  const tolerance = options.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S;
  const now = options.now;
  const jwksPath = `${conn.mount}/.well-known/jwks.json`;
  let verifier;
  try {
    verifier = createVerifier({
      issuer,
      audience: options.audiences ?? [issuer],
      jwksUri: `${conn.addr}/v1/${jwksPath}`,
      fetch: throughMount(conn, issuer, options.fetch ?? transportFor(options.env ?? process.env)),
      clockToleranceS: tolerance,
      // The documents come from the Vault address the user already talks to (VAULT_ADDR), over its scheme.
      allowInsecureHttp: true,
      ...(now ? { clock: () => now.getTime() } : {}),
    });
  } catch (err) {
    if (!(err instanceof VerifierConfigError)) throw err;
    // Only a published issuer, or the token's own, can get here: the caller's options were checked.
    if (err.option === 'issuer') {
      return { valid: false, reason: `issuer ${JSON.stringify(issuer).slice(0, 80)} is not an http(s) URL`, code: 'ERR_TOKEN_ISSUER', header, claims, claim: 'iss' };
    }
    throw new InvalidInputError(err.message, { cause: err });
  }
  try {
    try {
      await verifier.ready();
    } catch (err) {
      throw keysUnavailable(err, conn, jwksPath);
    }
    let decision: Decision;
    if (options.op !== undefined && options.resource !== undefined) {
      const context = { op: options.op, resource: options.resource, ...(options.remoteAddr !== undefined ? { remoteAddr: options.remoteAddr } : {}) };
      try {
        decision = await verifier.authorize(compact, context);
      } catch (err) {
        if (err instanceof AuthorizeUsageError) throw new InvalidInputError(err.message, { cause: err });
        throw err;
      }
    } else {
      decision = await verifier.verify(compact);
    }
    if (decision.allow) return { valid: true, header, claims: decision.claims as JWTPayload };
    const claim = claimOf(decision.code, claims, (now ?? new Date()).getTime() / 1000 + tolerance);
    return { valid: false, reason: decision.message, code: decision.code, header, claims, ...(claim ? { claim } : {}) };
  } finally {
    verifier.close();
  }
}

/** The claim a deny code is about, when it is about one (`latestS`: now plus the tolerance). */
function claimOf(code: DenyCode, claims: JWTPayload | null, latestS: number): string | undefined {
  switch (code) {
    case 'ERR_TOKEN_AUDIENCE':
      return 'aud';
    case 'ERR_TOKEN_ISSUER':
      return 'iss';
    case 'ERR_TOKEN_EXPIRED':
      return 'exp';
    case 'ERR_TOKEN_NOT_YET_VALID':
      // The PEP checks nbf first, then iat.
      return typeof claims?.nbf === 'number' && claims.nbf > latestS ? 'nbf' : 'iat';
    default:
      return undefined;
  }
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
