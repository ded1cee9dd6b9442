// `tvm token verify --audience/--issuer` in-process against the dev server:
// a token minted for one service is refused by a check for another, and the
// one error line names the problem without echoing the token.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { expectOneErrorLine, run, type RunResult } from './helpers.ts';

type Server = Awaited<ReturnType<typeof startServer>>;

let server: Server;
let env: Record<string, string>;
let issuer: string;
/** Tokens of three roles: no audiences (aud = issuer), one audience, two audiences. */
const tokens: Record<'demo' | 'orders' | 'shared', string> = { demo: '', orders: '', shared: '' };

async function tvm(args: string[]): Promise<RunResult> {
  return run(args, env);
}

async function mint(role: string): Promise<string> {
  const r = await tvm(['creds', role, '--format', 'token']);
  expect(r, `tvm creds ${role}`).toMatchObject({ code: 0, stderr: '' });
  return r.stdout.trim();
}

/** A refusal: exit 1, nothing on stdout, one `tvm: token invalid: ...` line that does not hold the token. */
function refused(r: RunResult, token: string): string {
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  const line = expectOneErrorLine(r.stderr);
  expect(line).toMatch(/^tvm: token invalid: /);
  expect(r.stderr).not.toContain(token);
  expect(r.stderr).not.toContain(token.split('.')[2]);
  return line;
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
  for (const args of [
    ['role', 'write', 'orders', '--read', 'db://orders/*', '--audience', 'orders-api'],
    ['role', 'write', 'shared', '--read', 'db://shared/*', '--audience', 'orders-api', '--audience', 'billing-api'],
  ]) {
    expect(await tvm(args)).toMatchObject({ code: 0, stderr: '' });
  }
  const discovery = (await (await fetch(`${server.address}/v1/tvm/.well-known/openid-configuration`)).json()) as { issuer: string };
  issuer = discovery.issuer;
  tokens.demo = await mint('demo');
  tokens.orders = await mint('orders');
  tokens.shared = await mint('shared');
});

afterAll(async () => {
  await server?.close();
});

describe('tvm token verify: audience', () => {
  it('without --audience accepts a token whose aud is the issuer', async () => {
    const r = await tvm(['token', 'verify', tokens.demo]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ aud: issuer, iss: issuer, client_id: 'demo' });
  });

  it('without --audience refuses a token of a role whose audiences exclude the issuer, and says how to accept it', async () => {
    const line = refused(await tvm(['token', 'verify', tokens.orders]), tokens.orders);
    expect(line).toBe(
      `tvm: token invalid: audience "orders-api" does not include "${issuer}"; pass --audience to accept another audience`,
    );
  });

  it('--audience accepts a token carrying that audience', async () => {
    const r = await tvm(['token', 'verify', tokens.orders, '--audience', 'orders-api']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ aud: 'orders-api', client_id: 'orders' });
  });

  it('--audience refuses a token meant for another service', async () => {
    const line = refused(await tvm(['token', 'verify', tokens.orders, '--audience', 'billing-api']), tokens.orders);
    expect(line).toBe('tvm: token invalid: audience "orders-api" does not include "billing-api"');
    // Naming an audience replaces the default: a token for the issuer is not for billing-api either.
    expect(refused(await tvm(['token', 'verify', tokens.demo, '--audience', 'billing-api']), tokens.demo)).toBe(
      `tvm: token invalid: audience "${issuer}" does not include "billing-api"`,
    );
  });

  it('--audience is repeatable: the token must carry at least one of them', async () => {
    expect(await tvm(['token', 'verify', tokens.orders, '--audience', 'billing-api', '--audience', 'orders-api'])).toMatchObject({
      code: 0,
      stderr: '',
    });
    const line = refused(
      await tvm(['token', 'verify', tokens.orders, '--audience', 'billing-api', '--audience', 'ledger-api']),
      tokens.orders,
    );
    expect(line).toBe('tvm: token invalid: audience "orders-api" does not include any of ["billing-api","ledger-api"]');
  });

  it('a token with several audiences passes a check for any one of them, and not the default', async () => {
    for (const aud of ['orders-api', 'billing-api']) {
      const r = await tvm(['token', 'verify', tokens.shared, '--audience', aud]);
      expect(r, aud).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(r.stdout).aud).toEqual(['orders-api', 'billing-api']);
    }
    expect(refused(await tvm(['token', 'verify', tokens.shared]), tokens.shared)).toBe(
      `tvm: token invalid: audience ["orders-api","billing-api"] does not include "${issuer}"; pass --audience to accept another audience`,
    );
  });
});

describe('tvm token verify: issuer', () => {
  it('--issuer naming the mount\'s issuer accepts its tokens', async () => {
    expect(await tvm(['token', 'verify', tokens.demo, '--issuer', issuer])).toMatchObject({ code: 0, stderr: '' });
    expect(await tvm(['token', 'verify', tokens.orders, '--issuer', issuer, '--audience', 'orders-api'])).toMatchObject({
      code: 0,
      stderr: '',
    });
  });

  it('--issuer naming another issuer refuses them, naming both', async () => {
    const other = 'https://tokens.example.com/v1/tvm';
    for (const token of [tokens.demo, tokens.orders]) {
      const line = refused(await tvm(['token', 'verify', token, '--issuer', other, '--audience', 'orders-api']), token);
      expect(line).toBe(`tvm: token invalid: issuer "${issuer}" is not "${other}"`);
    }
  });
});

describe('tvm token verify: usage', () => {
  it.each([
    [['--audience', ''], 'tvm: --audience must not be empty'],
    [['--audience', 'orders-api', '--audience', ' '], 'tvm: --audience must not be empty'],
    [['--issuer', ''], 'tvm: --issuer must not be empty'],
  ])('%j is a usage error (exit 2)', async (flags, message) => {
    const r = await tvm(['token', 'verify', tokens.orders, ...flags]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(expectOneErrorLine(r.stderr)).toBe(message);
    expect(r.stderr).not.toContain(tokens.orders);
  });

  it('--help names both options', async () => {
    const r = await tvm(['token', 'verify', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--audience <aud>');
    expect(r.stdout).toContain('--issuer <iss>');
  });
});
