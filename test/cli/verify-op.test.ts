// `tvm token verify --op/--resource/--remote-addr` and `tvm creds --dpop-key`
// in-process against the dev server: the command asks the PEP library what a
// resource server would (scope, bound CIDRs, DPoP binding), and binds tokens
// to a workload's key.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jwkThumbprint } from '../../src/pep/index.ts';
import { startServer } from '../../src/server/index.ts';
import { expectOneErrorLine, run, type RunResult } from './helpers.ts';
import { keyPair } from '../keys.ts';

type Server = Awaited<ReturnType<typeof startServer>>;

let server: Server;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), 'tvm-verify-op-'));
/** A token of role orders: read db://orders/*, write db://orders/outbox. */
let orders = '';

async function tvm(args: string[]): Promise<RunResult> {
  return run(args, env);
}

async function mint(role: string, ...flags: string[]): Promise<string> {
  const r = await tvm(['creds', role, '--format', 'token', ...flags]);
  expect(r, `tvm creds ${role}`).toMatchObject({ code: 0, stderr: '' });
  return r.stdout.trim();
}

/** A refusal: exit 1, nothing on stdout, one `tvm: token invalid: ...` line without the token. */
function refused(r: RunResult, token: string): string {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  const line = expectOneErrorLine(r.stderr);
  expect(line).toMatch(/^tvm: token invalid: /);
  expect(r.stderr).not.toContain(token.split('.')[2]);
  return line;
}

/** A usage error: exit 2, one line. */
function usage(r: RunResult): string {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  return expectOneErrorLine(r.stderr);
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
  for (const args of [
    ['role', 'write', 'orders', '--read', 'db://orders/*', '--write', 'db://orders/outbox'],
    ['role', 'write', 'local', '--read', 'db://orders/*', '--bound-cidr', '127.0.0.0/8'],
  ]) {
    expect(await tvm(args)).toMatchObject({ code: 0, stderr: '' });
  }
  // binding = dpop has no CLI flag: write it through the API.
  const bound = await fetch(`${server.address}/v1/tvm/roles/bound`, {
    method: 'POST',
    headers: { 'x-vault-token': server.rootToken, 'content-type': 'application/json' },
    body: JSON.stringify({ read: ['db://orders/*'], binding: 'dpop' }),
  });
  expect(bound.status).toBe(204);
  orders = await mint('orders');
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tvm token verify --op --resource', () => {
  it('accepts an op the token grants, printing the claims', async () => {
    for (const [op, resource] of [
      ['read', 'db://orders/42'],
      ['write', 'db://orders/outbox'],
    ]) {
      const r = await tvm(['token', 'verify', orders, '--op', op, '--resource', resource]);
      expect(r, `${op} ${resource}`).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(r.stdout)).toMatchObject({ client_id: 'orders', scope: 'read:db://orders/* write:db://orders/outbox' });
    }
  });

  it('refuses an op the token does not grant (ERR_SCOPE), exit 1', async () => {
    expect(refused(await tvm(['token', 'verify', orders, '--op', 'write', '--resource', 'db://orders/42']), orders)).toBe(
      'tvm: token invalid: the token does not grant write on "db://orders/42"',
    );
    expect(refused(await tvm(['token', 'verify', orders, '--op', 'read', '--resource', 'db://billing/1']), orders)).toBe(
      'tvm: token invalid: the token does not grant read on "db://billing/1"',
    );
  });

  it('still refuses what verify alone refuses (revoked)', async () => {
    const r = await tvm(['creds', 'orders']);
    const creds = JSON.parse(r.stdout) as { token: string; lease_id: string };
    expect(await tvm(['lease', 'revoke', creds.lease_id])).toMatchObject({ code: 0 });
    expect(refused(await tvm(['token', 'verify', creds.token, '--op', 'read', '--resource', 'db://orders/1']), creds.token)).toMatch(/revoked/);
  });

  it.each([
    [['--op', 'read'], 'tvm: --op and --resource go together: give both or neither'],
    [['--resource', 'db://orders/1'], 'tvm: --op and --resource go together: give both or neither'],
    [['--op', 'read', '--resource', ''], 'tvm: --resource must not be empty'],
    [['--op', 'read', '--resource', 'db://orders/a b'], 'tvm: resource must be a concrete resource name such as db://orders/42'],
    [['--remote-addr', '127.0.0.1'], 'tvm: --remote-addr goes with --op and --resource'],
    [['--op', 'read', '--resource', 'db://orders/1', '--remote-addr', 'localhost'], 'tvm: --remote-addr "localhost" is not an IP address'],
  ])('%j is a usage error (exit 2)', async (flags, message) => {
    const r = await tvm(['token', 'verify', orders, ...flags]);
    expect(usage(r)).toBe(message);
    expect(r.stderr).not.toContain(orders);
  });

  it('--op must be read or write (exit 2)', async () => {
    expect(usage(await tvm(['token', 'verify', orders, '--op', 'delete', '--resource', 'db://orders/1']))).toMatch(
      /^tvm: option '--op <op>' argument 'delete' is invalid\. Allowed choices are read, write\./,
    );
  });

  it('--help names the options and what becomes of a DPoP-bound token', async () => {
    const r = await tvm(['token', 'verify', '--help']);
    expect(r.code).toBe(0);
    for (const text of ['--op <op>', '--resource <name>', '--remote-addr <ip>', 'ERR_BINDING', 'DPoP']) expect(r.stdout).toContain(text);
  });
});

