// The dev server's HTTP layer: the part of Vault's HTTP API the tvm workflow
// uses, so Vault clients work unchanged. One request goes through:
//   1. parse: path under /v1/, method -> operation, body (JSON, 1 MiB cap) or
//      query -> data, token (X-Vault-Token or Authorization: Bearer), wrap ttl;
//   2. route: sys/*, auth/token/*, or a mounted engine (longest prefix);
//   3. authenticate (unless the path is unauthenticated) and check the ACL for
//      the operation's capability (create vs update decided as Vault does);
//   4. handle, register a secret's lease, optionally wrap, and answer in
//      Vault's envelope ({"errors": [...]} for errors).

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDurationMs } from '../sdk/duration.ts';
import { describeType, isEngineError, showValue } from '../sdk/errors.ts';
import { JsonInputError, parseJsonBounded } from '../sdk/json.ts';
import {
  HTTP_CONTENT_TYPE,
  HTTP_RAW_BODY,
  HTTP_STATUS_CODE,
  type Clock,
  type LogicalRequest,
  type LogicalResponse,
  type Operation,
  type StoredSecret,
} from '../sdk/logical.ts';
import { addressAllowed } from './auth/cidr.ts';
import { lowerCaptures } from './auth/router.ts';
import { issueLoginToken } from './auth/login.ts';
import { lockedUsers, unlockUser, userLockoutData } from './auth/lockout.ts';
import { authMountInfo, type AuthTable } from './auth/table.ts';
import type { AuthRequest } from './auth/types.ts';
import { isLeaseError } from './expiration.ts';
import { effectiveMountLimits, leaseTtl, mountLeaseLimits } from './lease_ttl.ts';
import type { Entity, IdentityStore } from './identity.ts';
import { MountError, mountInfo, type Mount, type MountTable } from './mounts.ts';
import type { BufferedView } from './storage/buffer.ts';
import {
  checkParameters,
  checkWrapping,
  normalizePolicyName,
  PolicyParseError,
  ROOT_POLICY,
  type ACL,
  type AclOperation,
  type PolicyStore,
} from './policy.ts';
import type { Logger } from './server.ts';
import {
  authBlock,
  sanitizePolicies,
  SYSTEM_MAX_TTL_MS,
  TokenError,
  tokenDisplayName,
  tokenLookupData,
  type TokenEntry,
  type TokenStore,
} from './tokens.ts';
import type { LeaseEntry, StorageOp } from './types.ts';
import { LIST_ALIAS } from './list_method.ts';
import type { LeaseManager, ServerCore } from './context.ts';
import type { WrapInfo, WrappedResponse, WrappingStore } from './wrapping.ts';

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Past this much unread body the connection is dropped instead of drained. */
const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

export const VAULT_VERSION = '1.17.0+tvm';

