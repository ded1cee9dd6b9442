// The core (Vault's router and request handling): one mount table holding the
// built-in backends (sys/, auth/token/, identity/), the enabled auth methods
// (auth/<path>/) and the mounted secrets engines, every one a backend on the
// sdk framework; and one pipeline around every backend call:
//   1. route: the longest mount prefix, and the path within the mount;
//   2. canonical path: the backend's resolve-path (names it compares without
//      case made canonical), so the ACL is checked on the form it serves;
//   3. authenticate (unless the backend names the path unauthenticated) and
//      check the ACL for the operation (create vs update by the backend's
//      existence check; sudo on its root paths);
//   4. call the backend; register a secret's lease (with the engine's held
//      writes, in one batch), create a login's token, wrap when asked.

import type { LogicalRequest, LogicalResponse, Operation, SpecialPaths, StoredSecret } from '../sdk/logical.ts';
import { EngineError } from '../sdk/errors.ts';
import type { AuditRecord } from './audit_table.ts';
import { HTTP_CONTENT_TYPE, HTTP_RAW_BODY, HTTP_RAW_STREAM, HTTP_STATUS_CODE, type RawStream } from '../sdk/logical.ts';
import { addressAllowed } from './auth/cidr.ts';
import { issueLoginToken } from './auth/login.ts';
import type { AuthMount } from './auth/table.ts';
import { ServerRequest, type RoutedMount, type RouterView, type ServerCore } from './context.ts';
import {
  badRequest,
  builtinError,
  denied,
  deniedByPolicy,
  errorChain,
  errorMessage,
  HttpError,
  noRoute,
  returnedError,
  translateError,
  UNSUPPORTED_OPERATION,
} from './errors.ts';
import { identityBackend } from './identity/backend.ts';
import { effectiveMountLimits, leaseTtl, mountLeaseLimits, SYSTEM_MAX_TTL_MS } from './lease_ttl.ts';
import type { Mount } from './mounts.ts';
import { checkParameters, checkWrapping, type AclOperation } from './policy.ts';
import { clearSegments, type HttpOperation, type Reply, type RequestContext } from './request.ts';
import type { BufferedView } from './storage/buffer.ts';
import { systemBackend } from './sys/backend.ts';
import { STATUS_PATHS } from './sys/path_health.ts';
import { tokenBackend } from './token/backend.ts';
import { authBlock } from './token/store.ts';
import type { LeaseEntry } from './types.ts';
import type { WrappedResponse } from './wrapping.ts';

/** Where a request is served. */
type RouteMatch = RoutedMount & { relPath: string } & (
    | { kind: 'builtin' }
    | { kind: 'auth'; mount: AuthMount }
    | { kind: 'secret'; mount: Mount }
  );

/** The built-in backends keep no storage of their own: they act through the server's stores. */
const NO_STORAGE = {
  get: noStorage,
  put: noStorage,
  delete: noStorage,
  list: noStorage,
};

async function noStorage(): Promise<never> {
  throw new EngineError('ERR_INTERNAL', 'a built-in backend has no storage of its own');
}

export class Router implements RouterView {
  private readonly core: ServerCore;
  private readonly builtins: RoutedMount[];

  constructor(core: ServerCore) {
    this.core = core;
    this.builtins = [
      { prefix: 'sys/', type: 'system', backend: systemBackend() },
      { prefix: 'auth/token/', type: 'token', backend: tokenBackend() },
      { prefix: 'identity/', type: 'identity', backend: identityBackend() },
    ];
  }