describe('tvm token verify --remote-addr: bound_cidrs', () => {
  let local = '';
  beforeAll(async () => {
    local = await mint('local');
  });

  it('without --op, a token with bound_cidrs verifies', async () => {
    const r = await tvm(['token', 'verify', local]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout).bound_cidrs).toEqual(['127.0.0.0/8']);
  });

  it('with --op and no --remote-addr it fails: there is no address to check (ERR_CONTEXT)', async () => {
    expect(refused(await tvm(['token', 'verify', local, '--op', 'read', '--resource', 'db://orders/1']), local)).toBe(
      `tvm: token invalid: the request comes from "an unknown address", outside the token's bound_cidrs`,
    );
  });

  it('passes for an address inside the CIDRs, fails for one outside', async () => {
    const inside = await tvm(['token', 'verify', local, '--op', 'read', '--resource', 'db://orders/1', '--remote-addr', '127.0.0.9']);
    expect(inside).toMatchObject({ code: 0, stderr: '' });
    const outside = await tvm(['token', 'verify', local, '--op', 'read', '--resource', 'db://orders/1', '--remote-addr', '10.0.0.1']);
    expect(refused(outside, local)).toBe(`tvm: token invalid: the request comes from "10.0.0.1", outside the token's bound_cidrs`);
  });
});

describe('tvm creds --dpop-key', () => {
  const pair = keyPair('ES256');
  const publicJwk = pair.publicKey.export({ format: 'jwk' });
  const thumbprint = jwkThumbprint(publicJwk);
  const privateJwk = pair.privateKey.export({ format: 'jwk' });
  const pemFile = join(dir, 'key.pem');
  const jwkFile = join(dir, 'key.jwk');

  beforeAll(() => {
    writeFileSync(pemFile, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    writeFileSync(jwkFile, JSON.stringify(privateJwk), { mode: 0o600 });
  });

  it.each([
    ['a PEM (PKCS8) file', () => pemFile],
    ['a JWK file', () => jwkFile],
  ])('binds the token to the key in %s: cnf.jkt is its thumbprint', async (_what, file) => {
    const r = await tvm(['creds', 'orders', '--dpop-key', file()]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const creds = JSON.parse(r.stdout) as { token: string; cnf_jkt: string };
    expect(creds.cnf_jkt).toBe(thumbprint);
    expect(decodeJwt(creds.token).cnf).toEqual({ jkt: thumbprint });
    expect(r.stdout).not.toContain(privateJwk.d);
  });

  it('a bound token verifies as a token, and fails --op naming DPoP (no proof here)', async () => {
    const token = await mint('orders', '--dpop-key', pemFile);
    expect(await tvm(['token', 'verify', token])).toMatchObject({ code: 0, stderr: '' });
    const line = refused(await tvm(['token', 'verify', token, '--op', 'read', '--resource', 'db://orders/1']), token);
    expect(line).toMatch(/DPoP/);
  });

  it('serves a role whose binding is dpop, which refuses a request without a key', async () => {
    const token = await mint('bound', '--dpop-key', jwkFile);
    expect(decodeJwt(token).cnf).toEqual({ jkt: thumbprint });
    const without = await tvm(['creds', 'bound']);
    expect(usage(without)).toMatch(/dpop_jwk/);
  });

  it('a missing, public or unreadable key file is a usage error naming the file, never the key', async () => {
    const publicPem = join(dir, 'public.pem');
    writeFileSync(publicPem, pair.publicKey.export({ format: 'pem', type: 'spki' }) as string);
    const junk = join(dir, 'junk.txt');
    writeFileSync(junk, 'not a key at all');
    const publicJwkFile = join(dir, 'public.jwk');
    writeFileSync(publicJwkFile, JSON.stringify(publicJwk));
    for (const [file, reason] of [
      [join(dir, 'absent.pem'), /cannot be read \(ENOENT\)$/],
      [publicPem, /not a private key/],
      [junk, /expected a PEM private key/],
      [publicJwkFile, /is a public key/],
      [dir, /cannot be read \(EISDIR\)$/],
    ] as const) {
      const r = await tvm(['creds', 'orders', '--dpop-key', file]);
      const line = usage(r);
      expect(line.startsWith(`tvm: --dpop-key ${JSON.stringify(file)}`), line).toBe(true);
      expect(line).toMatch(reason);
      expect(r.stderr).not.toContain(String(publicJwk.x));
      expect(r.stderr).not.toContain(String(privateJwk.d));
    }
  });

  it('does not go with --cloud', async () => {
    expect(usage(await tvm(['creds', 'orders', '--cloud', 'aws', '--dpop-key', pemFile]))).toMatch(/--dpop-key does not go with --cloud/);
  });
});
