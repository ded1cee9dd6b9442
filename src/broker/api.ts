// The local API workloads call: HTTP+JSON on 127.0.0.1 and/or a unix socket.
// Input is checked field by field (a 400 names the field); bodies over the
// limit get a 413; nothing here logs a token.

import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeType, showValue } from '../sdk/errors.ts';
import { parseJsonBounded } from '../sdk/json.ts';
import { holdsPrivateKey } from '../engine/jwk.ts';
import type { UsageEvent } from '../pep/types.ts';
import type { Broker, TokenInput } from './broker.ts';
import { BrokerError, HTTP_STATUS, badInput, describeError, notFound } from './errors.ts';
import { parseCloud } from './grants.ts';
import type { Logger } from './log.ts';
import type { BrokerMetrics } from './metrics.ts';
import type { LeaseState, WorkloadRow } from './types.ts';

export const MAX_BODY_BYTES = 64 * 1024;
const NAME = /^[A-Za-z0-9._:@/-]{1,128}$/;
const ALL_STATES: LeaseState[] = ['intent', 'active', 'revoking', 'revoked', 'irrevocable', 'expired', 'gone', 'failed', 'abandoned'];

export interface ListenSettings {
  /** host:port, e.g. 127.0.0.1:8300 (port 0: any free port). */
  address?: string;
  /** A unix socket path. */
  socket?: string;
}

export interface RunningApi {
  /** http://127.0.0.1:<port> when listening on TCP. */
  url: string | null;
  socket: string | null;
  close(): Promise<void>;
}

/** Vault-style duration (`500ms`, `10s`, `5m`, `1h`) or seconds, in milliseconds. */
export function parseDurationMs(field: string, v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return Math.round(v * 1000);
  if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)(ms|s|m|h)?\s*$/.exec(v);
    if (m) {
      const n = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3_600_000 : 1000);
      if (n > 0) return Math.round(n);
    }
  }
  throw badInput(field, `${typeof v === 'string' || typeof v === 'number' ? showValue(v) : describeType(v)} is not a duration such as 10s, 500ms or 30`);
}

function obj(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badInput('body', 'must be a JSON object');
  return body as Record<string, unknown>;
}

