// One error family for the client library, with stable string codes callers
// switch on. Messages are single lines and never carry a token or a secret.

export type ClientErrorCode =
  | 'ERR_VAULT_REQUEST' // Vault answered with a non-2xx status
  | 'ERR_SERVER_UNREACHABLE' // no HTTP answer at all: refused, DNS, timeout, TLS
  | 'ERR_INVALID_INPUT' // the caller's input is unusable before any request (bad VAULT_ADDR, ...)
  | 'ERR_UNEXPECTED_RESPONSE'; // a 2xx answer that is not shaped like Vault's

/**
 * An error with a stable string code callers switch on, and an optional cause.
 * This library's family stands on it, and so does the CLI's, one layer up.
 */
export class CodedError<Code extends string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

export class TvmClientError extends CodedError<ClientErrorCode> {
  override name = 'TvmClientError';
}

/** Vault answered, with an error status. `errors` are Vault's own messages. */
export class VaultRequestError extends TvmClientError {
  readonly status: number;
  readonly errors: string[];
  /** The API path, relative to /v1/, e.g. `tvm/creds/demo`. */
  readonly path: string;
  readonly method: string;

  constructor(details: { status: number; errors: string[]; method: string; path: string }, options: { cause?: unknown } = {}) {
    super('ERR_VAULT_REQUEST', describeVaultError(details), options);
    this.name = 'VaultRequestError';
    this.status = details.status;
    this.errors = details.errors;
    this.method = details.method;
    this.path = details.path;
  }

  /** 403: the token is missing, wrong, expired or lacks the capability. */
  get denied(): boolean {
    return this.status === 403;
  }

  /** 400: Vault rejected the request's input (bad field, unknown role, bad duration). */
  get badInput(): boolean {
    return this.status === 400;
  }
}

function describeVaultError(d: { status: number; errors: string[]; method: string; path: string }): string {
  const where = `HTTP ${d.status} on ${d.method} ${d.path}`;
  if (d.errors.length > 0) return `${d.errors.join('; ')} (${where})`;
  if (d.status === 404) return `nothing found at ${d.path} (${where})`;
  return where;
}

/** Flattens Vault's error strings (which may be multi-line "N errors occurred:" lists) into single lines. */
export function vaultErrorLines(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  const out: string[] = [];
  for (const item of raw) {
    if (typeof item !== 'string') continue;
    for (const line of item.split(/\r?\n/)) {
      const text = line.replace(/^\s*\*\s*/, '').trim();
      if (text === '' || /^\d+ errors? occurred:$/.test(text)) continue;
      out.push(text);
    }
  }
  return out;
}

/** No HTTP answer from Vault: connection refused, unknown host, timeout, TLS failure. */
export class ServerUnreachableError extends TvmClientError {
  readonly addr: string;
  readonly reason: string;

  constructor(addr: string, reason: string, options: { cause?: unknown } = {}) {
    super('ERR_SERVER_UNREACHABLE', `cannot reach Vault at ${addr}: ${reason}`, options);
    this.name = 'ServerUnreachableError';
    this.addr = addr;
    this.reason = reason;
  }
}

/** Input the library refuses before sending anything (the CLI maps it to a usage exit). */
export class InvalidInputError extends TvmClientError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_INVALID_INPUT', message, options);
    this.name = 'InvalidInputError';
  }
}

/** A 2xx answer that lacks what the API contract promises. */
export class UnexpectedResponseError extends TvmClientError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_UNEXPECTED_RESPONSE', message, options);
    this.name = 'UnexpectedResponseError';
  }
}

export function isClientError(err: unknown): err is TvmClientError {
  return err instanceof TvmClientError;
}