  /** The mount serving a canonical path, and the path within it; null when none does. */
  match(path: string): RouteMatch | null {
    for (const b of this.builtins) {
      if (path.startsWith(b.prefix)) return { prefix: b.prefix, type: b.type, backend: b.backend, kind: 'builtin', relPath: path.slice(b.prefix.length) };
      // The mount's own path without its slash (`sys`).
      if (path.length === b.prefix.length - 1 && b.prefix.startsWith(path)) {
        return { prefix: b.prefix, type: b.type, backend: b.backend, kind: 'builtin', relPath: '' };
      }
    }
    if (path.startsWith('auth/')) {
      const found = this.core.auth.match(path.slice('auth/'.length));
      if (!found) return null;
      const { mount, relPath } = found;
      return { kind: 'auth', prefix: `auth/${mount.entry.path}`, type: mount.entry.type, backend: mount.backend, mount, relPath };
    }
    const found = this.core.mounts.match(path);
    if (!found) return null;
    const { mount, relPath } = found;
    return { kind: 'secret', prefix: mount.entry.path, type: mount.entry.type, backend: mount.backend, mount, relPath };
  }

  /**
   * The canonical form of the path within its mount (the backend's
   * resolve-path); null when the backend routes no such path. A secrets
   * engine is not asked, as Vault 1.17 asks no plugin (OpenBao 2.7 does): its
   * paths are used as sent.
   */
  async resolve(match: RouteMatch): Promise<string | null> {
    if (match.kind === 'secret') return null;
    const response = await match.backend.handleRequest({
      operation: 'resolve-path',
      path: match.relPath,
      data: {},
      caller: { displayName: '' },
      storage: NO_STORAGE,
      mountPoint: match.prefix,
    });
    const path = response?.data?.path;
    return typeof path === 'string' ? path : null;
  }

  async canonical(path: string): Promise<string> {
    const match = this.match(path);
    if (!match) return path;
    const rel = await this.resolve(match).catch(() => null);
    return rel === null ? path : `${match.prefix}${rel}`;
  }

  mounts(): RoutedMount[] {
    const auth = this.core.auth.list().map((m) => ({ prefix: `auth/${m.entry.path}`, type: m.entry.type, backend: m.backend }));
    const secrets = this.core.mounts.list().map((m) => ({ prefix: m.entry.path, type: m.entry.type, backend: m.backend }));
    return [...this.builtins, ...auth, ...secrets];
  }
}

/**
 * Serves one parsed request, recorded on the audit devices when any is
 * enabled: its request line before the backend is called (a request no device
 * can record is not served), its response line before the answer leaves (an
 * answer no device can record is a 500), and both for a refused request.
 */
export async function serve(core: ServerCore, router: Router, ctx: RequestContext): Promise<Reply> {
  // Status endpoints are probes, not operations (Vault answers them outside its audited router).
  if (!core.audit.enabled || STATUS_PATHS.some((p) => ctx.path === `sys/${p}`)) return serveRouted(core, router, ctx);
  ctx.audit = { mountPoint: '', mountType: '', requestLogged: false };
  let reply: Reply;
  try {
    reply = await serveRouted(core, router, ctx);
  } catch (err) {
    const e = translateError(err);
    try {
      if (!ctx.audit.requestLogged) core.audit.log(auditRecord(ctx, 'request', e.message));
      core.audit.log(auditRecord(ctx, 'response', e.message));
    } catch {
      throw new HttpError(500, 'internal error');
    }
    throw err;
  }
  try {
    core.audit.log({ ...auditRecord(ctx, 'response'), response: auditResponse(reply) });
  } catch {
    throw new HttpError(500, 'internal error');
  }
  return reply;
}

/** The request (and caller) as an audit line records it. */
function auditRecord(ctx: RequestContext, type: 'request' | 'response', error?: string): AuditRecord {
  const t = ctx.token;
  return {
    type,
    auth: t
      ? { clientToken: ctx.rawToken, accessor: t.accessor, displayName: t.displayName, policies: t.policies, entityId: t.entityId, metadata: t.meta }
      : null,
    request: {
      id: ctx.requestId,
      operation: ctx.operation,
      mountPoint: ctx.audit?.mountPoint ?? '',
      mountType: ctx.audit?.mountType ?? '',
      path: ctx.path,
      clearSegments: clearSegments(ctx.path, ctx.routed === true || (ctx.audit?.mountPoint ?? '') !== ''),
      data: Object.keys(ctx.data).length > 0 ? ctx.data : null,
      ...(ctx.remoteAddr ? { remoteAddress: ctx.remoteAddr } : {}),
      ...(ctx.wrapTtlMs ? { wrapTtlS: Math.round(ctx.wrapTtlMs / 1000) } : {}),
    },
    ...(error !== undefined ? { error } : {}),
  };
}