function str(b: Record<string, unknown>, field: string, required: true): string;
function str(b: Record<string, unknown>, field: string, required: false): string | undefined;
function str(b: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) {
    if (required) throw badInput(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string' || v.trim() === '') throw badInput(field, 'must be a non-empty string');
  if (v.length > 1024) throw badInput(field, 'is longer than 1024 characters');
  return v;
}

function strList(b: Record<string, unknown>, field: string): string[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw badInput(field, 'must be a list of strings');
  if (v.length > 64) throw badInput(field, 'has more than 64 entries');
  return v as string[];
}

function allowOnly(b: Record<string, unknown>, fields: string[]): void {
  for (const k of Object.keys(b)) {
    if (!fields.includes(k)) throw badInput(k.length > 64 ? `${k.slice(0, 64)}...` : k, `unknown field; expected one of ${fields.join(', ')}`);
  }
}

function workloadJson(w: WorkloadRow): Record<string, unknown> {
  return {
    id: w.id,
    name: w.name,
    state: w.state,
    reason: w.reason,
    heartbeat_interval_ms: w.heartbeatIntervalMs || null,
    pid: w.pid,
    replica: w.replica,
    created_at: new Date(w.createdAt).toISOString(),
    last_heartbeat_at: new Date(w.lastHeartbeatAt).toISOString(),
  };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new BrokerError('ERR_TOO_LARGE', `body: larger than ${MAX_BODY_BYTES} bytes`, { field: 'body' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BrokerError('ERR_TOO_LARGE', `body: larger than ${MAX_BODY_BYTES} bytes`, { field: 'body' });
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    // Nesting is bounded before anything walks the value (and the parser's message quotes nothing).
    return parseJsonBounded(text);
  } catch (err) {
    throw badInput('body', `is not valid JSON: ${(err as Error).message}`);
  }
}

type Handler = (req: IncomingMessage, params: string[], url: URL) => Promise<[number, unknown]>;

/** Answers a request the console serves (/console/...); false for any other path. */
export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

export function createApi(broker: Broker, metrics: BrokerMetrics, log: Logger, consoleHandler?: ConsoleHandler): Server {
  const routes: Array<[string, RegExp, Handler]> = [
    [
      'POST',
      /^\/v1\/workloads$/,
      async (req) => {
        const b = obj(await readBody(req));
        allowOnly(b, ['name', 'heartbeat_interval', 'pid']);
        const name = str(b, 'name', true);
        if (!NAME.test(name)) throw badInput('name', 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ / -');
        const hasInterval = b.heartbeat_interval !== undefined && b.heartbeat_interval !== null;
        const hasPid = b.pid !== undefined && b.pid !== null;
        if (hasInterval === hasPid) throw badInput('heartbeat_interval', 'give exactly one liveness signal: heartbeat_interval or pid');
        let pid: number | undefined;
        if (hasPid) {
          if (typeof b.pid !== 'number' || !Number.isInteger(b.pid) || b.pid <= 1) throw badInput('pid', 'must be a process id (an integer above 1)');
          pid = b.pid;
        }
        const heartbeatIntervalMs = hasInterval ? parseDurationMs('heartbeat_interval', b.heartbeat_interval) : undefined;
        if (heartbeatIntervalMs !== undefined && heartbeatIntervalMs < 100) throw badInput('heartbeat_interval', 'must be at least 100ms');
        const w = await broker.registerWorkload({ name, heartbeatIntervalMs, pid });
        return [201, workloadJson(w)];
      },
    ],
    ['GET', /^\/v1\/workloads\/([^/]+)$/, async (_r, [id]) => [200, workloadJson(await broker.getWorkload(id))]],
    ['POST', /^\/v1\/workloads\/([^/]+)\/heartbeat$/, async (_r, [id]) => [200, workloadJson(await broker.heartbeat(id))]],
    [
      'DELETE',
      /^\/v1\/workloads\/([^/]+)$/,
      async (_r, [id]) => [200, { workload: id, revoking: await broker.endWorkload(id, 'workload_ended') }],
    ],
    [
      'POST',
      /^\/v1\/tokens$/,
      async (req) => {
        const b = obj(await readBody(req));
        allowOnly(b, ['workload', 'role', 'ttl', 'read', 'write', 'audience', 'cloud', 'dpop_jwk']);
        const input: TokenInput = { workload: str(b, 'workload', true), role: str(b, 'role', true) };
        if (b.ttl !== undefined && b.ttl !== null) {
          parseDurationMs('ttl', b.ttl);
          input.ttl = b.ttl as string | number;
        }
        input.read = strList(b, 'read');
        input.write = strList(b, 'write');
        input.audience = strList(b, 'audience');
        if (b.cloud !== undefined && b.cloud !== null) input.cloud = parseCloud(b.cloud);
        if (b.dpop_jwk !== undefined && b.dpop_jwk !== null) input.dpop_jwk = publicJwk(b.dpop_jwk);
        return [200, await broker.requestToken(input)];
      },
    ],
    ['GET', /^\/v1\/tokens\/(.+)$/, async (_r, [jti]) => [200, await broker.getToken(jti)]],
    [
      'POST',
      /^\/v1\/usage$/,
      async (req) => {
        const b = obj(await readBody(req));
        allowOnly(b, ['events']);
        return [200, broker.recordUsage(usageEvents(b.events))];
      },
    ],
    ['DELETE', /^\/v1\/tokens\/(.+)$/, async (_r, [jti]) => [200, await broker.revokeToken(jti, 'explicit')]],
    [
      'POST',
      /^\/v1\/reports$/,
      async (req) => {
        const b = obj(await readBody(req));
        allowOnly(b, ['jti', 'reason']);
        return [200, await broker.report(str(b, 'jti', true), str(b, 'reason', true))];
      },
    ],
    ['GET', /^\/v1\/status$/, async () => [200, await broker.status()]],
    [
      'GET',
      /^\/v1\/leases$/,
      async (_r, _p, url) => {
        const raw = url.searchParams.get('state');
        const states = raw ? (raw.split(',') as LeaseState[]) : (['intent', 'active', 'revoking', 'irrevocable'] as LeaseState[]);
        for (const s of states) if (!ALL_STATES.includes(s)) throw badInput('state', `${showValue(s)} is not one of ${ALL_STATES.join(', ')}`);
        const limit = Number(url.searchParams.get('limit') ?? 1000);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw badInput('limit', 'must be an integer from 1 to 100000');
        return [200, { leases: await broker.leases(states, limit) }];
      },
    ],
    ['GET', /^\/v1\/events$/, async (_r, _p, url) => [200, { events: await broker.events(Math.min(1000, Number(url.searchParams.get('limit') ?? 100) || 100)) }]],
  ];

  const send = async (req: IncomingMessage, res: ServerResponse, status: number, body: unknown) => {
    // A body nobody read is drained first: closing over unread bytes resets the
    // connection, and the client would lose the answer.
    await drain(req);
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  };

  return createServer((req, res) => {
    const started = Date.now();
    const method = req.method ?? 'GET';
    // A request target that is no URL (`http://[`) is the caller's mistake, answered below.
    let url = new URL('/', 'http://broker');
    void (async () => {
      let status = 500;
      try {
        url = requestUrl(req.url);
        refuseForeignOrigin(req);
        if (consoleHandler && (await consoleHandler(req, res, url))) {
          status = res.statusCode;
          return;
        }
        if (method === 'GET' && url.pathname === '/metrics') {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
          status = 200;
          return;
        }
        let matchedPath = false;
        for (const [m, re, handler] of routes) {
          const match = re.exec(url.pathname);
          if (!match) continue;
          matchedPath = true;
          if (m !== method) continue;
          const params = match.slice(1).map((p) => decodeParam(p));
          const [s, body] = await handler(req, params, url);
          status = s;
          await send(req, res, s, body);
          return;
        }
        if (matchedPath) {
          status = 405;
          await send(req, res, 405, { errors: [`method ${method} not allowed on ${url.pathname.slice(0, 200)}`], code: 'ERR_METHOD' });
          return;
        }
        throw notFound(`no route ${method.slice(0, 16)} ${showValue(url.pathname)}`);
      } catch (err) {
        if (err instanceof BrokerError) {
          status = HTTP_STATUS[err.code];
          await send(req, res, status, { errors: [err.message], code: err.code, ...(err.field ? { field: err.field } : {}) });
        } else {
          status = 500;
          log.error({ method, path: url.pathname, err: describeError(err) }, 'request failed');
          await send(req, res, 500, { errors: ['internal error'], code: 'ERR_INTERNAL' });
        }
      } finally {
        // The path holds at most a jti or workload id; never a token.
        log.debug({ method, path: url.pathname, status, ms: Date.now() - started }, 'request');
      }
    })();
  });
}

/** How much of an unread body drain() reads before it gives up and drops the connection. */
const MAX_DRAIN_BYTES = 1024 * 1024;

/** Reads and discards what is left of a request's body (bounded). */
function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let size = 0;
    const done = (): void => resolve();
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DRAIN_BYTES) {
        req.destroy();
        done();
      }
    });
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
}

