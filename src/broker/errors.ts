// One error family for the broker, with stable string codes. Messages are
// single lines and never carry a token or a secret id.

export type BrokerErrorCode =
  | 'ERR_BAD_INPUT' // a caller's field is missing or malformed (HTTP 400)
  | 'ERR_NOT_FOUND' // unknown workload, token or route (HTTP 404)
  | 'ERR_FORBIDDEN' // a request from a browser page of another origin, or to a non-loopback name (HTTP 403)
  | 'ERR_CONFLICT' // the workload has ended or was revoked (HTTP 409)
  | 'ERR_GONE' // the token's lease was revoked or expired (HTTP 410)
  | 'ERR_TOO_LARGE' // request body over the limit (HTTP 413)
  | 'ERR_VAULT' // Vault refused or could not be reached (HTTP 502)
  | 'ERR_CLOUD_DENIED' // the cloud refused the identity or the request (HTTP 403)
  | 'ERR_CLOUD_UNAVAILABLE' // the cloud could not be reached, failed or throttled: try again (HTTP 503)
  | 'ERR_CLOUD_LIMIT' // a cloud quota was hit (HTTP 503)
  | 'ERR_CONFIG' // the broker's config file is unusable
  | 'ERR_PERMANENT'; // a Vault answer that retrying cannot change (never retried)

export class BrokerError extends Error {
  readonly code: BrokerErrorCode;
  /** The request field at fault, when there is one. */
  readonly field: string | undefined;

  constructor(code: BrokerErrorCode, message: string, options: { cause?: unknown; field?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BrokerError';
    this.code = code;
    this.field = options.field;
  }
}

export function badInput(field: string, message: string): BrokerError {
  return new BrokerError('ERR_BAD_INPUT', `${field}: ${message}`, { field });
}

export function notFound(message: string): BrokerError {
  return new BrokerError('ERR_NOT_FOUND', message);
}

/** A Vault failure retrying will not fix (lease unknown to Vault, input refused). Never retried. */
export class PermanentError extends BrokerError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_PERMANENT', message, options);
    this.name = 'PermanentError';
  }
}

export const HTTP_STATUS: Record<BrokerErrorCode, number> = {
  ERR_BAD_INPUT: 400,
  ERR_NOT_FOUND: 404,
  ERR_FORBIDDEN: 403,
  ERR_CONFLICT: 409,
  ERR_GONE: 410,
  ERR_TOO_LARGE: 413,
  ERR_VAULT: 502,
  ERR_CLOUD_DENIED: 403,
  ERR_CLOUD_UNAVAILABLE: 503,
  ERR_CLOUD_LIMIT: 503,
  ERR_CONFIG: 500,
  ERR_PERMANENT: 502,
};

/** A one-line description of any failure, safe for logs (no request config, no token). */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0];
  return typeof err === 'string' ? err : 'unknown failure';
}
