// One error family for the engine, with stable string codes callers switch on
// and the HTTP status Vault would use for the same logical error.

export type EngineErrorCode =
  | 'ERR_INVALID_REQUEST' // malformed request not tied to one field
  | 'ERR_INVALID_FIELD' // a field's value is wrong; the message names field and value
  | 'ERR_UNKNOWN_FIELD' // a field the route does not declare
  | 'ERR_MISSING_FIELD' // a required field is absent
  | 'ERR_ROLE_NOT_FOUND' // creds for a role that does not exist
  | 'ERR_SCOPE_NOT_COVERED' // a down-scope request asks for more than the role grants
  | 'ERR_CIDR_DENIED' // the caller is outside the role's bound CIDRs
  | 'ERR_TOO_MANY_LEASES' // the role's max_active_leases is reached
  | 'ERR_LEASE_REVOKED' // renew of a lease whose token was revoked
  | 'ERR_LEASE_EXPIRED' // renew past the lease's max ttl
  | 'ERR_UNSUPPORTED_PATH'
  | 'ERR_UNSUPPORTED_OPERATION'
  | 'ERR_PERMISSION_DENIED'
  | 'ERR_INTERNAL';

const STATUS: Record<EngineErrorCode, number> = {
  ERR_INVALID_REQUEST: 400,
  ERR_INVALID_FIELD: 400,
  ERR_UNKNOWN_FIELD: 400,
  ERR_MISSING_FIELD: 400,
  ERR_ROLE_NOT_FOUND: 400,
  ERR_SCOPE_NOT_COVERED: 400,
  ERR_CIDR_DENIED: 403,
  ERR_TOO_MANY_LEASES: 429,
  ERR_LEASE_REVOKED: 400,
  ERR_LEASE_EXPIRED: 400,
  ERR_UNSUPPORTED_PATH: 404,
  ERR_UNSUPPORTED_OPERATION: 405,
  ERR_PERMISSION_DENIED: 403,
  ERR_INTERNAL: 500,
};

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  /** The HTTP status Vault uses for this kind of error. */
  readonly status: number;
  /** The request field the error is about, when there is one. */
  readonly field?: string;

  constructor(code: EngineErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EngineError';
    this.code = code;
    this.status = STATUS[code];
    if (options.field !== undefined) this.field = options.field;
  }
}

/** A caller mistake about one field: 400 naming the field and, when safe, the value. */
export function invalidField(field: string, message: string): EngineError {
  return new EngineError('ERR_INVALID_FIELD', `invalid ${field}: ${message}`, { field });
}

/** Renders a caller-supplied value for an error message, bounded so a huge input cannot flood logs. */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function isEngineError(err: unknown): err is EngineError {
  return err instanceof EngineError;
}
