// The dev server's HTTP layer, only a transport: it turns an HTTP request
// into a parsed request (path under /v1/, method -> operation, body (JSON,
// 1 MiB cap) or query -> data, token from X-Vault-Token or Authorization:
// Bearer, wrap ttl), hands it to the core (core.ts: routing, authentication,
// the ACL, the backends), and turns the answer into Vault's envelope
// ({"errors": [...]} for errors). The LIST method's byte-level shim is
// list_method.ts.

import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDurationMs } from '../sdk/duration.ts';
import { JsonInputError, parseJsonBounded } from '../sdk/json.ts';
import { canonicalPath, clearSegments } from './request.ts';
import type { ServerCore } from './context.ts';
import { Router, serve } from './core.ts';
import { badRequest, errorChain, HttpError, translateError, unroutedPath } from './errors.ts';
import { LIST_ALIAS } from './list_method.ts';
import type { HttpOperation, Reply, RequestContext } from './request.ts';
import type { Logger } from './logger.ts';
import { STATUS_PATHS, VAULT_VERSION } from './sys/path_health.ts';

export { VAULT_VERSION };

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Past this much unread body the connection is dropped instead of drained. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

export function createRequestHandler(core: ServerCore): (req: IncomingMessage, res: ServerResponse) => void {
  const router = new Router(core);
  return (req, res) => {
    void handleRequest(core, router, req, res);
  };
}

async function handleRequest(core: ServerCore, router: Router, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = core.logger ? performance.now() : 0;
  const requestId = randomUUID();
  let ctx: RequestContext | undefined;
  let status = 500;
  try {
    ctx = await parseRequest(req, requestId);
    const reply = await serve(core, router, ctx);
    status = send(res, ctx, reply);
  } catch (err) {
    status = sendError(res, requestId, err, core.logger);
  } finally {
    if (ctx?.token && ctx.lastUse) {
      // The token's last use: revoke it once the answer is out.
      const hash = ctx.token.hash;
      const revoke = (): void => void core.tokens.revoke(hash).catch(() => undefined);
      if (res.writableFinished) revoke();
      else res.once('close', revoke);
    }
    core.logger?.debug('request', {
      request_id: requestId,
      method: ctx?.method ?? req.method,
      path: ctx ? (ctx.routed ? redactPath(ctx.path) : unroutedPath(ctx.path)) : '',
      status,
      duration_ms: Math.round((performance.now() - started) * 100) / 100,
    });
  }
}

// ---------------------------------------------------------------------------
// Parsing