/** An error with the HTTP status and the messages Vault would answer with. */
export class HttpError extends Error {
  readonly status: number;
  readonly errors: string[];
  /**
   * `listed`: an error Vault's core returned for an authenticated request
   * (an ACL denial, a backend's error other than an error response), which it
   * answers as a one-item error list: "1 error occurred:\n\t* <message>\n\n".
   */
  constructor(status: number, message?: string, options: { listed?: boolean } = {}) {
    super(message ?? `HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
    this.errors = message === undefined ? [] : [options.listed ? `1 error occurred:\n\t* ${message}\n\n` : message];
  }
}

const PERMISSION_DENIED = 'permission denied';
/** A missing or unknown token: Vault answers the bare words. */
const denied = (): HttpError => new HttpError(403, PERMISSION_DENIED);
/** A valid token the ACL refuses: Vault's core answers it as a list. */
const deniedByPolicy = (): HttpError => new HttpError(403, PERMISSION_DENIED, { listed: true });
const badRequest = (message: string): HttpError => new HttpError(400, message);
/** Vault's sentinels for a path or an operation no handler serves (the backend's own words are not passed on). */
const UNSUPPORTED_PATH = 'unsupported path';
const UNSUPPORTED_OPERATION = 'unsupported operation';

/**
 * An error a backend returned (rather than an error response), as Vault's core
 * answers it: a 404 and a 405 become its sentinels, and for an authenticated
 * request the error is listed. A 400 is an error response: its text as is.
 */
function returnedError(err: unknown, authenticated: boolean): HttpError {
  const e = translateError(err);
  if (e.status === 400 || e.errors.length === 0) return e;
  const message = e.status === 404 ? UNSUPPORTED_PATH : e.status === 405 ? UNSUPPORTED_OPERATION : e.message;
  return new HttpError(e.status, message, { listed: authenticated });
}

type HttpOperation = 'read' | 'list' | 'create' | 'update' | 'delete' | 'patch' | 'help';

/** One parsed request. */
export interface RequestContext {
  requestId: string;
  method: string;
  /** The path after /v1/, decoded, without a leading slash; lists end in `/`. */
  path: string;
  operation: HttpOperation;
  data: Record<string, unknown>;
  /** The raw X-Vault-Token / Bearer token, when given. */
  rawToken?: string;
  token?: TokenEntry;
  acl?: ACL;
  remoteAddr?: string;
  wrapTtlMs?: number;
  /** This request used up the token's last use: it is revoked after the answer. */
  lastUse?: boolean;
  /** A route (system, auth method or engine) served the path; unrouted paths are never logged whole. */
  routed?: boolean;
}

/** A handler's answer before it is put in the envelope. */
export interface Reply {
  status?: number;
  data?: Record<string, unknown> | null;
  auth?: Record<string, unknown> | null;
  leaseId?: string;
  leaseDuration?: number;
  renewable?: boolean;
  warnings?: string[] | null;
  /** Fields repeated at the top level, as Vault does for some legacy sys endpoints. */
  top?: Record<string, unknown>;
  /** A JSON body sent as is, without the envelope (sys/health, sys/seal-status). */
  plain?: unknown;
  /** A raw body (logical.HTTPRawBody). */
  raw?: { status: number; contentType: string; body: string | Uint8Array };
  /** 204 No Content. */
  empty?: boolean;
  /** The accessor of a token carried in the response (wrap_info.wrapped_accessor). */
  wrappedAccessor?: string;
  /** Whether wrapping may apply (false for unwrap itself and non-logical answers). */
  wrappable?: boolean;
  /** The envelope's mount_type. */
  mountType?: string;
  /** Set once the response was wrapped. */
  wrapInfo?: WrapInfo;
}

// ---------------------------------------------------------------------------
// Route table for sys/* and auth/token/*

type Auth = 'none' | 'token' | 'acl';

interface SystemRoute {
  pattern: RegExp;
  mountType: string;
  /** Operations the route answers; others get 405. */
  operations: HttpOperation[];
  /** none: no token; token: a valid token, no ACL on the path; acl: token and ACL (the default). */
  auth?: Auth;
  /** Paths needing sudo on top of the operation's capability. */
  sudo?: boolean;
  /** Decides create vs update for POST/PUT (as a backend's existence check). */
  exists?: (core: ServerCore, m: RegExpExecArray) => boolean;
  /** Captures that are names compared without case or surrounding space (policy names): made canonical before the ACL check. */
  caseInsensitive?: string[];
  handle: (core: ServerCore, ctx: RequestContext, m: RegExpExecArray) => Promise<Reply> | Reply;
}

const WRITE: HttpOperation[] = ['create', 'update'];

export function createRequestHandler(core: ServerCore): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = systemRoutes();
  return (req, res) => {
    void handleRequest(core, routes, req, res);
  };
}

async function handleRequest(core: ServerCore, routes: SystemRoute[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = core.logger ? performance.now() : 0;
  const requestId = randomUUID();
  let ctx: RequestContext | undefined;
  let status = 500;
  try {
    ctx = await parseRequest(req, requestId);
    const reply = await dispatch(core, routes, ctx);
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
  const body = await readBody(req);
  if (!rawPath.startsWith('/v1/')) throw new HttpError(404);
  let path: string;
  try {
    path = decodeURIComponent(rawPath.slice(4));
  } catch {
    throw badRequest('invalid path: malformed percent-encoding');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) throw badRequest('invalid path: control characters are not allowed');
  if (path.split('/').some((s) => s === '.' || s === '..')) throw badRequest('invalid path: "." and ".." segments are not allowed');

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

/** Status endpoints answered for HEAD (as for GET, without a body). */
const HEAD_PATHS = new Set(['sys/health', 'sys/seal-status', 'sys/leader', 'sys/init']);

/**
 * The one form of a request path that routing, the ACL check and the handler
 * all use: no leading slash, no repeated slashes, and a trailing slash only on
 * lists (`sys/mounts//victim/` is `sys/mounts/victim`). Names a route compares
 * without case are lower-cased later, by the route that knows them.
 */
export function canonicalPath(path: string, list: boolean): string {
  const out = path.replace(/\/{2,}/g, '/').replace(/^\//, '').replace(/\/$/, '');
  return list ? `${out}/` : out;
}

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

/** Reads the whole body; over the cap, drains (bounded) and answers 413. */
function readBody(req: IncomingMessage): Promise<Buffer> {
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
// Dispatch, authentication and ACL

const UNAUTHENTICATED_SYS = new Set(['sys/health', 'sys/seal-status', 'sys/leader', 'sys/init']);

async function dispatch(core: ServerCore, routes: SystemRoute[], ctx: RequestContext): Promise<Reply> {
  const { path } = ctx;
  if (isSystemPath(path)) {
    const named = canonicalNames(core, routes, path);
    if (named?.route) {
      // The canonical names replace the ones sent, for the ACL check and the handler alike.
      ctx.path = named.path;
      const m = named.route.pattern.exec(ctx.path);
      if (!m) throw badRequest('invalid name: empty once surrounding whitespace is removed');
      return runSystemRoute(core, ctx, named.route, m);
    }
    if (path.startsWith('auth/') && !path.startsWith('auth/token/')) return handleAuthMount(core, ctx);
    // Unknown system path: authenticate first so unauthenticated callers learn nothing.
    await authenticate(core, ctx);
    if (!ctx.acl!.root) {
      const op = aclOperation(ctx.operation);
      if (!ctx.acl!.check(path, op).allowed) throw deniedByPolicy();
    }
    // sys/, auth/token/ and identity/ are backends in Vault: a path none of their routes serves is the backend's "unsupported path".
    throw new HttpError(404, UNSUPPORTED_PATH, { listed: true });
  }
  return handleMount(core, ctx);
}

async function runSystemRoute(core: ServerCore, ctx: RequestContext, route: SystemRoute, m: RegExpExecArray): Promise<Reply> {
  ctx.routed = true;
  const auth = route.auth ?? 'acl';
  if (auth !== 'none') await authenticate(core, ctx);
  if (!route.operations.includes(ctx.operation)) {
    // The status endpoints are plain HTTP handlers in Vault: a bare 405.
    if (UNAUTHENTICATED_SYS.has(ctx.path)) throw new HttpError(405);
    throw new HttpError(405, UNSUPPORTED_OPERATION, { listed: ctx.token !== undefined });
  }
  if (auth === 'acl') {
    let op = aclOperation(ctx.operation);
    if (op === 'update' && route.exists && !route.exists(core, m)) op = 'create';
    authorize(ctx, ctx.path, op, route.sudo === true);
  }
  let reply: Reply;
  try {
    reply = await route.handle(core, ctx, m);
  } catch (err) {
    throw translateError(err);
  }
  reply.wrappable ??= true;
  return finishReply(core, ctx, { ...reply, mountType: route.mountType });
}

/**
 * A system path with the names its route compares without case or
 * surrounding space made canonical (policy names; AppRole and JWT role names
 * under their auth mount), and the system route that serves it. Null when no
 * system route or auth mount knows the path.
 */
function canonicalNames(core: ServerCore, routes: SystemRoute[], path: string): { path: string; route?: SystemRoute } | null {
  if (!isSystemPath(path)) return null;
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    return { route, path: route.caseInsensitive ? lowerCaptures(path, m, route.caseInsensitive, normalizePolicyName) : path };
  }
  if (path.startsWith('auth/') && !path.startsWith('auth/token/')) {
    const match = core.auth.match(path.slice('auth/'.length));
    if (match) return { path: `auth/${match.mount.entry.path}${match.mount.backend.canonicalPath(match.relPath)}` };
  }
  return null;
}

function isSystemPath(path: string): boolean {
  return path.startsWith('sys/') || path === 'sys' || path.startsWith('auth/') || path.startsWith('identity/');
}

/**
 * Vault's 404 for an unknown path. Only its first two segments are shown: a
 * path nothing serves may be a pasted lease id or token.
 */
function noRoute(path: string): HttpError {
  return new HttpError(404, `no handler for route ${showValue(unroutedPath(path))}. route entry not found.`);
}

/** A path no route served, as a message or a log line may show it. */
function unroutedPath(path: string): string {
  const parts = path.split('/');
  return parts.length > 2 ? `${parts.slice(0, 2).join('/')}/...` : path;
}

function aclOperation(op: HttpOperation): AclOperation {
  return op === 'help' ? 'read' : op;
}

/** Validates the caller's token; sets ctx.token and ctx.acl. Throws 403. */
async function authenticate(core: ServerCore, ctx: RequestContext): Promise<void> {
  if (ctx.token) return;
  if (ctx.rawToken === undefined) throw denied();
  const entry = core.tokens.lookup(ctx.rawToken);
  // Wrapping tokens are good for sys/wrapping/* only, which do not come here.
  if (!entry || entry.wrapping) throw denied();
  // A token bound to CIDR blocks (token_bound_cidrs of its login role) works only from inside them.
  if (entry.boundCidrs && !addressAllowed(entry.boundCidrs, ctx.remoteAddr)) throw denied();
  ctx.token = entry;
  ctx.acl = core.policies.acl(entry.policies);
  if (entry.numUses > 0 && (await core.tokens.use(entry))) ctx.lastUse = true;
}

/** Checks the capability (and sudo, parameters, wrapping bounds). Throws 403/400. */
function authorize(ctx: RequestContext, path: string, op: AclOperation, needSudo: boolean): void {
  const acl = ctx.acl!;
  if (acl.root) return;
  const check = acl.check(path, op);
  if (!check.allowed || (needSudo && !check.sudo)) throw deniedByPolicy();
  if (check.perms) {
    if (op === 'read' || op === 'create' || op === 'update' || op === 'patch') {
      if (checkParameters(check.perms, ctx.data) !== null) throw deniedByPolicy();
    }
    const wrapProblem = checkWrapping(check.perms, ctx.wrapTtlMs);
    if (wrapProblem) throw badRequest(wrapProblem);
  }
}

function isSudo(ctx: RequestContext, path: string, op: AclOperation): boolean {
  const acl = ctx.acl!;
  return acl.root || acl.check(path, op).sudo;
}

function globMatch(patterns: string[], path: string): boolean {
  for (const p of patterns) {
    if (p.endsWith('*') ? path.startsWith(p.slice(0, -1)) : path === p) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Mounted engines

async function handleMount(core: ServerCore, ctx: RequestContext): Promise<Reply> {
  const match = core.mounts.match(ctx.path);
  const special = match?.mount.backend.specialPaths();
  const unauthenticated = match !== null && globMatch(special!.unauthenticated, match.relPath);
  if (!unauthenticated) await authenticate(core, ctx);
  if (!match) {
    if (!ctx.acl!.root && !ctx.acl!.check(ctx.path, aclOperation(ctx.operation)).allowed) throw deniedByPolicy();
    throw noRoute(ctx.path);
  }
  const { mount, relPath } = match;
  const backend = mount.backend;
  if (ctx.operation === 'patch') throw new HttpError(405, UNSUPPORTED_OPERATION, { listed: !unauthenticated });
  // The engine's writes are held and made durable in one batch: with the lease
  // when it issues a secret (a crash leaves both or neither), else on their own.
  const view = core.mounts.buffered(mount);
  const request: LogicalRequest = {
    operation: ctx.operation as Operation,
    path: relPath,
    data: ctx.data,
    caller: callerOf(ctx),
    storage: view.storage,
    mountPoint: mount.entry.path,
    mountLimits: async () => effectiveMountLimits(mount.entry.config),
  };
  if (!unauthenticated) {
    let op = aclOperation(ctx.operation);
    if (ctx.operation === 'update') {
      // Vault's create vs update: the backend's existence check decides.
      const existence = await runEngine(() => backend.handleExistenceCheck(request));
      if (existence.checkFound && !existence.exists) {
        op = 'create';
        request.operation = 'create';
      }
    }
    authorize(ctx, ctx.path, op, globMatch(special!.root, relPath));
  }
  let response: LogicalResponse | null;
  try {
    response = await runRouted(ctx, () => backend.handleRequest(request));
  } catch (err) {
    // A refused request leaves nothing behind: its held writes go, and the engine's caches of them.
    core.mounts.invalidate(mount, view.take());
    throw returnedError(err, !unauthenticated);
  }
  if (ctx.operation === 'help') {
    return { plain: { help: response?.data?.help ?? '', see_also: null }, mountType: mount.entry.type };
  }
  if (!response?.secret) await core.mounts.commit(mount, view.take());
  return finishReply(core, ctx, await engineReply(core, ctx, mount, request, response, view));
}

function callerOf(ctx: RequestContext): LogicalRequest['caller'] {
  const caller: LogicalRequest['caller'] = { displayName: ctx.token?.displayName ?? '' };
  // A token from a login acts for its workload: the mount-qualified alias
  // (`approle:orders-service`) is the caller's identity, and so the `sub` of
  // what the engine issues. Vault's opaque entity id stays on the token.
  const identity = ctx.token?.subject || ctx.token?.entityId;
  if (identity) caller.entityId = identity;
  if (ctx.token) caller.tokenAccessor = ctx.token.accessor;
  if (ctx.remoteAddr) caller.remoteAddr = ctx.remoteAddr;
  if (ctx.token) caller.policies = ctx.token.policies;
  return caller;
}

// ---------------------------------------------------------------------------
// Auth methods (auth/<path>/ besides auth/token/)

async function handleAuthMount(core: ServerCore, ctx: RequestContext): Promise<Reply> {
  const match = core.auth.match(ctx.path.slice('auth/'.length));
  if (!match) {
    await authenticate(core, ctx);
    if (!ctx.acl!.root && !ctx.acl!.check(ctx.path, aclOperation(ctx.operation)).allowed) throw deniedByPolicy();
    throw noRoute(ctx.path);
  }
  const { mount } = match;
  const { backend, entry } = mount;
  // Names the method compares without case (AppRole and JWT role names) in their one form, before the ACL check.
  const relPath = backend.canonicalPath(match.relPath);
  ctx.path = `auth/${entry.path}${relPath}`;
  // Login is unauthenticated, as in Vault: a token sent with it is ignored.
  const unauthenticated = backend.unauthenticated(relPath);
  if (ctx.operation === 'patch') throw new HttpError(405, UNSUPPORTED_OPERATION, { listed: !unauthenticated });
  if (!unauthenticated) await authenticate(core, ctx);
  const request: AuthRequest = {
    operation: ctx.operation,
    path: relPath,
    data: ctx.data,
    storage: mount.storage,
    mount: {
      path: entry.path,
      accessor: entry.accessor,
      type: entry.type,
      maxLeaseTtlSeconds: entry.config.max_lease_ttl || Math.round(SYSTEM_MAX_TTL_MS / 1000),
    },
    ...(ctx.remoteAddr ? { remoteAddr: ctx.remoteAddr } : {}),
  };
  if (!unauthenticated) {
    let op = aclOperation(ctx.operation);
    if (ctx.operation === 'update' && (await runEngine(() => backend.exists(request))) === false) {
      op = 'create';
      request.operation = 'create';
    }
    authorize(ctx, ctx.path, op, false);
  }
  if (ctx.operation === 'help') {
    return { plain: { help: `The ${entry.type} auth method mounted at auth/${entry.path}.`, see_also: null }, mountType: entry.type };
  }
  let response: Awaited<ReturnType<typeof backend.handle>>;
  try {
    response = await runRouted(ctx, () => backend.handle(request));
  } catch (err) {
    throw returnedError(err, !unauthenticated);
  }
  if (response?.auth) {
    const issued = await runEngine(() =>
      issueLoginToken({ tokens: core.tokens, identity: core.identity, clock: core.clock }, mount, response.auth!),
    );
    const warnings = [...(response.warnings ?? []), ...issued.warnings];
    return finishReply(core, ctx, {
      // lease_duration is the ttl granted, counted from the token's creation.
      auth: authBlock(issued.entry, issued.id, issued.entry.creationTimeMs),
      warnings: warnings.length > 0 ? warnings : null,
      wrappedAccessor: issued.entry.accessor,
      mountType: entry.type,
      wrappable: true,
    });
  }
  const warnings = response?.warnings && response.warnings.length > 0 ? response.warnings : null;
  const data = response?.data;
  if (!data && !warnings) {
    if (ctx.operation === 'read' || ctx.operation === 'list') throw new HttpError(404);
    return { empty: true, mountType: entry.type };
  }
  if (ctx.operation === 'list' && !warnings && Array.isArray(data?.keys) && data.keys.length === 0) throw new HttpError(404);
  return finishReply(core, ctx, { data: data ?? null, warnings, mountType: entry.type, wrappable: true });
}

async function runEngine<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw translateError(err);
  }
}

/** Runs a backend call for ctx; unless the backend knew no route for the path, the request counts as routed. */
async function runRouted<T>(ctx: RequestContext, fn: () => Promise<T>): Promise<T> {
  try {
    const out = await runEngine(fn);
    ctx.routed = true;
    return out;
  } catch (err) {
    if ((err as HttpError).status !== 404) ctx.routed = true;
    throw err;
  }
}

async function engineReply(
  core: ServerCore,
  ctx: RequestContext,
  mount: Mount,
  request: LogicalRequest,
  response: LogicalResponse | null,
  view: BufferedView,
): Promise<Reply> {
  const mountType = mount.entry.type;
  if (response === null) {
    if (ctx.operation === 'read' || ctx.operation === 'list') throw new HttpError(404);
    return { empty: true, mountType };
  }
  const data = response.data;
  if (data && data[HTTP_RAW_BODY] !== undefined) {
    const body = data[HTTP_RAW_BODY];
    const status = typeof data[HTTP_STATUS_CODE] === 'number' ? (data[HTTP_STATUS_CODE] as number) : 200;
    const contentType = typeof data[HTTP_CONTENT_TYPE] === 'string' ? (data[HTTP_CONTENT_TYPE] as string) : 'application/json';
    return {
      raw: { status, contentType, body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body) },
      mountType,
    };
  }
  const warnings = response.warnings && response.warnings.length > 0 ? response.warnings : null;
  if (ctx.operation === 'list' && !warnings) {
    // Vault answers a list with no keys as not found.
    const keys = data?.keys;
    if (!data || Object.keys(data).length === 0 || (Array.isArray(keys) && keys.length === 0)) throw new HttpError(404);
  }
  const reply: Reply = { data: data ?? null, warnings, mountType, wrappable: true };
  if (response.secret) {
    const { lease, warnings: capped } = await registerLease(core, ctx, mount, request, response, view.take());
    if (capped.length > 0) reply.warnings = [...(reply.warnings ?? []), ...capped];
    reply.leaseId = lease.leaseId;
    reply.leaseDuration = Math.round(lease.secret.ttlMs / 1000);
    reply.renewable = lease.secret.renewable;
  } else if (
    (ctx.operation === 'update' || ctx.operation === 'create' || ctx.operation === 'delete') &&
    (!data || Object.keys(data).length === 0) &&
    !warnings
  ) {
    return { empty: true, mountType };
  }
  return reply;
}

/**
 * Registers an issued secret with the expiration manager (durable before the
 * answer). If that fails, the secret is revoked through the engine and the
 * caller gets a 500: nothing is handed out without a lease.
 */
async function registerLease(
  core: ServerCore,
  ctx: RequestContext,
  mount: Mount,
  request: LogicalRequest,
  response: LogicalResponse,
  writes: StorageOp[],
): Promise<{ lease: LeaseEntry; warnings: string[] }> {
  const out = response.secret!;
  const now = core.clock();
  // The lease's ttl as Vault's core sets it: the engine's, within the mount's max lease ttl.
  const { ttlMs, warnings } = leaseTtl({
    incrementMs: 0,
    ttlMs: out.ttlMs,
    maxTtlMs: out.maxTtlMs,
    startMs: now,
    nowMs: now,
    mount: mountLeaseLimits(mount.entry.config),
  });
  const secret: StoredSecret = {
    type: out.type,
    internalData: out.internalData,
    ttlMs,
    maxTtlMs: out.maxTtlMs,
    renewable: out.renewable,
    issueTimeMs: out.issueTimeMs ?? now,
  };
  try {
    const lease = await core.leases.register({
      mountPoint: mount.entry.path,
      path: request.path,
      secret,
      clientTokenId: ctx.token?.hash ?? '',
      writes,
    });
    return { lease, warnings };
  } catch (err) {
    core.logger?.error('registering a lease failed; revoking the secret', { mount: mount.entry.path, error: errorChain(err) });
    // The register failed before anything was written (it discarded the engine's writes);
    // revoking lists the jti, in case the token left this process some other way.
    const undo = core.mounts.buffered(mount);
    try {
      await mount.backend.handleRequest({ ...request, storage: undo.storage, operation: 'revoke', data: {}, secret });
      await core.mounts.commit(mount, undo.take());
    } catch (revokeErr) {
      core.logger?.error('revoking an unregistered secret failed', { mount: mount.entry.path, error: errorMessage(revokeErr) });
    }
    throw new HttpError(500, 'failed to register the lease; the secret was revoked');
  }
}

/** Applies response wrapping when asked for. */
async function finishReply(core: ServerCore, ctx: RequestContext, reply: Reply): Promise<Reply> {
  if (ctx.wrapTtlMs === undefined || !reply.wrappable || reply.empty || reply.raw || reply.plain !== undefined) return reply;
  const wrapped: WrappedResponse = {
    data: reply.data ?? null,
    auth: reply.auth ?? null,
    lease_id: reply.leaseId ?? '',
    lease_duration: reply.leaseDuration ?? 0,
    renewable: reply.renewable ?? false,
    warnings: reply.warnings ?? null,
    mount_type: reply.mountType ?? '',
  };
  const info = await core.wrapping.wrap(wrapped, ctx.wrapTtlMs, ctx.path.replace(/\/$/, ''), reply.wrappedAccessor);
  return { wrapInfo: info, mountType: reply.mountType ?? '' };
}

// ---------------------------------------------------------------------------
// Sending

function send(res: ServerResponse, ctx: RequestContext, reply: Reply): number {
  const headOnly = ctx.method === 'HEAD';
  if (reply.raw) {
    const body = reply.raw.body;
    res.writeHead(reply.raw.status, {
      'Content-Type': reply.raw.contentType,
      'Content-Length': typeof body === 'string' ? Buffer.byteLength(body) : body.length,
      'Cache-Control': 'no-store',
    });
    res.end(headOnly ? undefined : body);
    return reply.raw.status;
  }
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

/** Maps any error to the status and message Vault would answer with; internals become a bare 500. */
export function translateError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (isEngineError(err)) return new HttpError(err.status, err.message);
  if (err instanceof TokenError || err instanceof MountError) return new HttpError(err.status, err.message);
  if (err instanceof PolicyParseError) return new HttpError(400, err.message);
  if (isLeaseError(err)) {
    return err.status >= 500 && err.code !== 'ERR_EXPIRATION_STOPPED'
      ? new HttpError(500, 'internal error')
      : new HttpError(err.status, err.message);
  }
  return new HttpError(500, 'internal error');
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An error's message and its causes', outermost first (`a: b: c`), bounded. */
function errorChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 8 && e !== undefined && e !== null; i++) {
    parts.push(errorMessage(e).slice(0, 500));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}

/**
 * Paths that can carry a secret (auth/token/lookup/<token> and kin, a lease id
 * in sys/leases/renew/<id>) are cut before they are logged or shown.
 */
function redactPath(path: string): string {
  if (
    path.startsWith('auth/token/') ||
    path.startsWith('sys/wrapping/') ||
    path.startsWith('sys/leases/') ||
    /^sys\/(renew|revoke|revoke-prefix)\//.test(path)
  ) {
    return path.split('/').slice(0, 3).join('/');
  }
  return path;
}

// ---------------------------------------------------------------------------
// Field helpers for sys and token handlers

function stringField(data: Record<string, unknown>, name: string, required = false): string | undefined {
  const v = data[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw badRequest(`missing required field ${name}`);
    return undefined;
  }
  // The field may hold a token, an accessor or a wrapping token: its value is never shown, only its type.
  if (typeof v !== 'string') throw badRequest(`invalid ${name}: expected a string, got ${describeType(v)}`);
  return v;
}

function durationField(data: Record<string, unknown>, name: string): number | undefined {
  const v = data[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw badRequest(`invalid ${name}: expected a duration such as "90s", "1h" or integer seconds, got ${describeType(v)}`);
  }
  try {
    return parseDurationMs(v);
  } catch (err) {
    throw badRequest(`invalid ${name}: ${(err as Error).message}`);
  }
}

function boolField(data: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const v = data[name];
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 1) return true;
  if (v === 'false' || v === '0' || v === 0) return false;
  throw badRequest(`invalid ${name}: expected true or false`);
}

function intField(data: Record<string, unknown>, name: string, fallback: number): number {
  const v = data[name];
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw badRequest(`invalid ${name}: expected a non-negative integer`);
  return n;
}

function stringListField(data: Record<string, unknown>, name: string): string[] | undefined {
  const v = data[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? [] : v.split(',').map((s) => s.trim());
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw badRequest(`invalid ${name}: expected a list of strings`);
}

function stringMapField(data: Record<string, unknown>, name: string): Record<string, string> | null {
  const v = data[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`invalid ${name}: expected an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string') throw badRequest(`invalid ${name}.${showValue(k, 40)}: expected a string, got ${describeType(val)}`);
    out[k] = val;
  }
  return Object.keys(out).length > 0 ? out : null;
}

function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

// ---------------------------------------------------------------------------
// sys/* and auth/token/* handlers

let builtRoutes: SystemRoute[] | undefined;

/** The sys/* and auth/token/* route table (built once). */
function systemRoutes(): SystemRoute[] {
  builtRoutes ??= buildSystemRoutes();
  return builtRoutes;
}

function buildSystemRoutes(): SystemRoute[] {
  const sys = (
    pattern: string,
    operations: HttpOperation[],
    handle: SystemRoute['handle'],
    extra: Partial<SystemRoute> = {},
  ): SystemRoute => ({ pattern: new RegExp(`^${pattern}$`, 'd'), mountType: 'system', operations, handle, ...extra });
  const ident = (
    pattern: string,
    operations: HttpOperation[],
    handle: SystemRoute['handle'],
  ): SystemRoute => ({ pattern: new RegExp(`^${pattern}$`), mountType: 'identity', operations, handle });
  const tok = (
    pattern: string,
    operations: HttpOperation[],
    handle: SystemRoute['handle'],
    extra: Partial<SystemRoute> = {},
  ): SystemRoute => ({ pattern: new RegExp(`^auth/token/${pattern}$`), mountType: 'token', operations, handle, ...extra });

  return [
    // Status endpoints, unauthenticated, answered without the envelope.
    sys('sys/health', ['read'], (core) => ({ plain: healthBody(core) }), { auth: 'none' }),
    sys('sys/seal-status', ['read'], (core) => ({ plain: sealStatusBody(core) }), { auth: 'none' }),
    sys(
      'sys/leader',
      ['read'],
      () => ({
        plain: {
          ha_enabled: false,
          is_self: false,
          active_time: '0001-01-01T00:00:00Z',
          leader_address: '',
          leader_cluster_address: '',
          performance_standby: false,
          performance_standby_last_remote_wal: 0,
        },
      }),
      { auth: 'none' },
    ),
    sys('sys/init', ['read'], () => ({ plain: { initialized: true } }), { auth: 'none' }),

    // Mounts.
    sys('sys/internal/ui/mounts', ['read'], (core, ctx) => uiMounts(core, ctx), { auth: 'none' }),
    sys('sys/internal/ui/mounts/(?<path>.+)', ['read'], (core, ctx, m) => uiMount(core, ctx, m.groups!.path), { auth: 'token' }),
    sys('sys/mounts', ['read'], (core) => listMounts(core)),
    sys('sys/mounts/(?<path>.+?)/tune', ['read', 'update'], (core, ctx, m) => tuneMount(core, ctx, m.groups!.path)),
    sys('sys/mounts/(?<path>.+)', ['read', 'update', 'delete'], (core, ctx, m) => mountPath(core, ctx, m.groups!.path)),
    sys('sys/auth', ['read'], (core) => listAuth(core)),
    sys('sys/auth/(?<path>.+?)/tune', ['read', 'update'], (core, ctx, m) => tuneAuth(core, ctx, m.groups!.path), { sudo: true }),
    sys('sys/auth/(?<path>.+)', ['read', 'update', 'delete'], (core, ctx, m) => authPath(core, ctx, m.groups!.path), { sudo: true }),

    // User lockout (Vault 1.13+): the locked aliases by mount accessor, and unlock.
    sys('sys/locked-users', ['read'], (core, ctx) => ({ data: lockedUsers(core.auth, stringField(ctx.data, 'mount_accessor')) })),
    sys('sys/locked-users/(?<accessor>.+?)/unlock/(?<alias>.+)', WRITE, (core, ctx, m) => {
      unlockUser(core.auth, m.groups!.accessor, m.groups!.alias);
      return { empty: true };
    }),

    // Identity (read only: entities are created by logins).
    ident('identity/entity/id/?', ['list'], (core) => {
      // key_info: each entity's name and aliases, as Vault's listing has them.
      const keys = core.identity.ids();
      const keyInfo: Record<string, unknown> = {};
      for (const id of keys) {
        const entity = core.identity.get(id);
        if (!entity) continue;
        keyInfo[id] = {
          name: entity.name,
          aliases: entity.aliases.map((a) => ({ id: a.id, mount_accessor: a.mount_accessor, mount_path: a.mount_path, mount_type: a.mount_type, name: a.name })),
        };
      }
      return { data: { keys, key_info: keyInfo } };
    }),
    ident('identity/entity/id/(?<id>[^/]+)', ['read'], (core, ctx, m) => {
      const entity = core.identity.get(m.groups!.id);
      if (!entity) throw new HttpError(404);
      return { data: entityData(entity) };
    }),

    // Policies.
    sys('sys/policies/acl/?', ['list'], (core) => ({ data: { keys: core.policies.names() } })),
    sys('sys/policies/acl/(?<name>[^/]+)', ['read', 'create', 'update', 'delete'], (core, ctx, m) => policyPath(core, ctx, m.groups!.name, false), {
      exists: (core, m) => core.policies.has(m.groups!.name),
      caseInsensitive: ['name'],
    }),
    sys('sys/policy/?', ['read', 'list'], (core) => {
      const names = core.policies.names();
      return { data: { keys: names, policies: names }, top: { keys: names, policies: names } };
    }),
    sys('sys/policy/(?<name>[^/]+)', ['read', 'create', 'update', 'delete'], (core, ctx, m) => policyPath(core, ctx, m.groups!.name, true), {
      exists: (core, m) => core.policies.has(m.groups!.name),
      caseInsensitive: ['name'],
    }),
    sys('sys/capabilities-self', WRITE, (core, ctx) => capabilities(core, ctx.acl!, ctx.data)),
    sys('sys/capabilities', WRITE, (core, ctx) => {
      const entry = core.tokens.lookup(stringField(ctx.data, 'token', true)!);
      if (!entry) throw badRequest('invalid token');
      return capabilities(core, core.policies.acl(entry.policies), ctx.data);
    }),
    sys('sys/capabilities-accessor', WRITE, (core, ctx) => {
      const entry = core.tokens.lookupAccessor(stringField(ctx.data, 'accessor', true)!);
      if (!entry) throw badRequest('invalid accessor');
      return capabilities(core, core.policies.acl(entry.policies), ctx.data);
    }),

    // Leases (and the legacy sys/renew, sys/revoke, sys/revoke-prefix aliases).
    sys('sys/leases/lookup', WRITE, (core, ctx) => leaseLookup(core, ctx)),
    sys('sys/leases/lookup/(?<prefix>.*)', ['list'], (core, ctx, m) => leaseList(core, m.groups!.prefix), { sudo: true }),
    sys('sys/(?:leases/)?renew(?:/(?<id>.+))?', WRITE, (core, ctx, m) => leaseRenew(core, ctx, m.groups?.id)),
    sys('sys/(?:leases/)?revoke(?:/(?<id>.+))?', WRITE, (core, ctx, m) => leaseRevoke(core, ctx, m.groups?.id)),
    sys('sys/(?:leases/)?revoke-prefix/(?<prefix>.+)', WRITE, async (core, ctx, m) => {
      await core.leases.revokePrefix(m.groups!.prefix);
      return { empty: true };
    }, { sudo: true }),

    // Response wrapping.
    sys('sys/wrapping/unwrap', WRITE, (core, ctx) => unwrap(core, ctx), { auth: 'none' }),
    sys('sys/wrapping/lookup', WRITE, (core, ctx) => {
      const id = stringField(ctx.data, 'token') ?? ctx.rawToken;
      if (!id) throw badRequest('missing required field token');
      return { data: core.wrapping.lookup(id), wrappable: false };
    }, { auth: 'none' }),
    sys('sys/wrapping/wrap', WRITE, (core, ctx) => {
      if (ctx.wrapTtlMs === undefined) throw badRequest('endpoint requires response wrapping to be used');
      return { data: { ...ctx.data } };
    }),

    // The token store.
    tok('create', WRITE, (core, ctx) => createToken(core, ctx, false)),
    tok('create-orphan', WRITE, (core, ctx) => createToken(core, ctx, true)),
    tok('lookup-self', ['read', 'update'], (core, ctx) => ({
      data: tokenLookupData(ctx.token!, ctx.rawToken!, core.clock()),
    })),
    tok('lookup', ['update'], (core, ctx) => {
      // Without a token field, the caller's own token is looked up (Vault's).
      const id = stringField(ctx.data, 'token') ?? ctx.rawToken!;
      const entry = core.tokens.lookup(id);
      if (!entry || entry.wrapping) throw new HttpError(403, 'bad token');
      return { data: tokenLookupData(entry, id, core.clock()) };
    }),
    tok('lookup-accessor', ['update'], (core, ctx) => {
      const entry = core.tokens.lookupAccessor(stringField(ctx.data, 'accessor', true)!);
      // The token store returns this one as an error, not an error response: Vault lists it.
      if (!entry) throw new HttpError(400, 'invalid accessor', { listed: true });
      return { data: tokenLookupData(entry, '', core.clock()) };
    }),
    tok('renew-self', ['update'], (core, ctx) => renewToken(core, ctx, ctx.token!, ctx.rawToken!)),
    tok('renew', ['update'], (core, ctx) => {
      const id = stringField(ctx.data, 'token', true)!;
      const entry = core.tokens.lookup(id);
      if (!entry || entry.wrapping) throw badRequest('invalid token');
      return renewToken(core, ctx, entry, id);
    }),
    tok('revoke-self', ['update'], async (core, ctx) => {
      await core.tokens.revoke(ctx.token!.hash);
      return { empty: true };
    }),
    tok('revoke', ['update'], async (core, ctx) => {
      const entry = core.tokens.lookup(stringField(ctx.data, 'token', true)!);
      if (entry) await core.tokens.revoke(entry.hash);
      return { empty: true };
    }),
    tok('revoke-accessor', ['update'], async (core, ctx) => {
      const entry = core.tokens.lookupAccessor(stringField(ctx.data, 'accessor', true)!);
      if (entry) await core.tokens.revoke(entry.hash);
      return { empty: true };
    }),
    tok('accessors/?', ['list'], (core) => ({ data: { keys: core.tokens.accessors() } }), { sudo: true }),
  ];
}

function healthBody(core: ServerCore): Record<string, unknown> {
  return {
    initialized: true,
    sealed: false,
    standby: false,
    performance_standby: false,
    replication_performance_mode: 'disabled',
    replication_dr_mode: 'disabled',
    server_time_utc: Math.floor(core.clock() / 1000),
    version: VAULT_VERSION,
    enterprise: false,
    cluster_name: core.clusterName,
    cluster_id: core.clusterId,
    echo_duration_ms: 0,
    clock_skew_ms: 0,
  };
}

function sealStatusBody(core: ServerCore): Record<string, unknown> {
  return {
    type: core.sealType,
    initialized: true,
    sealed: false,
    t: 1,
    n: 1,
    progress: 0,
    nonce: '',
    version: VAULT_VERSION,
    build_date: '2026-01-01T00:00:00Z',
    migration: false,
    cluster_name: core.clusterName,
    cluster_id: core.clusterId,
    recovery_seal: false,
    storage_type: core.storageType,
  };
}

function systemMountInfo(core: ServerCore): Record<string, unknown> {
  const ids = core.mounts.systemIds.system;
  return {
    accessor: ids.accessor,
    config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false, passthrough_request_headers: ['Accept'] },
    description: 'system endpoints used for control, policy and debugging',
    external_entropy_access: false,
    local: false,
    options: null,
    plugin_version: '',
    running_plugin_version: '',
    running_sha256: '',
    seal_wrap: true,
    type: 'system',
    uuid: ids.uuid,
  };
}

function tokenMountInfo(core: ServerCore): Record<string, unknown> {
  const ids = core.mounts.systemIds.token;
  return {
    accessor: ids.accessor,
    config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false, token_type: 'default-service' },
    description: 'token based credentials',
    external_entropy_access: false,
    local: false,
    options: null,
    plugin_version: '',
    running_plugin_version: '',
    running_sha256: '',
    seal_wrap: false,
    type: 'token',
    uuid: ids.uuid,
  };
}

function listMounts(core: ServerCore): Reply {
  const data: Record<string, unknown> = { 'sys/': systemMountInfo(core) };
  for (const m of core.mounts.list()) data[m.entry.path] = mountInfo(m.entry);
  return { data, top: data };
}

function listAuth(core: ServerCore): Reply {
  const data: Record<string, unknown> = { 'token/': tokenMountInfo(core) };
  for (const m of core.auth.list()) data[m.entry.path] = authMountInfo(m.entry);
  return { data, top: data };
}

function authMountPath(raw: string): string {
  return `${raw.replace(/^\/+/, '').replace(/\/+$/, '')}/`;
}

async function authPath(core: ServerCore, ctx: RequestContext, rawPath: string): Promise<Reply> {
  const path = authMountPath(rawPath);
  if (ctx.operation === 'read') {
    if (path === 'token/') return { data: tokenMountInfo(core), top: tokenMountInfo(core) };
    const mount = core.auth.get(path);
    if (!mount) throw badRequest(`No auth engine at ${path}`);
    return { data: authMountInfo(mount.entry), top: authMountInfo(mount.entry) };
  }
  if (ctx.operation === 'delete') {
    if (path === 'token/') throw badRequest('token credential backend cannot be disabled');
    await core.auth.disable(path, async (mount) => {
      // Everything the method issued goes: its tokens, their children and their leases.
      await core.tokens.revokeByPathPrefix(`auth/${mount.entry.path}`);
      await core.identity.dropMountAliases(mount.entry.accessor);
    });
    return { empty: true };
  }
  await core.auth.enable(mountInput(ctx.data, rawPath));
  return { empty: true };
}

/** The body of POST sys/mounts/<path> and sys/auth/<path>: Vault's mount input, checked. */
function mountInput(d: Record<string, unknown>, rawPath: string) {
  let type = stringField(d, 'type', true)!;
  const pluginName = stringField(d, 'plugin_name');
  if (type === 'plugin' && pluginName) type = pluginName;
  const config = d.config;
  if (config !== undefined && config !== null && (typeof config !== 'object' || Array.isArray(config))) {
    throw badRequest('invalid config: expected an object');
  }
  return {
    path: rawPath,
    type,
    description: stringField(d, 'description') ?? '',
    config: (config ?? {}) as Record<string, unknown>,
    // Vault stores options absent from the call as {} and an explicit null as null.
    options: d.options === undefined ? {} : d.options === null ? null : (stringMapField(d, 'options') ?? {}),
    local: boolField(d, 'local', false),
    seal_wrap: boolField(d, 'seal_wrap', false),
    external_entropy_access: boolField(d, 'external_entropy_access', false),
  };
}

/** sys/auth/<path>/tune and sys/mounts/auth/<path>/tune. */
async function tuneAuth(core: ServerCore, ctx: RequestContext, rawPath: string): Promise<Reply> {
  const path = authMountPath(rawPath);
  const systemTtl = Math.round(SYSTEM_MAX_TTL_MS / 1000);
  if (path === 'token/') {
    if (ctx.operation !== 'read') throw badRequest('the token auth method cannot be tuned on this server');
    return tuneData({
      default_lease_ttl: systemTtl,
      max_lease_ttl: systemTtl,
      force_no_cache: false,
      token_type: 'default-service',
      description: 'token based credentials',
    });
  }
  const mount = core.auth.get(path);
  if (!mount) throw badRequest(`No auth engine at ${path}`);
  if (ctx.operation === 'read') {
    const { config, description, options } = mount.entry;
    return tuneData({
      default_lease_ttl: config.default_lease_ttl || systemTtl,
      max_lease_ttl: config.max_lease_ttl || systemTtl,
      force_no_cache: config.force_no_cache,
      token_type: 'default-service',
      description,
      ...optionsField(options),
      ...userLockoutData(mount.entry.user_lockout_config),
    });
  }
  const tokenType = ctx.data.token_type;
  if (typeof tokenType === 'string' && tokenType !== '' && !['default-service', 'service', 'default'].includes(tokenType)) {
    throw badRequest(`invalid token_type ${JSON.stringify(tokenType)}: this server issues service tokens only`);
  }
  await core.auth.tune(path, {
    description: ctx.data.description,
    default_lease_ttl: ctx.data.default_lease_ttl,
    max_lease_ttl: ctx.data.max_lease_ttl,
    user_lockout_config: ctx.data.user_lockout_config,
  });
  return { empty: true };
}

/** An entity as `identity/entity/id/<id>` shows it. */
function entityData(entity: Entity): Record<string, unknown> {
  return {
    // This server keeps no custom alias metadata, no local aliases and merges no entities.
    aliases: entity.aliases.map((a) => ({ ...a, custom_metadata: null, local: false, merged_from_canonical_ids: null })),
    creation_time: entity.creation_time,
    direct_group_ids: [],
    disabled: entity.disabled,
    group_ids: [],
    id: entity.id,
    inherited_group_ids: [],
    last_update_time: entity.last_update_time,
    merged_entity_ids: null,
    metadata: entity.metadata,
    name: entity.name,
    namespace_id: 'root',
    policies: entity.policies,
  };
}

function uiMounts(core: ServerCore, ctx: RequestContext): Reply {
  // Only mounts the token can reach are listed (none without a token).
  const secret: Record<string, unknown> = {};
  const auth: Record<string, unknown> = {};
  const entry = ctx.rawToken ? core.tokens.lookup(ctx.rawToken) : null;
  if (entry && !entry.wrapping) {
    const acl = core.policies.acl(entry.policies);
    if (acl.hasMountAccess('sys/')) secret['sys/'] = systemMountInfo(core);
    for (const m of core.mounts.list()) {
      if (acl.hasMountAccess(m.entry.path)) secret[m.entry.path] = { ...mountInfo(m.entry) };
    }
    if (acl.hasMountAccess('auth/token/')) auth['token/'] = tokenMountInfo(core);
    for (const m of core.auth.list()) {
      if (acl.hasMountAccess(`auth/${m.entry.path}`)) auth[m.entry.path] = authMountInfo(m.entry);
    }
  }
  return { data: { secret, auth } };
}

function uiMount(core: ServerCore, ctx: RequestContext, rawPath: string): Reply {
  const path = rawPath.replace(/^\/+/, '');
  const acl = ctx.acl!;
  // Vault's words for a path the token cannot reach; the path is shown as an unrouted one is (it may be a pasted secret).
  const refused = (): HttpError => {
    const parts = path.replace(/\/+$/, '').split('/');
    const shown = parts.length > 2 ? `${parts.slice(0, 2).join('/')}/...` : `${parts.join('/')}/`;
    return new HttpError(403, `preflight capability check returned 403, please ensure client's policies grant access to path ${showValue(shown)}`);
  };
  if (path === 'sys' || path.startsWith('sys/')) {
    if (!acl.root) throw refused();
    return { data: { ...systemMountInfo(core), path: 'sys/' } };
  }
  if (path === 'auth/token' || path.startsWith('auth/token/')) {
    if (!acl.hasMountAccess('auth/token/')) throw refused();
    return { data: { ...tokenMountInfo(core), path: 'auth/token/' } };
  }
  if (path.startsWith('auth/')) {
    const found = core.auth.match(path.slice('auth/'.length));
    if (!found || !acl.hasMountAccess(`auth/${found.mount.entry.path}`)) throw refused();
    return { data: { ...authMountInfo(found.mount.entry), path: `auth/${found.mount.entry.path}` } };
  }
  const match = core.mounts.match(path);
  // Unknown mounts and mounts without access both answer 403, so the path cannot probe for mounts.
  if (!match || !acl.hasMountAccess(match.mount.entry.path)) throw refused();
  return { data: { ...mountInfo(match.mount.entry), path: match.mount.entry.path } };
}

async function mountPath(core: ServerCore, ctx: RequestContext, rawPath: string): Promise<Reply> {
  if (ctx.operation === 'read') {
    const path = rawPath.replace(/^\/+/, '').replace(/\/*$/, '/');
    if (path === 'sys/') return { data: systemMountInfo(core), top: systemMountInfo(core) };
    // Auth methods are mounts too: sys/mounts/auth/<path> reads one (the api client's Sys().GetAuth, used by Terraform).
    const authMount = path.startsWith('auth/') ? core.auth.get(path.slice('auth/'.length)) : undefined;
    const auth = path === 'auth/token/' ? tokenMountInfo(core) : authMount ? authMountInfo(authMount.entry) : undefined;
    if (auth) return { data: auth, top: auth };
    const mount = core.mounts.get(path);
    // Vault's wording: the Terraform provider recognises a missing mount by it.
    if (!mount) throw badRequest(`No secret engine mount at ${path}`);
    // Like the listing, the mount's fields are repeated at the top level (Vault's legacy shape).
    return { data: mountInfo(mount.entry), top: mountInfo(mount.entry) };
  }
  if (ctx.operation === 'delete') {
    const path = rawPath.replace(/^\/+/, '').replace(/\/*$/, '/');
    if (path === 'sys/' || path.startsWith('auth/') || path === 'cubbyhole/' || path === 'identity/') {
      throw badRequest(`cannot unmount ${JSON.stringify(path)}`);
    }
    await core.mounts.unmount(path, async (mount) => {
      await core.leases.revokeByMount(mount.entry.path);
    });
    return { empty: true };
  }
  await core.mounts.mount(mountInput(ctx.data, rawPath));
  return { empty: true };
}

async function tuneMount(core: ServerCore, ctx: RequestContext, rawPath: string): Promise<Reply> {
  const path = rawPath.replace(/^\/+/, '').replace(/\/*$/, '/');
  if (path.startsWith('auth/')) return tuneAuth(core, ctx, path.slice('auth/'.length));
  const mount = core.mounts.get(path);
  if (!mount) throw badRequest(`no mount at ${JSON.stringify(path)}`);
  if (ctx.operation === 'read') {
    const { config, description, options } = mount.entry;
    return tuneData({
      default_lease_ttl: config.default_lease_ttl || Math.round(SYSTEM_MAX_TTL_MS / 1000),
      max_lease_ttl: config.max_lease_ttl || Math.round(SYSTEM_MAX_TTL_MS / 1000),
      force_no_cache: config.force_no_cache,
      description,
      ...optionsField(options),
    });
  }
  await core.mounts.tune(path, {
    description: ctx.data.description,
    default_lease_ttl: ctx.data.default_lease_ttl,
    max_lease_ttl: ctx.data.max_lease_ttl,
  });
  return { empty: true };
}

/** A tune read: Vault repeats the fields at the top level (its legacy shape). */
function tuneData(data: Record<string, unknown>): Reply {
  return { data, top: data };
}

/** A tune read shows a mount's options only when it has some. */
function optionsField(options: Record<string, string> | null): { options?: Record<string, string> } {
  return options && Object.keys(options).length > 0 ? { options } : {};
}

async function policyPath(core: ServerCore, ctx: RequestContext, rawName: string, legacy: boolean): Promise<Reply> {
  // Already canonical (the route made it so before the ACL check); normalising again is idempotent.
  const name = normalizePolicyName(rawName);
  switch (ctx.operation) {
    case 'read': {
      // root is no stored policy, but Vault answers it (with no rules).
      if (name === ROOT_POLICY) {
        if (legacy) return { data: { name, rules: '' }, top: { name, rules: '' } };
        return { data: { name, policy: '' } };
      }
      const policy = core.policies.get(name);
      if (!policy) throw new HttpError(404);
      if (legacy) {
        const data = { name: policy.name, rules: policy.raw };
        return { data, top: data };
      }
      return { data: { name: policy.name, policy: policy.raw } };
    }
    case 'delete':
      await core.policies.delete(name);
      return { empty: true };
    default: {
      const text = ctx.data.policy ?? (legacy ? ctx.data.rules : undefined);
      if (typeof text !== 'string' || text.trim() === '') {
        throw badRequest(`'${legacy ? 'rules' : 'policy'}' parameter not supplied or empty`);
      }
      await core.policies.put(name, text);
      if (legacy && ctx.data.policy === undefined) return { data: null, warnings: ["'rules' is deprecated, please use 'policy' instead"] };
      return { empty: true };
    }
  }
}

/** What the ACL allows on each path, in the canonical form the router would check (so the answer is true). */
function capabilities(core: ServerCore, acl: ACL, data: Record<string, unknown>): Reply {
  const paths = stringListField(data, 'paths') ?? (typeof data.path === 'string' ? [data.path] : stringListField(data, 'path'));
  if (!paths || paths.length === 0) throw badRequest('missing required field paths');
  const out: Record<string, unknown> = {};
  for (const p of paths) {
    const path = canonicalPath(p, p.endsWith('/'));
    out[p] = acl.capabilities(canonicalNames(core, systemRoutes(), path)?.path ?? path);
  }
  if (paths.length === 1) out.capabilities = out[paths[0]];
  // Repeated at the top level, as Vault does for this legacy endpoint family.
  return { data: out, top: out };
}

// Leases

function leaseIdFrom(ctx: RequestContext, fromPath: string | undefined): string {
  const id = fromPath ?? stringField(ctx.data, 'lease_id') ?? stringField(ctx.data, 'url_lease_id');
  if (!id) throw badRequest('missing required field lease_id');
  return id.replace(/^\/+/, '');
}

async function leaseLookup(core: ServerCore, ctx: RequestContext): Promise<Reply> {
  const id = leaseIdFrom(ctx, undefined);
  const lease = await core.leases.lookup(id);
  if (!lease) throw badRequest('invalid lease');
  const now = core.clock();
  return {
    data: {
      id: lease.leaseId,
      issue_time: rfc3339(lease.issueTimeMs),
      expire_time: lease.expireTimeMs ? rfc3339(lease.expireTimeMs) : null,
      last_renewal: lease.lastRenewalMs !== undefined ? rfc3339(lease.lastRenewalMs) : null,
      path: `${lease.mountPoint}${lease.path}`,
      renewable: lease.secret.renewable && lease.expireTimeMs > now && lease.irrevocable !== true,
      ttl: Math.max(0, Math.floor((lease.expireTimeMs - now) / 1000)),
    },
  };
}

async function leaseList(core: ServerCore, prefix: string): Promise<Reply> {
  const keys = await core.leases.list(prefix);
  if (keys.length === 0) throw new HttpError(404);
  return { data: { keys } };
}

async function leaseRenew(core: ServerCore, ctx: RequestContext, fromPath: string | undefined): Promise<Reply> {
  const id = leaseIdFrom(ctx, fromPath);
  const incrementMs = durationField(ctx.data, 'increment') ?? 0;
  const held = await core.leases.lookup(id);
  // Knowing a lease id is not enough to keep it alive: see mayRenew. (A missing lease answers as before.)
  if (held && !mayRenew(core, ctx, held)) throw denied();
  const result = await core.leases.renew(id, incrementMs);
  const lease = result.lease;
  return {
    data: result.data ?? null,
    warnings: result.warnings && result.warnings.length > 0 ? result.warnings : null,
    leaseId: lease.leaseId,
    leaseDuration: Math.round(lease.secret.ttlMs / 1000),
    renewable: lease.secret.renewable,
  };
}

/**
 * Who may renew a lease: the token that obtained it or one of that token's
 * ancestors (whose revocation would end it anyway), a token of the same
 * identity entity (the same workload after a new login: a restarted broker),
 * or a token with sudo on the renew path (an operator). Vault lets any token
 * with update on sys/leases/renew renew any lease whose id it knows; here the
 * id is treated as the secret it is, not as a credential.
 */
function mayRenew(core: ServerCore, ctx: RequestContext, lease: LeaseEntry): boolean {
  if (isSudo(ctx, ctx.path, 'update')) return true;
  const caller = ctx.token!;
  const creator = core.tokens.lookupHash(lease.clientTokenId);
  if (creator?.entityId && creator.entityId === caller.entityId) return true;
  let hash = lease.clientTokenId;
  for (let depth = 0; depth < MAX_TOKEN_DEPTH && hash !== ''; depth++) {
    if (hash === caller.hash) return true;
    hash = core.tokens.lookupHash(hash)?.parent ?? '';
  }
  return false;
}

/** How far up a token's parents mayRenew looks (token trees are far shallower). */
const MAX_TOKEN_DEPTH = 64;

async function leaseRevoke(core: ServerCore, ctx: RequestContext, fromPath: string | undefined): Promise<Reply> {
  await core.leases.revoke(leaseIdFrom(ctx, fromPath));
  return { empty: true };
}

// Wrapping

async function unwrap(core: ServerCore, ctx: RequestContext): Promise<Reply> {
  const id = stringField(ctx.data, 'token') ?? ctx.rawToken;
  if (!id) throw badRequest('missing required field token');
  const w = await core.wrapping.unwrap(id);
  if (w.data === null && w.auth === null && w.lease_id === '' && w.warnings === null) return { empty: true, wrappable: false };
  return {
    data: w.data,
    auth: w.auth,
    leaseId: w.lease_id,
    leaseDuration: w.lease_duration,
    renewable: w.renewable,
    warnings: w.warnings,
    wrappable: false,
  };
}

// Tokens

async function createToken(core: ServerCore, ctx: RequestContext, orphanEndpoint: boolean): Promise<Reply> {
  const parent = ctx.token!;
  const d = ctx.data;
  const parentIsRoot = parent.policies.includes(ROOT_POLICY);
  const sudo = isSudo(ctx, ctx.path, 'update');
  const type = stringField(d, 'type');
  if (type !== undefined && type !== 'service' && type !== 'default') {
    throw badRequest(`invalid type ${JSON.stringify(type)}: this server issues service tokens only`);
  }
  const noParent = boolField(d, 'no_parent', false);
  if (noParent && !orphanEndpoint && !sudo) throw badRequest('root or sudo privileges required to create orphan token');
  const orphan = orphanEndpoint || noParent;

  const id = stringField(d, 'id');
  if (id !== undefined && !sudo) throw badRequest('root or sudo privileges required to specify token id');
  if (id !== undefined && (id.length > 256 || /\s/.test(id) || id.includes('.') && !id.startsWith('hvs.'))) {
    throw badRequest('invalid id: at most 256 characters, no whitespace, no "." except the "hvs." prefix');
  }

  const requested = stringListField(d, 'policies');
  const addDefault = !boolField(d, 'no_default_policy', false);
  let policies =
    requested && requested.length > 0
      ? sanitizePolicies(requested, addDefault)
      : sanitizePolicies(parent.policies, addDefault);
  if (!addDefault && !requested?.some((p) => p.trim().toLowerCase() === 'default')) {
    policies = policies.filter((p) => p !== 'default');
  }
  if (policies.includes(ROOT_POLICY) && !parentIsRoot) {
    throw badRequest('root tokens may not be created without parent token being root');
  }
  if (!parentIsRoot && !sudo) {
    const allowed = new Set(sanitizePolicies(parent.policies, true));
    if (!policies.every((p) => allowed.has(p))) throw badRequest('child policies must be subset of parent');
  }

  const warnings: string[] = [];
  const explicitMaxTtlMs = durationField(d, 'explicit_max_ttl') ?? 0;
  let ttlMs = durationField(d, 'ttl') ?? durationField(d, 'lease') ?? 0;
  if (d.period !== undefined && d.period !== '' && d.period !== 0) {
    warnings.push('periodic tokens are not supported by this server; "period" was used as the ttl');
    ttlMs = ttlMs || (durationField(d, 'period') ?? 0);
  }
  // Root-policy tokens without a ttl never expire; every other token gets the system default.
  if (ttlMs === 0 && !policies.includes(ROOT_POLICY)) ttlMs = SYSTEM_MAX_TTL_MS;
  if (ttlMs > SYSTEM_MAX_TTL_MS) {
    warnings.push(`ttl of ${Math.round(ttlMs / 1000)}s exceeded the system max ttl; capped to ${SYSTEM_MAX_TTL_MS / 1000}s`);
    ttlMs = SYSTEM_MAX_TTL_MS;
  }
  if (explicitMaxTtlMs > 0 && (ttlMs === 0 || ttlMs > explicitMaxTtlMs)) {
    if (ttlMs !== 0) warnings.push('ttl is greater than explicit_max_ttl; capped to explicit_max_ttl');
    ttlMs = explicitMaxTtlMs;
  }

  const { id: tokenId, entry } = await core.tokens.create({
    ...(id !== undefined ? { id } : {}),
    policies,
    parent: orphan ? '' : parent.hash,
    ttlMs,
    explicitMaxTtlMs,
    displayName: tokenDisplayName(stringField(d, 'display_name') ?? ''),
    meta: stringMapField(d, 'meta'),
    renewable: boolField(d, 'renewable', true),
    numUses: intField(d, 'num_uses', 0),
    path: orphanEndpoint ? 'auth/token/create-orphan' : 'auth/token/create',
    // Child tokens act for the same identity as their parent, as in Vault.
    ...(parent.entityId ? { entityId: parent.entityId } : {}),
    ...(parent.subject ? { subject: parent.subject } : {}),
  });
  return {
    // Counted from the token's creation, so the granted ttl reads back exactly (not 1199 for 1200).
    auth: authBlock(entry, tokenId, entry.creationTimeMs),
    warnings: warnings.length > 0 ? warnings : null,
    wrappedAccessor: entry.accessor,
  };
}

async function renewToken(core: ServerCore, ctx: RequestContext, entry: TokenEntry, id: string): Promise<Reply> {
  const incrementMs = durationField(ctx.data, 'increment') ?? 0;
  const { warnings } = await core.tokens.renew(entry, incrementMs);
  return {
    auth: authBlock(entry, id, entry.lastRenewalMs ?? core.clock()),
    warnings: warnings.length > 0 ? warnings : null,
    wrappedAccessor: entry.accessor,
  };
}