/** What of an answer a response line keeps (a raw body is named by its type, not written). */
function auditResponse(reply: Reply): NonNullable<AuditRecord['response']> {
  const auth = reply.auth as { client_token?: unknown; accessor?: unknown } | null | undefined;
  return {
    status: reply.raw?.status ?? reply.status ?? (reply.empty ? 204 : 200),
    data: reply.raw ? { http_content_type: reply.raw.contentType } : (reply.data ?? (reply.plain as Record<string, unknown> | undefined) ?? null),
    ...(reply.leaseId ? { leaseId: reply.leaseId } : {}),
    ...(auth && typeof auth.client_token === 'string' ? { auth: { clientToken: auth.client_token, accessor: String(auth.accessor ?? '') } } : {}),
    ...(reply.wrapInfo
      ? { wrapInfo: { token: reply.wrapInfo.token, accessor: reply.wrapInfo.accessor, creationPath: reply.wrapInfo.creation_path, ttlS: reply.wrapInfo.ttl } }
      : {}),
  };
}

async function serveRouted(core: ServerCore, router: Router, ctx: RequestContext): Promise<Reply> {
  const match = router.match(ctx.path);
  if (!match) {
    // Nothing serves the path: authenticate first, so unauthenticated callers learn nothing.
    await authenticate(core, ctx);
    if (!ctx.acl!.root && !ctx.acl!.check(ctx.path, aclOperation(ctx.operation)).allowed) throw deniedByPolicy();
    throw noRoute(ctx.path);
  }
  if (ctx.audit) {
    ctx.audit.mountPoint = match.prefix;
    ctx.audit.mountType = match.type;
  }
  let relPath = match.relPath;
  // A secrets engine is never asked (Router.resolve): no promise for it on the hot path.
  const canonical = match.kind === 'secret' ? null : await runBackend(() => router.resolve(match));
  if (canonical !== null) {
    // The canonical names replace the ones sent, for the ACL check and the handler alike.
    relPath = canonical;
    ctx.path = `${match.prefix}${relPath}`;
  }
  const special = match.backend.specialPaths();
  const unauthenticated = globMatch(special.unauthenticated, relPath);
  const status = match.kind === 'builtin' && match.prefix === 'sys/' && STATUS_PATHS.includes(relPath);
  if (ctx.operation === 'patch') {
    // No backend here takes a JSON merge patch.
    if (match.kind === 'builtin' && !unauthenticated) await authenticate(core, ctx);
    if (status) throw new HttpError(405);
    throw new HttpError(405, UNSUPPORTED_OPERATION, { listed: match.kind === 'builtin' ? ctx.token !== undefined : !unauthenticated });
  }
  if (!unauthenticated) await authenticate(core, ctx);

  const view = match.kind === 'secret' ? core.mounts.buffered(match.mount) : undefined;
  const request = logicalRequest(core, router, ctx, match, relPath, view);
  if (!unauthenticated && !globMatch(special.tokenOnly ?? [], relPath)) {
    let op = aclOperation(ctx.operation);
    if (ctx.operation === 'update') {
      // Vault's create vs update: the backend's existence check decides.
      const existence = await runBackend(() => match.backend.handleExistenceCheck(request));
      if (existence.checkFound && !existence.exists) {
        op = 'create';
        request.operation = 'create';
      }
    }
    authorize(ctx, ctx.path, op, globMatch(special.root, relPath));
  }

  if (ctx.audit) {
    // Not served unless recorded: a failure here answers 500 and the backend is never called.
    core.audit.log(auditRecord(ctx, 'request'));
    ctx.audit.requestLogged = true;
  }
  let response: LogicalResponse | null;
  try {
    response = await match.backend.handleRequest(request);
    ctx.routed = true;
  } catch (err) {
    // A refused request leaves nothing behind: its held writes go, and the engine's caches of them.
    if (match.kind === 'secret') core.mounts.invalidate(match.mount, view!.take());
    const e = match.kind === 'builtin' ? builtinError(err, ctx.token !== undefined) : returnedError(err, !unauthenticated);
    // Unless the backend knew no route for the path, the request counts as routed.
    if (e.status !== 404) ctx.routed = true;
    if (status && e.status === 405) throw new HttpError(405);
    throw e;
  }
  if (ctx.operation === 'help') {
    return { plain: { help: response?.data?.help ?? '', see_also: null }, mountType: match.type };
  }
  let reply: Reply;
  if (match.kind === 'secret') {
    if (!response?.secret) await core.mounts.commit(match.mount, view!.take());
    reply = await secretReply(core, ctx, match.mount, request, response, view!);
  } else if (response?.login) {
    if (match.kind !== 'auth') throw new EngineError('ERR_INTERNAL', `the ${match.type} backend answered a login`);
    reply = await loginReply(core, match.mount, response);
  } else {
    reply = logicalReply(ctx, response, match.type);
  }
  return finishReply(core, ctx, reply);
}

