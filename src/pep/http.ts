// The policy enforcement point over plain node:http: pull the credentials out
// of a request (Authorization: Bearer|DPoP <token68>, and one DPoP proof),
// build the AuthorizeContext (op, resource, remote address, method, absolute
// URL for DPoP's htu), ask the Authorizer, and answer a denial with its
// challenge and a JSON error body. The Express and Fastify adapters reuse it.
//
//   http.createServer(protect(verifier, { resource: (req) => `db://orders${req.url}` },
//     (req, res, allow) => { res.end(allow.claims.sub); }));
//
// Denials: the Deny's status, WWW-Authenticate, Cache-Control: no-store,
// Retry-After: 1 on 503, and {"error", "error_description", "code"} where error
// is the RFC 6750 / RFC 9449 word. Malformed credentials (two Authorization or
// DPoP headers, a token that is not token68) are refused here with 401
// invalid_request before the Authorizer runs. Nothing here ever echoes a token.
import { isIP } from 'node:net';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Allow, Authorizer, Decision, Deny, Op } from './types.ts';

/** What was found in the request's Authorization and DPoP headers. */
export interface Credentials {
  token?: string;
  scheme?: 'Bearer' | 'DPoP';
  dpop?: string;
  /** Why the request's credentials are refused outright (never holds the token). */
  problem?: string;
  /** Which header the problem is with. */
  problemHeader?: 'authorization' | 'dpop';
}

export interface UrlOptions {
  /** The public origin (and path prefix) clients call, e.g. https://api.example.com; wins over the rest. */
  baseUrl?: string;
  /**
   * Behind one proxy that sets them: believe the last (the proxy's own)
   * X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-For values, so htu is
   * the URL the client called and bound CIDRs are checked against the client.
   */
  trustProxy?: boolean;
}

/** How an adapter maps a request to the op and resource it authorizes; Req is the framework's request. */
export interface PepOptions<Req = IncomingMessage> extends UrlOptions {
  /** The op, or a function of the request; by default read for GET/HEAD/OPTIONS, write otherwise. */
  op?: Op | ((req: Req) => Op);
  /** The concrete resource, or a function of the request. */
  resource: string | ((req: Req) => string);
}

/** Thrown (or passed to next) when the Authorizer itself fails; the original error is its cause. */
export class AuthorizerError extends Error {
  readonly status = 500;
  readonly statusCode = 500;
  readonly expose = false;
  constructor(cause: unknown) {
    super('tvm pep: the authorizer failed', { cause });
    this.name = 'AuthorizerError';
  }
}

// RFC 7235 token68.
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;
// A compact JWS: three base64url parts.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function values(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * Reads the token and DPoP proof. Pass req.headersDistinct to catch repeated
 * Authorization headers (req.headers keeps only the first). Other schemes
 * (Basic, ...) give no token and no problem.
 */
export function extractCredentials(headers: IncomingHttpHeaders | NodeJS.Dict<string[]>): Credentials {
  const auth = readAuthorization(values(headers['authorization']));
  const dpops = values(headers['dpop']);
  let problem: string | undefined;
  if (dpops.length > 1 || dpops.some((d) => d.includes(','))) problem = 'more than one DPoP header';
  else if (dpops.length === 1 && !COMPACT_JWS.test(dpops[0])) problem = 'the DPoP header is not a compact JWS';
  if (problem) return { scheme: auth.scheme, problem, problemHeader: 'dpop' };
  return dpops.length === 1 ? { ...auth, dpop: dpops[0] } : auth;
}

function readAuthorization(auths: string[]): Credentials {
  if (auths.length > 1) return { problem: 'more than one Authorization header', problemHeader: 'authorization' };
  const value = auths[0] ?? '';
  const sp = value.search(/\s/);
  const word = (sp < 0 ? value : value.slice(0, sp)).toLowerCase();
  if (word !== 'bearer' && word !== 'dpop') return {};
  const scheme = word === 'bearer' ? 'Bearer' : 'DPoP';
  const m = /^ +(.+)$/s.exec(sp < 0 ? '' : value.slice(sp));
  if (!m) return { scheme, problem: `the ${scheme} credentials hold no token after a space`, problemHeader: 'authorization' };
  if (!TOKEN68.test(m[1])) return { scheme, problem: `the ${scheme} token is not token68`, problemHeader: 'authorization' };
  return { token: m[1], scheme };
}

function first(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  const f = s?.split(',')[0].trim();
  return f ? f : undefined;
}

/** The last value of a list header: the one the nearest proxy appended (earlier ones are the client's to forge). */
function last(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v.join(',') : v;
  const l = s?.split(',').pop()?.trim();
  return l ? l : undefined;
}

/** A Host value: a name, an IPv4 or a bracketed IPv6 address, and an optional port; nothing that could change the path. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;

/** The client's address: the socket's, or behind a trusted proxy the address that proxy saw. */
export function clientAddress(req: IncomingMessage, options: UrlOptions = {}): string | undefined {
  if (options.trustProxy) {
    const forwarded = last(req.headers['x-forwarded-for']);
    if (forwarded && isIP(forwarded)) return forwarded;
  }
  return req.socket?.remoteAddress;
}