/** The request's URL; a target no URL parser accepts is a 400. */
function requestUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://broker');
  } catch {
    throw badInput('path', 'is not a valid request target');
  }
}

/** A path parameter, percent-decoded; malformed encoding is a 400. */
function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badInput('path', 'holds malformed percent-encoding');
  }
}

export async function listen(makeServer: () => Server, settings: ListenSettings): Promise<RunningApi> {
  const servers: Server[] = [];
  let url: string | null = null;
  if (settings.address) {
    const i = settings.address.lastIndexOf(':');
    const host = settings.address.slice(0, i) || '127.0.0.1';
    const port = Number(settings.address.slice(i + 1));
    const s = makeServer();
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, () => resolve());
    });
    const a = s.address() as AddressInfo;
    url = `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
    servers.push(s);
  }
  if (settings.socket) {
    if (existsSync(settings.socket)) unlinkSync(settings.socket);
    const s = makeServer();
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(settings.socket, () => resolve());
    });
    chmodSync(settings.socket, 0o660);
    servers.push(s);
  }
  let closing: Promise<void> | null = null;
  return {
    url,
    socket: settings.socket ?? null,
    close() {
      closing ??= Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeIdleConnections();
            }),
        ),
      ).then(() => undefined);
      return closing;
    },
  };
}


/** `dpop_jwk`: a public JWK of string members (the engine checks the key itself). */
function publicJwk(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badInput('dpop_jwk', 'must be a public JWK (a JSON object)');
  const entries = Object.entries(value as Record<string, unknown>);
  // The broker never takes a workload's private key.
  if (holdsPrivateKey(value as object)) {
    throw badInput('dpop_jwk', 'holds private key material: send the public key only, and keep the private key in the workload');
  }
  if (entries.length > 16 || entries.some(([, v]) => typeof v !== 'string' || v.length > 2048)) {
    throw badInput('dpop_jwk', 'must be a public JWK of string members');
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/**
 * The API has no authentication: it is for processes on this host. A browser
 * on this host must not be a way in: a request whose Host is not a loopback
 * name (DNS rebinding) or whose Origin is another site (a page posting to
 * 127.0.0.1) is refused. Clients that are not browsers send no Origin.
 */
function refuseForeignOrigin(req: IncomingMessage): void {
  const host = req.headers.host;
  if (host !== undefined && !/^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/i.test(host)) {
    throw new BrokerError('ERR_FORBIDDEN', 'the broker answers only requests addressed to a loopback name');
  }
  const origin = req.headers.origin;
  if (origin !== undefined && (origin === 'null' || new URL(origin).host !== host)) {
    throw new BrokerError('ERR_FORBIDDEN', 'requests from another origin are refused');
  }
}

const JTI = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The longest value a usage event keeps of each field (what a resource or URL needs; the rest less). */
const USAGE_LIMITS: Record<string, number> = { resource: 512, url: 512, detail: 256 };

const USAGE_FIELDS = ['time', 'decision', 'code', 'detail', 'jti', 'lease_id', 'role', 'sub', 'op', 'resource', 'remote_addr', 'method', 'url'];

/** `events`: up to 1,000 usage events as the PEP emits them (UsageEvent); strings only, bounded. */
function usageEvents(v: unknown): UsageEvent[] {
  if (!Array.isArray(v)) throw badInput('events', 'must be a list of usage events');
  if (v.length > 1000) throw badInput('events', `${v.length} events; at most 1000 at once`);
  return v.map((e, i) => {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw badInput(`events[${i}]`, 'must be an object');
    const o = e as Record<string, unknown>;
    for (const [k, val] of Object.entries(o)) {
      if (!USAGE_FIELDS.includes(k)) throw badInput(`events[${i}].${k}`, 'is not a usage event field');
      const max = USAGE_LIMITS[k] ?? 128;
      if (typeof val !== 'string' || val.length > max) throw badInput(`events[${i}].${k}`, `must be a string of at most ${max} characters`);
    }
    if (o.jti !== undefined && !JTI.test(o.jti as string)) throw badInput(`events[${i}].jti`, 'is not a token id');
    if (o.time !== undefined && !Number.isFinite(Date.parse(o.time as string))) throw badInput(`events[${i}].time`, 'is not an RFC 3339 time');
    if (o.decision !== 'allow' && o.decision !== 'deny') throw badInput(`events[${i}].decision`, 'must be allow or deny');
    if (o.op !== 'read' && o.op !== 'write') throw badInput(`events[${i}].op`, 'must be read or write');
    return o as unknown as UsageEvent;
  });
}