async function parseRequest(req: IncomingMessage, requestId: string): Promise<RequestContext> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? null : new URLSearchParams(url.slice(q + 1));
  const read = readBody(req);
  const body = Buffer.isBuffer(read) ? read : await read;
  if (!rawPath.startsWith('/v1/')) throw new HttpError(404);
  let path: string;
  try {
    path = decodeURIComponent(rawPath.slice(4));
  } catch {
    throw badRequest('invalid path: malformed percent-encoding');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) throw badRequest('invalid path: control characters are not allowed');
  if (DOT_SEGMENT.test(path)) throw badRequest('invalid path: "." and ".." segments are not allowed');

  const requested = (req.method ?? 'GET').toUpperCase();
  const method = requested === LIST_ALIAS ? 'LIST' : requested;
  let operation: HttpOperation;
  let data: Record<string, unknown> = {};
  switch (method) {
    case 'HEAD':
      // HEAD never changes state: only the status endpoints (load balancers probe them) answer it.
      if (!HEAD_PATHS.has(canonicalPath(path, false))) throw new HttpError(405, 'unsupported operation: HEAD');
      operation = 'read';
      break;
    case 'GET': {
      data = queryData(query);
      // Vault reads `list` with Go's strconv.ParseBool (hvac sends list=True); anything else is a bare 400.
      const list = query?.get('list') ?? '';
      const listed = list === '' ? false : parseBool(list);
      if (listed === undefined) throw new HttpError(400);
      const help = query?.get('help') ?? '';
      delete data.list;
      delete data.help;
      // Any value but an empty one asks for help, as in Vault.
      if (help !== '') operation = 'help';
      else operation = listed ? 'list' : 'read';
      break;
    }
    case 'LIST':
      data = queryData(query);
      delete data.list;
      operation = 'list';
      break;
    case 'DELETE':
      data = queryData(query);
      operation = 'delete';
      break;
    case 'POST':
    case 'PUT':
      data = parseJsonBody(body);
      operation = 'update';
      break;
    case 'PATCH': {
      // Vault takes a PATCH only as a JSON merge patch (RFC 7396).
      const type = (headerValue(req, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
      if (type === '') throw badRequest('mime: no media type');
      if (type !== MERGE_PATCH) throw new HttpError(415, `PATCH requires Content-Type of ${MERGE_PATCH}, provided ${type.slice(0, 100)}`);
      data = parseJsonBody(body);
      operation = 'patch';
      break;
    }
    default:
      throw new HttpError(405, `unsupported method ${method.slice(0, 20)}`);
  }
  path = canonicalPath(path, operation === 'list');

  const ctx: RequestContext = { requestId, method, path, operation, data };
  const token = headerValue(req, 'x-vault-token') ?? bearer(headerValue(req, 'authorization'));
  if (token !== undefined && token !== '') ctx.rawToken = token;
  const remote = req.socket.remoteAddress;
  if (remote) ctx.remoteAddr = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  const ifNoneMatch = headerValue(req, 'if-none-match');
  if (ifNoneMatch !== undefined) ctx.ifNoneMatch = ifNoneMatch;
  const wrap = headerValue(req, 'x-vault-wrap-ttl');
  if (wrap !== undefined && wrap.trim() !== '') {
    let ms: number;
    try {
      ms = parseDurationMs(wrap.trim());
    } catch (err) {
      throw badRequest(`invalid X-Vault-Wrap-TTL: ${(err as Error).message}`);
    }
    if (ms > 0) {
      if (ms < 1000) throw badRequest('invalid X-Vault-Wrap-TTL: the wrapping ttl must be at least 1s');
      ctx.wrapTtlMs = ms;
    }
  }
  return ctx;
}

/** A `.` or `..` segment anywhere in a path. */
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

/** Status endpoints answered for HEAD (as for GET, without a body): load balancers probe them. */
const HEAD_PATHS = new Set(STATUS_PATHS.map((p) => `sys/${p}`));

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function bearer(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(value.trim());
  return m ? m[1].trim() : undefined;
}

const MERGE_PATCH = 'application/merge-patch+json';

/** Go's strconv.ParseBool: true, false, or undefined for anything else. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

function queryData(query: URLSearchParams | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!query) return out;
  for (const key of new Set(query.keys())) {
    const all = query.getAll(key);
    out[key] = all.length === 1 ? all[0] : all;
  }
  return out;
}

const NO_BODY = Buffer.alloc(0);

/** Reads the whole body; over the cap, drains (bounded) and answers 413. */
function readBody(req: IncomingMessage): Promise<Buffer> | Buffer {
  // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 6.3):
  // nothing to wait for, and Node discards the (empty) stream once the answer is sent.
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return NO_BODY;
  const declared = Number(req.headers['content-length'] ?? 0);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = declared > MAX_BODY_BYTES;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
      else if (size > MAX_DRAIN_BYTES) req.destroy();
    });
    req.on('end', () => {
      if (tooLarge) reject(new HttpError(413, `request body too large: the limit is ${MAX_BODY_BYTES} bytes`));
      else resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
    req.on('error', (err) => reject(err));
    req.on('close', () => {
      if (!req.complete) reject(new HttpError(400, 'request body was not received completely'));
    });
  });
}

function parseJsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  const text = body.toString('utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = parseJsonBounded(text);
  } catch (err) {
    throw badRequest(`failed to parse JSON input: ${(err as JsonInputError).message}`);
  }
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw badRequest('failed to parse JSON input: the request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

// ---------------------------------------------------------------------------
// Sending

function send(res: ServerResponse, ctx: RequestContext, reply: Reply): number {
  const headOnly = ctx.method === 'HEAD';
  if (reply.raw) return sendRaw(res, ctx, reply.raw);
  if (reply.empty) {
    res.writeHead(204, { 'Cache-Control': 'no-store' });
    res.end();
    return 204;
  }
  const status = reply.status ?? 200;
  const payload =
    reply.plain !== undefined
      ? reply.plain
      : {
          // A wrapped answer is a new response holding only wrap_info: Vault gives it no request id.
          request_id: reply.wrapInfo ? '' : ctx.requestId,
          lease_id: reply.leaseId ?? '',
          renewable: reply.renewable ?? false,
          lease_duration: reply.leaseDuration ?? 0,
          data: reply.data ?? null,
          wrap_info: reply.wrapInfo ?? null,
          warnings: reply.warnings ?? null,
          auth: reply.auth ?? null,
          mount_type: reply.mountType ?? '',
          ...reply.top,
        };
  writeJson(res, status, payload, headOnly);
  return status;
}

/**
 * A raw body (logical.HTTPRawBody). A 200 carries an ETag (a digest of the
 * body), and a GET whose If-None-Match names it is answered 304 without the
 * body: a resource server polling a status list pays for a change only. A
 * stream (server-sent events) stays open after its body until the client goes.
 */
function sendRaw(res: ServerResponse, ctx: RequestContext, raw: NonNullable<Reply['raw']>): number {
  const body = raw.body;
  if (raw.stream) {
    res.writeHead(raw.status, { 'Content-Type': raw.contentType, 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    if (ctx.method === 'HEAD') {
      res.end();
      return raw.status;
    }
    res.write(body);
    const stop = raw.stream((chunk) => {
      if (!res.writableEnded) res.write(chunk);
    });
    res.once('close', stop);
    return raw.status;
  }
  const headers: Record<string, string | number> = {
    'Content-Type': raw.contentType,
    'Content-Length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
    'Cache-Control': 'no-store',
  };
  if (raw.status === 200) {
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    headers.ETag = etag;
    const wanted = ctx.ifNoneMatch;
    if (wanted !== undefined && (ctx.method === 'GET' || ctx.method === 'HEAD') && wanted.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}`)) {
      res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-store' });
      res.end();
      return 304;
    }
  }
  res.writeHead(raw.status, headers);
  res.end(ctx.method === 'HEAD' ? undefined : body);
  return raw.status;
}

function writeJson(res: ServerResponse, status: number, payload: unknown, headOnly = false): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(headOnly ? undefined : text);
}

function sendError(res: ServerResponse, requestId: string, err: unknown, logger?: Logger): number {
  const e = translateError(err);
  if (e.status >= 500) {
    logger?.error('request failed', { request_id: requestId, error: errorChain(err), ...(err instanceof Error && err.stack ? { stack: err.stack } : {}) });
  }
  if (res.headersSent) {
    res.destroy();
    return e.status;
  }
  const headers: Record<string, string> = {};
  if (e.status === 413) headers.Connection = 'close';
  const text = JSON.stringify({ errors: e.errors });
  res.writeHead(e.status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(text)),
    'Cache-Control': 'no-store',
  });
  res.end(text);
  return e.status;
}

/**
 * Paths that can carry a secret (auth/token/lookup/<token> and kin, a lease id
 * in sys/leases/renew/<id>) are cut before they are logged or shown.
 */
function redactPath(path: string): string {
  return path.split('/').slice(0, clearSegments(path, true)).join('/');
}