/** The request's absolute URL without query (for DPoP's htu and the audit log). */
export function requestUrl(req: IncomingMessage & { originalUrl?: string }, options: UrlOptions = {}): string {
  // Express rewrites req.url under a mount point; originalUrl keeps the full path.
  const raw = req.originalUrl ?? req.url ?? '/';
  const q = raw.search(/[?#]/);
  let path = q < 0 ? raw : raw.slice(0, q);
  if (!path.startsWith('/')) path = `/${path}`;
  if (options.baseUrl) return options.baseUrl.replace(/\/+$/, '') + path;
  let proto = (req.socket as Partial<TLSSocket> | undefined)?.encrypted ? 'https' : 'http';
  let host = first(req.headers.host);
  if (options.trustProxy) {
    const fp = last(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (fp === 'http' || fp === 'https') proto = fp;
    host = last(req.headers['x-forwarded-host']) ?? host;
  }
  // A Host with a path, a fragment or user info would let a proof made for one
  // URL pass for another: such a request has no URL a proof can match.
  if (host === undefined || !HOST.test(host)) return `${proto}://invalid.host.invalid${path}`;
  return `${proto}://${host}${path}`;
}

/** read for GET, HEAD and OPTIONS; write for every other method. */
export function defaultOp(method: string | undefined): Op {
  const m = (method ?? 'GET').toUpperCase();
  return m === 'GET' || m === 'HEAD' || m === 'OPTIONS' ? 'read' : 'write';
}

function malformed(c: Credentials): Deny {
  const scheme = c.scheme === 'DPoP' ? 'DPoP' : 'Bearer';
  const message = c.problem ?? 'malformed credentials';
  return {
    allow: false,
    code: c.problemHeader === 'dpop' ? 'ERR_BINDING' : 'ERR_TOKEN_MALFORMED',
    message,
    status: 401,
    wwwAuthenticate: `${scheme} error="invalid_request", error_description="${message.replace(/["\\]/g, '')}"`,
  };
}

/**
 * Authorizes a request whose node message is raw and whose framework request
 * is req (the same object for node:http and Express; Fastify's request wraps raw).
 */
export async function authorizeIncoming<Req>(
  authorizer: Authorizer,
  raw: IncomingMessage,
  req: Req,
  options: PepOptions<Req>,
): Promise<Decision> {
  const creds = extractCredentials(raw.headersDistinct ?? raw.headers);
  const op = typeof options.op === 'function' ? options.op(req) : (options.op ?? defaultOp(raw.method));
  const resource = typeof options.resource === 'function' ? options.resource(req) : options.resource;
  const context = {
    op,
    resource,
    remoteAddr: clientAddress(raw, options),
    method: raw.method,
    url: requestUrl(raw, options),
    dpop: creds.dpop,
    scheme: creds.scheme,
  };
  if (creds.problem) {
    // Refused before the token is looked at; still a decision on the record.
    const deny = malformed(creds);
    authorizer.report?.(deny, context);
    return deny;
  }
  try {
    return await authorizer.authorize(creds.token, context);
  } catch (err) {
    throw new AuthorizerError(err);
  }
}

/** Authorizes a node:http (or Express) request. */
export function authorizeRequest<Req extends IncomingMessage>(
  authorizer: Authorizer,
  req: Req,
  options: PepOptions<Req>,
): Promise<Decision> {
  return authorizeIncoming(authorizer, req, req, options);
}

const ERROR_WORDS = new Set(['invalid_token', 'insufficient_scope', 'invalid_dpop_proof', 'invalid_request', 'temporarily_unavailable']);

/** The RFC 6750 / RFC 9449 error word: the challenge's own, else one from the code. */
export function errorWord(deny: Deny): string {
  if (deny.status === 503) return 'temporarily_unavailable';
  const m = /(?:^|[\s,])error="([a-z_]+)"/.exec(deny.wwwAuthenticate);
  if (m && ERROR_WORDS.has(m[1])) return m[1];
  switch (deny.code) {
    case 'ERR_TOKEN_MISSING':
      return 'invalid_request';
    case 'ERR_SCOPE':
    case 'ERR_CONTEXT':
      return 'insufficient_scope';
    case 'ERR_BINDING':
      return 'invalid_dpop_proof';
    default:
      return 'invalid_token';
  }
}

/** The headers of a denial. */
export function denialHeaders(deny: Deny): Record<string, string> {
  const h: Record<string, string> = {
    'www-authenticate': deny.wwwAuthenticate,
    'cache-control': 'no-store',
    'content-type': 'application/json; charset=utf-8',
  };
  if (deny.status === 503) h['retry-after'] = '1';
  return h;
}

/** The JSON body of a denial. */
export function denialBody(deny: Deny): { error: string; error_description: string; code: string } {
  return { error: errorWord(deny), error_description: deny.message, code: deny.code };
}

/** Answers a denial on a node response. */
export function sendDenial(res: ServerResponse, deny: Deny): void {
  res.writeHead(deny.status, denialHeaders(deny));
  res.end(JSON.stringify(denialBody(deny)));
}

export interface ProtectOptions extends PepOptions<IncomingMessage> {
  /** Called when the authorizer or the handler throws; by default a bare 500. */
  onError?: (err: unknown, req: IncomingMessage, res: ServerResponse) => void;
}

export type ProtectedHandler = (req: IncomingMessage, res: ServerResponse, allow: Allow) => void | Promise<void>;

/** A node:http request listener that runs handler only for allowed requests. */
export function protect(
  authorizer: Authorizer,
  options: ProtectOptions,
  handler: ProtectedHandler,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const run = async () => {
      const decision = await authorizeRequest(authorizer, req, options);
      if (!decision.allow) return sendDenial(res, decision);
      await handler(req, res, decision);
    };
    run().catch((err: unknown) => {
      if (options.onError) {
        try {
          return options.onError(err, req, res);
        } catch {
          return void res.destroy();
        }
      }
      if (res.headersSent) return void res.destroy();
      res.writeHead(500, { 'cache-control': 'no-store', 'content-type': 'application/json; charset=utf-8' });
      res.end('{"error":"server_error"}');
    });
  };
}
