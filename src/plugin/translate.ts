// Translation between Vault's wire messages (pb.Request, pb.Response,
// pb.ProtoError) and the engine's logical request/response.
//
// Rules kept here, in one place:
// - `data` and `internal_data` are JSON objects as text; never the empty string.
// - ttl, max_ttl and increment are int64 nanoseconds carried as decimal strings
//   and converted with BigInt (exact); the engine works in milliseconds.
// - `issue_time` is always set on a returned secret: the engine's, else the
//   stored lease's (renew), else now (issue).
// - The secret's type travels in internal_data under `secret_type`, as Vault's
//   Go framework stores it, and is taken out again before the engine sees it.
// - `http_raw_body` holds bytes in Go; a Go plugin's JSON carries them base64,
//   which Vault decodes, so a string body is sent base64-encoded.
// - Engine errors map to what Vault's HTTP layer turns into the same status:
//   400 an error response (data.error), 403/429/500 a coded error, 404 the
//   UnsupportedPath error, 405 the UnsupportedOperation error.

// From the modules that define them, not the engine's index: the plugin loads the engine itself
// only after its handshake (backend_service.ts).
import { EngineError, isEngineError } from '../sdk/errors.ts';
import { HTTP_RAW_BODY, OPERATIONS } from '../sdk/logical.ts';
import type { Caller, LogicalRequest, LogicalResponse, Operation, Storage, StoredSecret } from '../engine/index.ts';
import { ERR_TYPE } from './wire.ts';
import type { HandleRequestReply, WireError, WireLeaseOptions, WireRequest, WireResponse, WireSecret, WireTimestamp } from './wire.ts';

export const SECRET_TYPE_KEY = 'secret_type';
const NS_PER_MS = 1_000_000n;

/** A request the plugin cannot hand to the engine (bad JSON, unknown operation). */
export class WireFormatError extends Error {
  readonly errType: number;
  constructor(message: string, errType: number = ERR_TYPE.invalidRequest) {
    super(message);
    this.name = 'WireFormatError';
    this.errType = errType;
  }
}

// --- durations and times ---------------------------------------------------

/** int64 nanoseconds (decimal string) to whole milliseconds, exact to the ms. */
export function nsToMs(ns: string | undefined | null): number {
  if (!ns) return 0;
  let value: bigint;
  try {
    value = BigInt(ns);
  } catch {
    throw new WireFormatError(`not an int64: ${JSON.stringify(ns).slice(0, 40)}`);
  }
  return Number(value / NS_PER_MS);
}

/** Milliseconds to int64 nanoseconds as a decimal string. */
export function msToNs(ms: number): string {
  return (BigInt(Math.round(ms)) * NS_PER_MS).toString();
}

export function timestampToMs(ts: WireTimestamp | null | undefined): number | undefined {
  if (!ts) return undefined;
  const seconds = BigInt(ts.seconds || '0');
  if (seconds === 0n && !ts.nanos) return undefined;
  return Number(seconds * 1000n) + Math.floor((ts.nanos ?? 0) / 1e6);
}

export function msToTimestamp(ms: number): WireTimestamp {
  const whole = Math.floor(ms);
  const seconds = Math.floor(whole / 1000);
  return { seconds: String(seconds), nanos: (whole - seconds * 1000) * 1_000_000 };
}

// --- JSON objects as text --------------------------------------------------