function logicalRequest(
  core: ServerCore,
  router: Router,
  ctx: RequestContext,
  match: RouteMatch,
  relPath: string,
  view: BufferedView | undefined,
): LogicalRequest {
  const request: LogicalRequest = {
    operation: (ctx.operation === 'patch' ? 'update' : ctx.operation) as Operation,
    path: relPath,
    data: ctx.data,
    caller: callerOf(ctx),
    storage: NO_STORAGE,
    mountPoint: match.prefix,
  };
  switch (match.kind) {
    case 'secret': {
      const { entry } = match.mount;
      // The engine's writes are held and made durable in one batch: with the lease
      // when it issues a secret (a crash leaves both or neither), else on their own.
      request.storage = view!.storage;
      request.mountPoint = entry.path;
      request.mountLimits = async () => effectiveMountLimits(entry.config);
      break;
    }
    case 'auth': {
      const { entry, storage } = match.mount;
      request.storage = storage;
      request.mountPoint = entry.path;
      request.mountAccessor = entry.accessor;
      request.mountType = entry.type;
      // Vault's System().MaxLeaseTTL() for an auth mount: its tuned max, else the system's.
      request.mountLimits = async () => ({
        defaultTtlMs: entry.config.default_lease_ttl * 1000,
        maxTtlMs: entry.config.max_lease_ttl * 1000 || SYSTEM_MAX_TTL_MS,
      });
      break;
    }
    case 'builtin': {
      const context = new ServerRequest(core, router, ctx.path);
      if (ctx.token) context.token = ctx.token;
      if (ctx.rawToken !== undefined) context.rawToken = ctx.rawToken;
      if (ctx.acl) context.acl = ctx.acl;
      if (ctx.wrapTtlMs !== undefined) context.wrapTtlMs = ctx.wrapTtlMs;
      if (ctx.remoteAddr) context.remoteAddr = ctx.remoteAddr;
      request.context = context;
      break;
    }
  }
  return request;
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

async function runBackend<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw translateError(err);
  }
}

// ---------------------------------------------------------------------------
// Authentication and the ACL

function aclOperation(op: HttpOperation): AclOperation {
  return op === 'help' ? 'read' : op;
}

