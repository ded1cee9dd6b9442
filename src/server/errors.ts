// How the server answers a failure, in Vault's words: an HttpError carries the
// status and the messages of Vault's {"errors": [...]} envelope, and
// translateError maps every error the server's parts throw onto one.

import { isEngineError, showValue } from '../sdk/errors.ts';
import { isLeaseError } from './expiration.ts';
import { PolicyParseError } from './policy.ts';
import { StatusError } from './status_error.ts';

/** An error with the HTTP status and the messages Vault would answer with. */
export class HttpError extends Error {
  readonly status: number;
  readonly errors: string[];
  /**
   * `listed`: an error Vault's core returned for an authenticated request
   * (an ACL denial, a backend's error other than an error response), which it
   * answers as a one-item error list: "1 error occurred:\n\t* <message>\n\n".
   */
  constructor(status: number, message?: string, options: { listed?: boolean } = {}) {
    super(message ?? `HTTP ${status}`);
    this.name = 'HttpError';
    this.status = status;
    this.errors = message === undefined ? [] : [options.listed ? `1 error occurred:\n\t* ${message}\n\n` : message];
  }
}

const PERMISSION_DENIED = 'permission denied';
/** A missing or unknown token: Vault answers the bare words. */
export const denied = (): HttpError => new HttpError(403, PERMISSION_DENIED);
/** A valid token the ACL refuses: Vault's core answers it as a list. */
export const deniedByPolicy = (): HttpError => new HttpError(403, PERMISSION_DENIED, { listed: true });
export const badRequest = (message: string): HttpError => new HttpError(400, message);
/** Vault's sentinels for a path or an operation no handler serves (the backend's own words are not passed on). */
export const UNSUPPORTED_PATH = 'unsupported path';
export const UNSUPPORTED_OPERATION = 'unsupported operation';

/** Maps any error to the status and message Vault would answer with; internals become a bare 500. */
export function translateError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (isEngineError(err)) return new HttpError(err.status, err.message);
  if (err instanceof StatusError) return new HttpError(err.status, err.message);
  if (err instanceof PolicyParseError) return new HttpError(400, err.message);
  if (isLeaseError(err)) {
    return err.status >= 500 && err.code !== 'ERR_EXPIRATION_STOPPED'
      ? new HttpError(500, 'internal error')
      : new HttpError(err.status, err.message);
  }
  return new HttpError(500, 'internal error');
}

/**
 * An error a mounted backend returned (rather than an error response), as
 * Vault's core answers it: a 404 and a 405 become its sentinels, and for an
 * authenticated request the error is listed. A 400 is an error response: its
 * text as is.
 */
export function returnedError(err: unknown, authenticated: boolean): HttpError {
  const e = translateError(err);
  if (e.status === 400 || e.errors.length === 0) return e;
  const message = e.status === 404 ? UNSUPPORTED_PATH : e.status === 405 ? UNSUPPORTED_OPERATION : e.message;
  return new HttpError(e.status, message, { listed: authenticated });
}

/**
 * An error of the server's own backends (sys, the token store, identity):
 * their handlers' errors as they are, and the framework's "no such path" and
 * "no such operation" as Vault's listed sentinels.
 */
export function builtinError(err: unknown, authenticated: boolean): HttpError {
  if (isEngineError(err) && (err.code === 'ERR_UNSUPPORTED_PATH' || err.code === 'ERR_UNSUPPORTED_OPERATION')) {
    return returnedError(err, authenticated);
  }
  return translateError(err);
}

/**
 * Vault's 404 for an unknown path. Only its first two segments are shown: a
 * path nothing serves may be a pasted lease id or token.
 */
export function noRoute(path: string): HttpError {
  return new HttpError(404, `no handler for route ${showValue(unroutedPath(path))}. route entry not found.`);
}

/** A path no route served, as a message or a log line may show it. */
export function unroutedPath(path: string): string {
  const parts = path.split('/');
  return parts.length > 2 ? `${parts.slice(0, 2).join('/')}/...` : path;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An error's message and its causes', outermost first (`a: b: c`), bounded. */
export function errorChain(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 8 && e !== undefined && e !== null; i++) {
    parts.push(errorMessage(e).slice(0, 500));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}
