// Hand-written protobuf codecs for the messages on every request's path:
// HandleRequestArgs in, HandleRequestReply out, and the Storage calls back to
// the host. protobufjs's reflection (fromObject/encode, decode/toObject with
// defaults) builds every field of pb.Request, headers map included, and walks
// each value through a conversion; these read and write only the fields tvm
// uses and skip the rest, as any protobuf reader may. They produce and take the
// same shapes as the reflection codecs with protos.ts's CONVERSION (wire.ts),
// so either can serve a message: test/plugin/codec.test.ts holds them equal.
//
// Encoding is proto3's canonical form: a scalar at its default value is left
// out, a message field that is set is always written (an empty ProtoError is
// still an error).

import protobuf from 'protobufjs';
import type { HandleRequestArgs, HandleRequestReply, WireConnection, WireLeaseOptions, WireRequest, WireSecret, WireTimestamp } from './wire.ts';

type Reader = protobuf.Reader;
type Writer = protobuf.Writer;

// Wire types.
const VARINT = 0;
const LEN = 2;
const tag = (field: number, wireType: number): number => (field << 3) | wireType;

// --- reading ---------------------------------------------------------------

/** The end offset of the length-delimited value at the reader's position. */
function messageEnd(r: Reader): number {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > r.len) throw new RangeError(`index out of range: ${end} > ${r.len}`);
  return end;
}

/** An int64 varint as a decimal string (exact; protos.ts reads longs as String). */
function readInt64(r: Reader): string {
  let value = 0n;
  for (let shift = 0n; ; shift += 7n) {
    if (r.pos >= r.len) throw new RangeError('index out of range: truncated varint');
    if (shift > 63n) throw new Error('invalid varint encoding');
    const b = r.buf[r.pos++];
    value |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  return BigInt.asIntN(64, value).toString();
}

function readTimestamp(r: Reader, end: number): WireTimestamp {
  const out: WireTimestamp = { seconds: '0', nanos: 0 };
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(1, VARINT)) out.seconds = readInt64(r);
    else if (t === tag(2, VARINT)) out.nanos = r.int32();
    else r.skipType(t & 7);
  }
  return out;
}

function readLeaseOptions(r: Reader, end: number): WireLeaseOptions {
  const out: WireLeaseOptions = { TTL: '0', renewable: false, increment: '0', issue_time: null, MaxTTL: '0' };
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case tag(1, VARINT): out.TTL = readInt64(r); break;
      case tag(2, VARINT): out.renewable = r.bool(); break;
      case tag(3, VARINT): out.increment = readInt64(r); break;
      case tag(4, LEN): out.issue_time = readTimestamp(r, messageEnd(r)); break;
      case tag(5, VARINT): out.MaxTTL = readInt64(r); break;
      default: r.skipType(t & 7);
    }
  }
  return out;
}

function readSecret(r: Reader, end: number): WireSecret {
  const out: WireSecret = { lease_options: null, internal_data: '', lease_id: '' };
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case tag(1, LEN): out.lease_options = readLeaseOptions(r, messageEnd(r)); break;
      case tag(2, LEN): out.internal_data = r.string(); break;
      case tag(3, LEN): out.lease_id = r.string(); break;
      default: r.skipType(t & 7);
    }
  }
  return out;
}

function readConnection(r: Reader, end: number): WireConnection {
  const out: WireConnection = { remote_addr: '', remote_port: 0 };
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(1, LEN)) out.remote_addr = r.string();
    else if (t === tag(3, VARINT)) out.remote_port = r.int32();
    else r.skipType(t & 7);
  }
  return out;
}

