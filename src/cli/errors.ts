// The CLI's error classes. Commands throw them; only main.ts turns errors into
// an exit code and the one stderr line `tvm: <message>`.

import { CodedError, TvmClientError } from '../client/errors.ts';

export { VaultRequestError, ServerUnreachableError, InvalidInputError, TvmClientError } from '../client/errors.ts';

export type CliErrorCode = 'ERR_USAGE' | 'ERR_TOKEN_INVALID' | 'ERR_NOT_FOUND' | 'ERR_CHECK_FAILED';

export class CliError extends CodedError<CliErrorCode> {
  override name = 'CliError';
}

/** The command line itself is wrong: a missing argument, an unusable option value. Exit 2. */
export class CliUsageError extends CliError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('ERR_USAGE', message, options);
    this.name = 'CliUsageError';
  }
}

/** `tvm token verify` found the token not valid. Exit 1. */
export class TokenInvalidError extends CliError {
  readonly reason: string;

  constructor(reason: string) {
    super('ERR_TOKEN_INVALID', `token invalid: ${reason}`);
    this.name = 'TokenInvalidError';
    this.reason = reason;
  }
}

/** A check ran and found problems (already printed). Exit 1. */
export class CheckFailedError extends CliError {
  constructor(message: string) {
    super('ERR_CHECK_FAILED', message);
    this.name = 'CheckFailedError';
  }
}

/** A read found nothing at the path (Vault's empty 404). Exit 1. */
export class NotFoundError extends CliError {
  constructor(message: string) {
    super('ERR_NOT_FOUND', message);
    this.name = 'NotFoundError';
  }
}

export const EXIT_OK = 0;
/** The request failed: server error, denied, unreachable, not found, token invalid, anything unexpected. */
export const EXIT_FAILURE = 1;
/** The input is wrong: usage errors, bad option values, and Vault's 400 answers. */
export const EXIT_USAGE = 2;

/** The exit code for an error. The one place that decides it. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliUsageError) return EXIT_USAGE;
  if (err instanceof TvmClientError) {
    if (err.code === 'ERR_INVALID_INPUT') return EXIT_USAGE;
    if (err.code === 'ERR_VAULT_REQUEST' && (err as { status?: number }).status === 400) return EXIT_USAGE;
    return EXIT_FAILURE;
  }
  return EXIT_FAILURE;
}

/** The one line printed for an error: its message on a single line, never a stack. */
export function errorLine(err: unknown): string {
  let message: string;
  if (err instanceof Error) message = err.message;
  else if (typeof err === 'string') message = err;
  else message = 'unexpected failure';
  const oneLine = message.replace(/\s*\r?\n\s*/g, '; ').trim();
  return `tvm: ${oneLine || 'unexpected failure'}\n`;
}
