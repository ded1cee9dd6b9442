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
  | 'ERR_OUTSIDE_WINDOW' // now is outside the role's allowed_hours
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
  ERR_OUTSIDE_WINDOW: 403,
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

/** How much of a caller-supplied value a message may show. */
const SHOWN_LENGTH = 80;
/** Containers nested deeper than this are shown as `[...]` / `{...}`. */
const SHOWN_DEPTH = 3;

/**
 * Renders a caller-supplied value for an error message, JSON-like, bounded in
 * depth and length and without recursion: a value nested thousands of levels
 * deep or megabytes long costs at most a few dozen steps. Never use it for a
 * value that can hold a secret: name the field instead (see describeType).
 */
export function showValue(value: unknown, maxLength: number = SHOWN_LENGTH): string {
  const out: string[] = [];
  let length = 0;
  const emit = (text: string): boolean => {
    out.push(text);
    length += text.length;
    return length <= maxLength;
  };
  // Each frame is a container being rendered: its items (or entries) and where it is.
  type Frame = { close: string; items: Array<[string | null, unknown]>; next: number; depth: number };
  const stack: Frame[] = [];
  const open = (v: unknown, depth: number): boolean => {
    if (v === null || typeof v !== 'object') return emit(scalar(v, maxLength));
    const isArray = Array.isArray(v);
    if (depth >= SHOWN_DEPTH) return emit(isArray ? '[...]' : '{...}');
    // Only as many items as could be shown are taken out of the container.
    const limit = maxLength;
    const items: Array<[string | null, unknown]> = [];
    if (isArray) {
      const arr = v as unknown[];
      for (let i = 0; i < arr.length && i < limit; i++) items.push([null, arr[i]]);
    } else {
      let n = 0;
      for (const k in v as Record<string, unknown>) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        if (n++ >= limit) break;
        items.push([k, (v as Record<string, unknown>)[k]]);
      }
    }
    stack.push({ close: isArray ? ']' : '}', items, next: 0, depth });
    return emit(isArray ? '[' : '{');
  };
  let going = open(value, 0);
  while (going && stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.next >= frame.items.length) {
      stack.pop();
      going = emit(frame.close);
      continue;
    }
    const [key, item] = frame.items[frame.next];
    if (frame.next > 0) going = emit(',');
    frame.next++;
    if (going && key !== null) going = emit(`${scalar(key, maxLength)}:`);
    if (going) going = open(item, frame.depth + 1);
  }
  const text = out.join('');
  return text.length > maxLength ? `${text.slice(0, Math.max(0, maxLength - 3))}...` : text;
}

function scalar(v: unknown, maxLength: number): string {
  switch (typeof v) {
    case 'string':
      // Only the part that can be shown is quoted.
      return JSON.stringify(v.length > maxLength ? v.slice(0, maxLength + 1) : v);
    case 'number':
    case 'boolean':
      return String(v);
    case 'bigint':
      return `${v}`;
    case 'undefined':
      return 'undefined';
    default:
      return v === null ? 'null' : typeof v;
  }
}

/** The JSON type of a value, for messages about fields that may hold secrets ("expected a string, got a list"). */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

export function isEngineError(err: unknown): err is EngineError {
  return err instanceof EngineError;
}