/** pb.Request: the fields wire.ts names; auth, headers, client_token, wrap_info and the rest are skipped. */
function readRequest(r: Reader, end: number): WireRequest {
  const out: WireRequest = {
    id: '',
    operation: '',
    path: '',
    data: '',
    secret: null,
    display_name: '',
    client_token_accessor: '',
    mount_point: '',
    mount_type: '',
    entity_id: '',
    unauthenticated: false,
    connection: null,
  };
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case tag(1, LEN): out.id = r.string(); break;
      case tag(3, LEN): out.operation = r.string(); break;
      case tag(4, LEN): out.path = r.string(); break;
      case tag(5, LEN): out.data = r.string(); break;
      case tag(6, LEN): out.secret = readSecret(r, messageEnd(r)); break;
      case tag(10, LEN): out.client_token_accessor = r.string(); break;
      case tag(11, LEN): out.display_name = r.string(); break;
      case tag(12, LEN): out.mount_point = r.string(); break;
      case tag(13, LEN): out.mount_type = r.string(); break;
      case tag(17, LEN): out.entity_id = r.string(); break;
      case tag(19, VARINT): out.unauthenticated = r.bool(); break;
      case tag(20, LEN): out.connection = readConnection(r, messageEnd(r)); break;
      default: r.skipType(t & 7);
    }
  }
  return out;
}

/** pb.HandleRequestArgs, and pb.HandleExistenceCheckArgs (the same fields). */
export function decodeHandleRequestArgs(buf: Uint8Array): HandleRequestArgs {
  const r = protobuf.Reader.create(buf);
  const out: HandleRequestArgs = { storage_id: 0, request: null };
  while (r.pos < r.len) {
    const t = r.uint32();
    if (t === tag(1, VARINT)) out.storage_id = r.uint32();
    else if (t === tag(2, LEN)) out.request = readRequest(r, messageEnd(r));
    else r.skipType(t & 7);
  }
  return out;
}

/** Decodes a reply made only of strings (fields 1..n), e.g. pb.StoragePutReply {err = 1}. */
function stringFields<K extends string>(names: readonly K[]): (buf: Uint8Array) => Record<K, string> {
  return (buf) => {
    const r = protobuf.Reader.create(buf);
    const out = {} as Record<K, string>;
    for (const name of names) out[name] = '';
    while (r.pos < r.len) {
      const t = r.uint32();
      const field = t >>> 3;
      if ((t & 7) === LEN && field >= 1 && field <= names.length) out[names[field - 1]] = r.string();
      else r.skipType(t & 7);
    }
    return out;
  };
}

export const decodeStoragePutReply = stringFields(['err'] as const);
export const decodeStorageDeleteReply = stringFields(['err'] as const);

export interface DecodedStorageEntry {
  key: string;
  value: Buffer;
  seal_wrap: boolean;
}

function readStorageEntry(r: Reader, end: number): DecodedStorageEntry {
  const out: DecodedStorageEntry = { key: '', value: Buffer.alloc(0), seal_wrap: false };
  while (r.pos < end) {
    const t = r.uint32();
    if (t === tag(1, LEN)) out.key = r.string();
    else if (t === tag(2, LEN)) out.value = r.bytes() as Buffer;
    else if (t === tag(3, VARINT)) out.seal_wrap = r.bool();
    else r.skipType(t & 7);
  }
  return out;
}

/** pb.StorageGetReply. */
export function decodeStorageGetReply(buf: Uint8Array): { entry: DecodedStorageEntry | null; err: string } {
  const r = protobuf.Reader.create(buf);
  const out: { entry: DecodedStorageEntry | null; err: string } = { entry: null, err: '' };
  while (r.pos < r.len) {
    const t = r.uint32();
    if (t === tag(1, LEN)) out.entry = readStorageEntry(r, messageEnd(r));
    else if (t === tag(2, LEN)) out.err = r.string();
    else r.skipType(t & 7);
  }
  return out;
}

/** pb.StorageListReply. */
export function decodeStorageListReply(buf: Uint8Array): { keys: string[]; err: string } {
  const r = protobuf.Reader.create(buf);
  const out: { keys: string[]; err: string } = { keys: [], err: '' };
  while (r.pos < r.len) {
    const t = r.uint32();
    if (t === tag(1, LEN)) out.keys.push(r.string());
    else if (t === tag(2, LEN)) out.err = r.string();
    else r.skipType(t & 7);
  }
  return out;
}