export function parseObject(text: string | null | undefined, what: string): Record<string, unknown> {
  if (text === undefined || text === null || text === '' || text === 'null') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new WireFormatError(`malformed request ${what}: not valid JSON`);
  }
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new WireFormatError(`malformed request ${what}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

export function stringifyObject(value: Record<string, unknown> | undefined): string {
  return JSON.stringify(value ?? {});
}

// --- requests --------------------------------------------------------------

export function toOperation(op: string): Operation {
  if ((OPERATIONS as readonly string[]).includes(op)) return op as Operation;
  throw new WireFormatError(`unsupported operation ${JSON.stringify(op).slice(0, 40)}`, ERR_TYPE.unsupportedOperation);
}

export function toStoredSecret(secret: WireSecret): StoredSecret {
  const internal = parseObject(secret.internal_data, 'secret internal_data');
  const type = typeof internal[SECRET_TYPE_KEY] === 'string' ? (internal[SECRET_TYPE_KEY] as string) : '';
  const { [SECRET_TYPE_KEY]: _dropped, ...internalData } = internal;
  const lease: Partial<WireLeaseOptions> = secret.lease_options ?? {};
  const stored: StoredSecret = {
    type,
    internalData,
    ttlMs: nsToMs(lease.TTL),
    maxTtlMs: nsToMs(lease.MaxTTL),
    renewable: Boolean(lease.renewable),
    issueTimeMs: timestampToMs(lease.issue_time) ?? 0,
  };
  const incrementMs = nsToMs(lease.increment);
  if (incrementMs > 0) stored.incrementMs = incrementMs;
  if (secret.lease_id) stored.leaseId = secret.lease_id;
  return stored;
}

export function toCaller(req: WireRequest): Caller {
  const caller: Caller = { displayName: req.display_name ?? '' };
  if (req.entity_id) caller.entityId = req.entity_id;
  if (req.client_token_accessor) caller.tokenAccessor = req.client_token_accessor;
  const addr = req.connection?.remote_addr;
  if (addr) caller.remoteAddr = addr;
  return caller;
}

export function toLogicalRequest(req: WireRequest | null, storage: Storage): LogicalRequest {
  if (!req) throw new WireFormatError('the call carries no request');
  const logical: LogicalRequest = {
    operation: toOperation(req.operation),
    path: (req.path ?? '').replace(/^\/+/, ''),
    data: parseObject(req.data, 'data'),
    caller: toCaller(req),
    storage,
    mountPoint: req.mount_point ?? '',
  };
  if (req.secret) logical.secret = toStoredSecret(req.secret);
  return logical;
}

// --- responses -------------------------------------------------------------

function wireData(data: Record<string, unknown> | undefined): string {
  if (!data) return '{}';
  const raw = data[HTTP_RAW_BODY];
  if (typeof raw === 'string') return stringifyObject({ ...data, [HTTP_RAW_BODY]: Buffer.from(raw, 'utf8').toString('base64') });
  if (raw instanceof Uint8Array) return stringifyObject({ ...data, [HTTP_RAW_BODY]: Buffer.from(raw).toString('base64') });
  return stringifyObject(data);
}

export function toWireResponse(resp: LogicalResponse, req: LogicalRequest, nowMs: number): WireResponse {
  const out: WireResponse = { secret: null, data: wireData(resp.data), warnings: resp.warnings ?? [] };
  if (resp.secret) {
    const s = resp.secret;
    const issueTimeMs = s.issueTimeMs ?? (req.secret?.issueTimeMs || undefined) ?? nowMs;
    out.secret = {
      lease_options: {
        TTL: msToNs(s.ttlMs),
        MaxTTL: msToNs(s.maxTtlMs),
        renewable: s.renewable,
        increment: req.operation === 'renew' && req.secret?.incrementMs ? msToNs(req.secret.incrementMs) : '0',
        issue_time: msToTimestamp(issueTimeMs),
      },
      internal_data: stringifyObject({ ...s.internalData, [SECRET_TYPE_KEY]: s.type }),
      lease_id: '',
    };
  }
  return out;
}

function protoError(errType: number, message: string, code = 0): WireError {
  return { err_type: errType, err_msg: message, err_code: String(code) };
}

/** The reply Vault turns into the same HTTP answer the dev server gives. */
/** logical.ErrReadOnly's text: a standby's storage refuses writes with it, and the server forwards the request to the leader only when it comes back verbatim. */
export const READ_ONLY_STORAGE = 'cannot write to readonly storage';

/** Whether any error in the cause chain is the server's read-only storage refusal. */
function readOnlyStorage(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 8 && e instanceof Error; i++) {
    if (e.message.includes(READ_ONLY_STORAGE)) return true;
    e = e.cause;
  }
  return false;
}

export function errorReply(err: unknown): HandleRequestReply {
  // On a standby that serves reads (OpenBao 2.5+), a write the engine attempts is refused;
  // answering that refusal as is makes the server forward the request to the leader.
  if (readOnlyStorage(err)) return { response: null, err: protoError(ERR_TYPE.unknown, READ_ONLY_STORAGE) };
  if (err instanceof WireFormatError) {
    if (err.errType === ERR_TYPE.unsupportedOperation) return { response: null, err: protoError(err.errType, err.message) };
    return { response: { secret: null, data: stringifyObject({ error: err.message }), warnings: [] }, err: null };
  }
  if (isEngineError(err)) return engineErrorReply(err);
  return { response: null, err: protoError(ERR_TYPE.internal, 'internal error') };
}

export function engineErrorReply(err: EngineError): HandleRequestReply {
  switch (err.status) {
    case 400:
      return { response: { secret: null, data: stringifyObject({ error: err.message }), warnings: [] }, err: null };
    case 404:
      return { response: null, err: protoError(ERR_TYPE.unsupportedPath, err.message) };
    case 405:
      return { response: null, err: protoError(ERR_TYPE.unsupportedOperation, err.message) };
    case 500:
      return { response: null, err: protoError(ERR_TYPE.internal, err.message) };
    default:
      return { response: null, err: protoError(ERR_TYPE.coded, err.message, err.status) };
  }
}

/** For Initialize and existence checks: the error alone. */
export function errorOnly(err: unknown): WireError {
  const reply = errorReply(err);
  if (reply.err) return reply.err;
  const message = err instanceof Error ? err.message : 'invalid request';
  return protoError(ERR_TYPE.coded, message, 400);
}
