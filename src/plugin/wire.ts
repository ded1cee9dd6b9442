// TypeScript shapes of the protocol messages as the codecs hand them over
// (protos.ts's CONVERSION, and codec.ts alike): snake_case and Vault's own
// capitalisation kept, int64 as decimal strings, bytes as Buffers, absent
// message fields as null. Only the messages the plugin reads or writes.

/** google.protobuf.Timestamp; seconds is an int64 (string). */
export interface WireTimestamp {
  seconds: string;
  nanos: number;
}

/** pb.LeaseOptions: TTL, MaxTTL and increment are int64 nanoseconds. */
export interface WireLeaseOptions {
  TTL: string;
  renewable: boolean;
  increment: string;
  issue_time: WireTimestamp | null;
  MaxTTL: string;
}

/** pb.Secret: internal_data is a JSON object as text. */
export interface WireSecret {
  lease_options: WireLeaseOptions | null;
  internal_data: string;
  lease_id: string;
}

export interface WireConnection {
  remote_addr: string;
  remote_port: number;
}

/** pb.Request, the fields tvm reads. */
export interface WireRequest {
  id: string;
  operation: string;
  path: string;
  data: string;
  secret: WireSecret | null;
  display_name: string;
  /** The calling token's accessor: who holds a lease when the token has no entity. */
  client_token_accessor: string;
  mount_point: string;
  mount_type: string;
  entity_id: string;
  unauthenticated: boolean;
  connection: WireConnection | null;
}

/** pb.Response, the fields tvm writes. */
export interface WireResponse {
  secret: WireSecret | null;
  data: string;
  warnings: string[];
}

/**
 * pb.ProtoError. err_type: 0 unknown, 1 user, 2 internal, 3 coded (err_code is
 * the HTTP status), 4 status bad request, 5 unsupported operation,
 * 6 unsupported path, 7 invalid request, 8 permission denied.
 */
export interface WireError {
  err_type: number;
  err_msg: string;
  err_code: string;
}

export const ERR_TYPE = {
  unknown: 0,
  user: 1,
  internal: 2,
  coded: 3,
  statusBadRequest: 4,
  unsupportedOperation: 5,
  unsupportedPath: 6,
  invalidRequest: 7,
  permissionDenied: 8,
} as const;

export interface HandleRequestArgs {
  storage_id: number;
  request: WireRequest | null;
}

export interface HandleRequestReply {
  response: WireResponse | null;
  err: WireError | null;
}

export interface HandleExistenceCheckReply {
  check_found: boolean;
  exists: boolean;
  err: WireError | null;
}

export interface SetupArgs {
  broker_id: number;
  Config: Record<string, string>;
  backendUUID: string;
}

export interface WireStorageEntry {
  key: string;
  value: Buffer;
  seal_wrap: boolean;
}

/** plugin.ConnInfo. */
export interface ConnInfo {
  service_id: number;
  network: string;
  address: string;
}

/** logical.BackendType: 1 is a secrets engine (TypeLogical). */
export const BACKEND_TYPE_LOGICAL = 1;
