import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/index.ts';
import type { LogicalRequest } from '../../src/engine/index.ts';
import {
  engineErrorReply,
  errorReply,
  msToNs,
  nsToMs,
  parseObject,
  toLogicalRequest,
  toWireResponse,
  timestampToMs,
  msToTimestamp,
} from '../../src/plugin/translate.ts';
import type { WireRequest } from '../../src/plugin/wire.ts';
import { MapStorage } from '../engine/helpers.ts';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0, 250);

function wireRequest(extra: Partial<WireRequest> = {}): WireRequest {
  return {
    id: 'r1',
    operation: 'read',
    path: 'creds/demo',
    data: 'null',
    secret: null,
    display_name: 'token-ci',
    client_token_accessor: 'accessor-ci',
    mount_point: 'tvm/',
    mount_type: 'tvm',
    entity_id: 'entity-9',
    unauthenticated: false,
    connection: { remote_addr: '10.0.0.7', remote_port: 5555 },
    ...extra,
  };
}

describe('durations and times on the wire', () => {
  it('keeps int64 nanoseconds exact', () => {
    expect(msToNs(300_000)).toBe('300000000000');
    expect(msToNs(31_536_000_000_000)).toBe('31536000000000000000'); // 1000 years: past 2^53 ns
    expect(nsToMs('9223372036854775807')).toBe(9223372036854);
    expect(nsToMs('600000000000')).toBe(600_000);
    expect(nsToMs('')).toBe(0);
  });

  it('round-trips timestamps to the millisecond', () => {
    const ts = msToTimestamp(NOW);
    expect(ts).toEqual({ seconds: String(Math.floor(NOW / 1000)), nanos: 250_000_000 });
    expect(timestampToMs(ts)).toBe(NOW);
    expect(timestampToMs(null)).toBeUndefined();
  });
});

describe('requests', () => {
  it('maps the caller, mount and a null body', () => {
    const req = toLogicalRequest(wireRequest(), new MapStorage());
    expect(req).toMatchObject({
      operation: 'read',
      path: 'creds/demo',
      data: {},
      mountPoint: 'tvm/',
      caller: { displayName: 'token-ci', entityId: 'entity-9', tokenAccessor: 'accessor-ci', remoteAddr: '10.0.0.7' },
    });
  });

  it('takes the secret type out of internal_data and converts the lease exactly', () => {
    const req = toLogicalRequest(
      wireRequest({
        operation: 'renew',
        secret: {
          internal_data: JSON.stringify({ jti: 'j1', role: 'demo', secret_type: 'tvm_token' }),
          lease_id: '',
          lease_options: {
            TTL: '300000000000',
            MaxTTL: '3600000000000',
            increment: '600000000000',
            renewable: true,
            issue_time: msToTimestamp(NOW),
          },
        },
      }),
      new MapStorage(),
    );
    expect(req.secret).toEqual({
      type: 'tvm_token',
      internalData: { jti: 'j1', role: 'demo' },
      ttlMs: 300_000,
      maxTtlMs: 3_600_000,
      incrementMs: 600_000,
      renewable: true,
      issueTimeMs: NOW,
    });
  });

  it('refuses malformed data and unknown operations with typed errors', () => {
    const storage = new MapStorage();
    expect(errorReply(catchErr(() => toLogicalRequest(wireRequest({ data: '{oops' }), storage)))).toEqual({
      response: { secret: null, data: JSON.stringify({ error: 'malformed request data: not valid JSON' }), warnings: [] },
      err: null,
    });
    expect(errorReply(catchErr(() => toLogicalRequest(wireRequest({ data: '[1,2]' }), storage))).response?.data).toContain(
      'expected a JSON object',
    );
    expect(errorReply(catchErr(() => toLogicalRequest(wireRequest({ operation: 'patch' }), storage))).err).toMatchObject({
      err_type: 5,
    });
  });

  it('reads an empty or "null" body as no fields', () => {
    expect(parseObject('', 'data')).toEqual({});
    expect(parseObject('null', 'data')).toEqual({});
  });
});

