import { describe, expect, it } from 'vitest';
import { mapVaultError } from '../../src/client/connection.ts';
import { vaultErrorLines } from '../../src/client/errors.ts';
import {
  CliUsageError,
  InvalidInputError,
  ServerUnreachableError,
  TokenInvalidError,
  VaultRequestError,
  errorLine,
  exitCodeFor,
} from '../../src/cli/errors.ts';

const ADDR = 'http://127.0.0.1:8200';

describe('mapVaultError', () => {
  it('turns an error status into VaultRequestError with Vault\'s messages', () => {
    const err = mapVaultError(
      { message: 'permission denied', response: { statusCode: 403, body: { errors: ['1 error occurred:\n\t* permission denied\n\n'] } } },
      ADDR,
      'GET',
      'tvm/creds/demo',
    );
    expect(err).toBeInstanceOf(VaultRequestError);
    expect(err).toMatchObject({ code: 'ERR_VAULT_REQUEST', status: 403, errors: ['permission denied'], path: 'tvm/creds/demo' });
    expect(err.message).toBe('permission denied (HTTP 403 on GET tvm/creds/demo)');
  });

  it('names the path when Vault gives no message', () => {
    const err = mapVaultError({ response: { statusCode: 404, body: { errors: [] } } }, ADDR, 'GET', 'tvm/x');
    expect(err.message).toBe('nothing found at tvm/x (HTTP 404 on GET tvm/x)');
    const html = mapVaultError({ response: { statusCode: 502, body: '<html>' } }, ADDR, 'GET', 'tvm/x');
    expect(html.message).toBe('HTTP 502 on GET tvm/x');
  });

  it('turns network failures into ServerUnreachableError without keeping the request (and its token)', () => {
    const axiosLike = { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED', config: { headers: { 'X-Vault-Token': 's.secret' } } };
    const err = mapVaultError(axiosLike, ADDR, 'GET', 'tvm/x');
    expect(err).toBeInstanceOf(ServerUnreachableError);
    expect(err).toMatchObject({ code: 'ERR_SERVER_UNREACHABLE', message: `cannot reach Vault at ${ADDR}: connection refused` });
    expect(JSON.stringify(err.cause, Object.getOwnPropertyNames(err.cause))).not.toContain('s.secret');
    expect(mapVaultError({ code: 'ENOTFOUND' }, ADDR, 'GET', 'x').message).toBe(`cannot reach Vault at ${ADDR}: host not found`);
    expect(mapVaultError({ code: 'ECONNABORTED' }, ADDR, 'GET', 'x').message).toBe(`cannot reach Vault at ${ADDR}: timed out`);
  });

  it('flattens multi-line error lists', () => {
    expect(vaultErrorLines(['2 errors occurred:\n\t* a\n\t* b\n\n', 'c'])).toEqual(['a', 'b', 'c']);
    expect(vaultErrorLines('nope')).toEqual([]);
  });
});

describe('exitCodeFor', () => {
  it('2 for usage and bad input, 1 for everything else', () => {
    expect(exitCodeFor(new CliUsageError('x'))).toBe(2);
    expect(exitCodeFor(new InvalidInputError('x'))).toBe(2);
    expect(exitCodeFor(new VaultRequestError({ status: 400, errors: ['bad'], method: 'GET', path: 'p' }))).toBe(2);
    expect(exitCodeFor(new VaultRequestError({ status: 403, errors: ['permission denied'], method: 'GET', path: 'p' }))).toBe(1);
    expect(exitCodeFor(new VaultRequestError({ status: 500, errors: [], method: 'GET', path: 'p' }))).toBe(1);
    expect(exitCodeFor(new ServerUnreachableError(ADDR, 'connection refused'))).toBe(1);
    expect(exitCodeFor(new TokenInvalidError('revoked'))).toBe(1);
    expect(exitCodeFor(new TypeError('boom'))).toBe(1);
    expect(exitCodeFor('weird')).toBe(1);
  });
});

describe('errorLine', () => {
  it('is one line, prefixed, without a stack', () => {
    const err = new Error('first\n  second');
    expect(errorLine(err)).toBe('tvm: first; second\n');
    expect(errorLine(new TokenInvalidError('revoked'))).toBe('tvm: token invalid: revoked\n');
    expect(errorLine(undefined)).toBe('tvm: unexpected failure\n');
  });
});
