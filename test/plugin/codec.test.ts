// The hand-written codecs (src/plugin/codec.ts) against protobufjs's
// reflection codecs for the same messages: what one writes the other reads
// the same, for any value of the fields tvm uses, with unknown fields skipped.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as codec from '../../src/plugin/codec.ts';
import { protocolRoot, reflectionCodec } from '../../src/plugin/protos.ts';

const root = protocolRoot();
const reflection = (name: string) => reflectionCodec(root.lookupType(name));

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String);
const nonNegInt64 = fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }).map(String);
const text = fc.string({ unit: 'binary', maxLength: 40 });
const timestamp = fc.record({ seconds: int64, nanos: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) });
const leaseOptions = fc.record({
  TTL: nonNegInt64,
  renewable: fc.boolean(),
  increment: nonNegInt64,
  issue_time: fc.option(timestamp, { nil: null }),
  MaxTTL: nonNegInt64,
});
const secret = fc.record({ lease_options: fc.option(leaseOptions, { nil: null }), internal_data: text, lease_id: text });

/** A pb.Request with tvm's fields and some it ignores (which the hand codec must skip). */
const request = fc.record({
  id: text,
  ReplicationCluster: text,
  operation: text,
  path: text,
  data: text,
  secret: fc.option(secret, { nil: null }),
  headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.record({ header: fc.array(text, { maxLength: 2 }) }), { maxKeys: 2 }),
  client_token: text,
  client_token_accessor: text,
  display_name: text,
  mount_point: text,
  mount_type: text,
  mount_accessor: text,
  entity_id: text,
  policy_override: fc.boolean(),
  unauthenticated: fc.boolean(),
  connection: fc.option(fc.record({ remote_addr: text, remote_port: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }), { nil: null }),
});

const pick = (o: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, o[k]]));
const REQUEST_FIELDS = ['id', 'operation', 'path', 'data', 'secret', 'display_name', 'client_token_accessor', 'mount_point', 'mount_type', 'entity_id', 'unauthenticated', 'connection'];

function viaReflection(name: string, value: unknown): Record<string, unknown> {
  const r = reflection(name);
  return r.decode(r.encode(value)) as Record<string, unknown>;
}

describe('hand-written codecs equal the reflection ones', () => {
  it('HandleRequestArgs (and HandleExistenceCheckArgs): the fields tvm reads, the rest skipped', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.option(request, { nil: null }), (storageId, req) => {
        for (const name of ['pb.HandleRequestArgs', 'pb.HandleExistenceCheckArgs']) {
          const bytes = reflection(name).encode({ storage_id: storageId, request: req });
          const expected = reflection(name).decode(bytes) as { storage_id: number; request: Record<string, unknown> | null };
          const got = codec.decodeHandleRequestArgs(bytes);
          expect(got.storage_id).toBe(expected.storage_id);
          if (expected.request === null) expect(got.request).toBeNull();
          else {
            const want = pick(expected.request, REQUEST_FIELDS);
            const conn = want.connection as Record<string, unknown> | null;
            if (conn) want.connection = pick(conn, ['remote_addr', 'remote_port']);
            expect(got.request).toEqual(want);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('HandleRequestReply: what the plugin writes, the host reads back the same', () => {
    const wireError = fc.record({ err_type: fc.integer({ min: 0, max: 10 }), err_msg: text, err_code: int64 });
    const response = fc.record({ secret: fc.option(secret, { nil: null }), data: text, warnings: fc.array(text, { maxLength: 3 }) });
    fc.assert(
      fc.property(fc.option(response, { nil: null }), fc.option(wireError, { nil: null }), (resp, err) => {
        const reply = { response: resp, err };
        const r = reflection('pb.HandleRequestReply');
        expect(r.decode(codec.encodeHandleRequestReply(reply))).toEqual(viaReflection('pb.HandleRequestReply', reply));
      }),
      { numRuns: 300 },
    );
  });

  it('an error with every field at its default is still an error (the message is written, empty)', () => {
    const bytes = codec.encodeHandleRequestReply({ response: null, err: { err_type: 0, err_msg: '', err_code: '0' } });
    expect(reflection('pb.HandleRequestReply').decode(bytes)).toMatchObject({ response: null, err: { err_type: 0, err_msg: '', err_code: '0' } });
  });

  it('the Storage calls: requests written, replies read', () => {
    const value = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
    const entry = fc.record({ key: text, value, seal_wrap: fc.boolean() });
    fc.assert(
      fc.property(text, text, fc.option(entry, { nil: null }), fc.array(text, { maxLength: 4 }), (key, err, e, keys) => {
        const argsOf = (name: string, bytes: Buffer) => reflection(name).decode(bytes);
        expect(argsOf('pb.StorageGetArgs', codec.encodeStorageGetArgs({ key }))).toEqual({ key });
        expect(argsOf('pb.StorageDeleteArgs', codec.encodeStorageDeleteArgs({ key }))).toEqual({ key });
        expect(argsOf('pb.StorageListArgs', codec.encodeStorageListArgs({ prefix: key }))).toEqual({ prefix: key });
        expect(argsOf('pb.StoragePutArgs', codec.encodeStoragePutArgs({ entry: e }))).toEqual(viaReflection('pb.StoragePutArgs', { entry: e }));

        const reply = (name: string, v: unknown) => reflection(name).encode(v);
        expect(codec.decodeStoragePutReply(reply('pb.StoragePutReply', { err }))).toEqual({ err });
        expect(codec.decodeStorageDeleteReply(reply('pb.StorageDeleteReply', { err }))).toEqual({ err });
        expect(codec.decodeStorageListReply(reply('pb.StorageListReply', { keys, err }))).toEqual({ keys, err });
        const got = codec.decodeStorageGetReply(reply('pb.StorageGetReply', { entry: e, err }));
        expect(got).toEqual(viaReflection('pb.StorageGetReply', { entry: e, err }));
      }),
      { numRuns: 300 },
    );
  });

  it('a truncated message is refused, not read past its end', () => {
    const bytes = reflection('pb.HandleRequestArgs').encode({ storage_id: 1, request: { path: 'creds/x', data: '{}' } });
    expect(() => codec.decodeHandleRequestArgs(bytes.subarray(0, bytes.length - 3))).toThrow(RangeError);
  });
});