/** Validates the caller's token; sets ctx.token and ctx.acl. Throws 403. */
async function authenticate(core: ServerCore, ctx: RequestContext): Promise<void> {
  if (ctx.token) return;
  if (ctx.rawToken === undefined) throw denied();
  const entry = core.tokens.lookup(ctx.rawToken);
  // Wrapping tokens are good for sys/wrapping/* only, which are unauthenticated paths.
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

/** Vault's special-path globs: an entry ending in `*` is a prefix. */
function globMatch(patterns: SpecialPaths['unauthenticated'], path: string): boolean {
  for (const p of patterns) {
    if (p.endsWith('*') ? path.startsWith(p.slice(0, -1)) : path === p) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Answers

/** A backend's answer in the envelope's terms: null is not found (reads, lists) or no content. */
function logicalReply(ctx: RequestContext, response: LogicalResponse | null, mountType: string): Reply {
  const warnings = response?.warnings && response.warnings.length > 0 ? response.warnings : null;
  const http = response?.http;
  const data = response?.data;
  if (!data && !warnings && !response?.auth && !http?.lease) {
    if (ctx.operation === 'read' || ctx.operation === 'list') throw new HttpError(404);
    return { empty: true, mountType };
  }
  if (data && data[HTTP_RAW_BODY] !== undefined) return rawReply(data, mountType);
  if (http?.plain) return { status: http.plain.status, plain: data ?? {}, mountType };
  // Vault answers a list with no keys as not found.
  if (ctx.operation === 'list' && !warnings && Array.isArray(data?.keys) && data.keys.length === 0) throw new HttpError(404);
  const reply: Reply = { data: data ?? null, warnings, mountType, wrappable: http?.wrappable ?? true };
  if (response?.auth) reply.auth = response.auth;
  if (http?.topLevel && data) reply.top = data;
  if (http?.wrappedAccessor) reply.wrappedAccessor = http.wrappedAccessor;
  if (http?.lease) {
    reply.leaseId = http.lease.id;
    reply.leaseDuration = http.lease.durationSeconds;
    reply.renewable = http.lease.renewable;
  }
  return reply;
}

function rawReply(data: Record<string, unknown>, mountType: string): Reply {
  const body = data[HTTP_RAW_BODY];
  const status = typeof data[HTTP_STATUS_CODE] === 'number' ? (data[HTTP_STATUS_CODE] as number) : 200;
  const contentType = typeof data[HTTP_CONTENT_TYPE] === 'string' ? (data[HTTP_CONTENT_TYPE] as string) : 'application/json';
  const stream = typeof data[HTTP_RAW_STREAM] === 'function' ? (data[HTTP_RAW_STREAM] as RawStream) : undefined;
  return {
    raw: {
      status,
      contentType,
      body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
      ...(stream ? { stream } : {}),
    },
    mountType,
  };
}

/** A login: the server creates the identity and the token (Vault's handleLoginRequest). */
async function loginReply(core: ServerCore, mount: AuthMount, response: LogicalResponse): Promise<Reply> {
  const issued = await runBackend(() =>
    issueLoginToken({ tokens: core.tokens, identity: core.identity, clock: core.clock }, mount, response.login!),
  );
  const warnings = [...(response.warnings ?? []), ...issued.warnings];
  return {
    // lease_duration is the ttl granted, counted from the token's creation.
    auth: authBlock(issued.entry, issued.id, issued.entry.creationTimeMs),
    warnings: warnings.length > 0 ? warnings : null,
    wrappedAccessor: issued.entry.accessor,
    mountType: mount.entry.type,
    wrappable: true,
  };
}

/** A secrets engine's answer: a secret gets its lease (durable with the engine's writes) before it is handed out. */
async function secretReply(
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
  if (data && data[HTTP_RAW_BODY] !== undefined) return rawReply(data, mountType);
  const warnings = response.warnings && response.warnings.length > 0 ? response.warnings : null;
  if (ctx.operation === 'list' && !warnings) {
    // Vault answers a list with no keys as not found.
    const keys = data?.keys;
    if (!data || Object.keys(data).length === 0 || (Array.isArray(keys) && keys.length === 0)) throw new HttpError(404);
  }
  const reply: Reply = { data: data ?? null, warnings, mountType, wrappable: true };
  if (response.secret) {
    const { lease, warnings: capped } = await registerLease(core, ctx, mount, request, response, view);
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
 * answer, in one batch with the engine's held writes). If that fails, the
 * secret is revoked through the engine and the caller gets a 500: nothing is
 * handed out without a lease.
 */
async function registerLease(
  core: ServerCore,
  ctx: RequestContext,
  mount: Mount,
  request: LogicalRequest,
  response: LogicalResponse,
  view: BufferedView,
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
      writes: view.take(),
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