// --- writing ---------------------------------------------------------------

function writeString(w: Writer, field: number, value: string | null | undefined): void {
  if (value) w.uint32(tag(field, LEN)).string(value);
}

/** An int64 given as a decimal string (or number), written as protobuf does: two's complement, 10 bytes when negative. */
function writeInt64(w: Writer, field: number, value: string | number | null | undefined): void {
  if (value === undefined || value === null || value === '' || value === 0 || value === '0') return;
  const v = BigInt.asUintN(64, BigInt(value));
  if (v === 0n) return;
  w.uint32(tag(field, VARINT)).uint64({ low: Number(v & 0xffffffffn), high: Number(v >> 32n) } as unknown as number);
}

function writeTimestamp(w: Writer, field: number, ts: WireTimestamp): void {
  w.uint32(tag(field, LEN)).fork();
  writeInt64(w, 1, ts.seconds);
  if (ts.nanos) w.uint32(tag(2, VARINT)).int32(ts.nanos);
  w.ldelim();
}

function writeSecret(w: Writer, field: number, s: WireSecret): void {
  w.uint32(tag(field, LEN)).fork();
  const lo = s.lease_options;
  if (lo) {
    w.uint32(tag(1, LEN)).fork();
    writeInt64(w, 1, lo.TTL);
    if (lo.renewable) w.uint32(tag(2, VARINT)).bool(true);
    writeInt64(w, 3, lo.increment);
    if (lo.issue_time) writeTimestamp(w, 4, lo.issue_time);
    writeInt64(w, 5, lo.MaxTTL);
    w.ldelim();
  }
  writeString(w, 2, s.internal_data);
  writeString(w, 3, s.lease_id);
  w.ldelim();
}

/** pb.HandleRequestReply. */
export function encodeHandleRequestReply(reply: HandleRequestReply): Buffer {
  const w = protobuf.Writer.create();
  const resp = reply.response;
  if (resp) {
    w.uint32(tag(1, LEN)).fork();
    if (resp.secret) writeSecret(w, 1, resp.secret);
    writeString(w, 3, resp.data);
    for (const warning of resp.warnings ?? []) w.uint32(tag(5, LEN)).string(warning);
    w.ldelim();
  }
  const err = reply.err;
  if (err) {
    w.uint32(tag(2, LEN)).fork();
    if (err.err_type) w.uint32(tag(1, VARINT)).uint32(err.err_type);
    writeString(w, 2, err.err_msg);
    writeInt64(w, 3, err.err_code);
    w.ldelim();
  }
  return w.finish() as Buffer;
}

/** Requests of one string field 1: pb.StorageGetArgs {key}, pb.StorageDeleteArgs {key}, pb.StorageListArgs {prefix}. */
function oneString<K extends string>(name: K): (args: Record<K, string>) => Buffer {
  return (args) => {
    const w = protobuf.Writer.create();
    writeString(w, 1, args[name]);
    return w.finish() as Buffer;
  };
}

export const encodeStorageGetArgs = oneString('key');
export const encodeStorageDeleteArgs = oneString('key');
export const encodeStorageListArgs = oneString('prefix');

/** pb.StoragePutArgs. */
export function encodeStoragePutArgs(args: { entry: { key: string; value: Uint8Array; seal_wrap?: boolean } | null }): Buffer {
  const w = protobuf.Writer.create();
  const e = args.entry;
  if (e) {
    w.uint32(tag(1, LEN)).fork();
    writeString(w, 1, e.key);
    if (e.value && e.value.length > 0) w.uint32(tag(2, LEN)).bytes(e.value);
    if (e.seal_wrap) w.uint32(tag(3, VARINT)).bool(true);
    w.ldelim();
  }
  return w.finish() as Buffer;
}