describe('responses', () => {
  const base: LogicalRequest = {
    operation: 'read',
    path: 'creds/demo',
    data: {},
    caller: { displayName: 't' },
    storage: new MapStorage(),
    mountPoint: 'tvm/',
  };

  it('always sends JSON objects for data and internal_data, and always an issue_time', () => {
    const out = toWireResponse(
      { secret: { type: 'tvm_token', ttlMs: 300_000, maxTtlMs: 3_600_000, renewable: true, internalData: {} } },
      base,
      NOW,
    );
    expect(out.data).toBe('{}');
    expect(JSON.parse(out.secret!.internal_data)).toEqual({ secret_type: 'tvm_token' });
    expect(out.secret!.lease_options).toEqual({
      TTL: '300000000000',
      MaxTTL: '3600000000000',
      renewable: true,
      increment: '0',
      issue_time: msToTimestamp(NOW),
    });
  });

  it('keeps the stored issue_time and echoes the increment on renew', () => {
    const issued = NOW - 60_000;
    const renew: LogicalRequest = {
      ...base,
      operation: 'renew',
      secret: { type: 'tvm_token', internalData: {}, ttlMs: 1, maxTtlMs: 2, renewable: true, issueTimeMs: issued, incrementMs: 600_000 },
    };
    const out = toWireResponse(
      { data: { token: 'x' }, secret: { type: 'tvm_token', ttlMs: 600_000, maxTtlMs: 3_600_000, renewable: true, internalData: { jti: 'j' } } },
      renew,
      NOW,
    );
    expect(out.secret!.lease_options!.issue_time).toEqual(msToTimestamp(issued));
    expect(out.secret!.lease_options!.increment).toBe('600000000000');
  });

  it('sends a raw body base64-encoded, as a Go plugin\'s []byte would be', () => {
    const out = toWireResponse({ data: { http_raw_body: '{"keys":[]}', http_content_type: 'application/json', http_status_code: 200 } }, base, NOW);
    const data = JSON.parse(out.data) as Record<string, unknown>;
    expect(Buffer.from(data.http_raw_body as string, 'base64').toString()).toBe('{"keys":[]}');
    expect(data.http_status_code).toBe(200);
  });
});

describe('errors', () => {
  it('maps engine errors to what Vault turns into the same status', () => {
    expect(engineErrorReply(new EngineError('ERR_INVALID_FIELD', 'invalid ttl: no')).response?.data).toBe('{"error":"invalid ttl: no"}');
    expect(engineErrorReply(new EngineError('ERR_UNSUPPORTED_PATH', 'unsupported path: "x"')).err).toMatchObject({ err_type: 6 });
    expect(engineErrorReply(new EngineError('ERR_UNSUPPORTED_OPERATION', 'no')).err).toMatchObject({ err_type: 5 });
    expect(engineErrorReply(new EngineError('ERR_CIDR_DENIED', 'outside')).err).toEqual({ err_type: 3, err_msg: 'outside', err_code: '403' });
    expect(engineErrorReply(new EngineError('ERR_TOO_MANY_LEASES', 'full')).err).toEqual({ err_type: 3, err_msg: 'full', err_code: '429' });
    expect(engineErrorReply(new EngineError('ERR_INTERNAL', 'signing failed')).err).toMatchObject({ err_type: 2 });
  });

  it('answers a standby\'s read-only storage refusal verbatim, so the server forwards the request to the leader', () => {
    const refused = new EngineError('ERR_INTERNAL', 'storage write of leases/x/y failed', {
      cause: new Error('storage put failed: cannot write to readonly storage'),
    });
    expect(errorReply(refused)).toEqual({ response: null, err: { err_type: 0, err_msg: 'cannot write to readonly storage', err_code: '0' } });
  });

  it('does not leak the message of an unexpected error', () => {
    expect(errorReply(new Error('secret detail'))).toEqual({ response: null, err: { err_type: 2, err_msg: 'internal error', err_code: '0' } });
  });
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}
