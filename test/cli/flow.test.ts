// Every command in-process against the dev server on a free port:
// main(argv, {stdout, stderr, env}), as a user would run `tvm ...`.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { expectOneErrorLine, run } from './helpers.ts';

type Server = Awaited<ReturnType<typeof startServer>>;

let server: Server;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
  const r = await run(
    ['role', 'write', 'orders', '--read', 'db://orders/*', '--write', 'db://orders/outbox', '--ttl', '5m', '--max-ttl', '1h', '--audience', 'orders-api'],
    env,
  );
  expect(r).toMatchObject({ code: 0, stderr: '' });
});

afterAll(async () => {
  await server?.close();
});

async function ok(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const r = await run(args, { ...env, ...extraEnv });
  expect(r.stderr, `tvm ${args.join(' ')}`).toBe('');
  expect(r.code, `tvm ${args.join(' ')}`).toBe(0);
  return r.stdout;
}

async function okJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await ok(args)) as T;
}

interface CredsOut {
  token: string;
  token_type: string;
  jti: string;
  scope: string;
  read: string[];
  write: string[];
  audiences: string[];
  issued_at: string;
  expires_at: string;
  role: string;
  lease_id: string;
  lease_duration: number;
  renewable: boolean;
}

describe('role', () => {
  it('write, read, list, update with key=value pairs, delete', async () => {
    expect(await ok(['role', 'write', 'app', '--read', 'db://app/*', '--ttl', '2m', '--extra-claim', 'team=payments'])).toBe(
      'Success! Data written to: tvm/roles/app\n',
    );
    const role = await okJson(['role', 'read', 'app', '--format', 'json']);
    expect(role).toMatchObject({ name: 'app', read: ['db://app/*'], write: [], ttl: 120, extra_claims: { team: 'payments' } });

    const table = await ok(['role', 'read', 'app']);
    expect(table).toMatch(/^Key\s+Value\n---\s+-----\n/);
    expect(table).toMatch(/\nread\s+\[db:\/\/app\/\*\]\n/);

    // vault CLI style: only the fields given change.
    await ok(['role', 'write', 'app', 'write=db://app/out', 'ttl=90s']);
    expect(await okJson(['role', 'read', 'app', '--format', 'json'])).toMatchObject({
      read: ['db://app/*'],
      write: ['db://app/out'],
      ttl: 90,
    });

    expect(await okJson<string[]>(['role', 'list', '--format', 'json'])).toEqual(expect.arrayContaining(['app', 'demo', 'orders']));
    expect(await ok(['role', 'list'])).toMatch(/^Keys\n----\n(.+\n)*app\n/);

    expect(await ok(['role', 'delete', 'app'])).toBe('Success! Data deleted (if it existed) at: tvm/roles/app\n');
    const gone = await run(['role', 'read', 'app'], env);
    // The same words and exit code as creds of an unknown role.
    expect(gone.code).toBe(2);
    expect(expectOneErrorLine(gone.stderr)).toBe('tvm: unknown role "app" (nothing at tvm/roles/app)');
    const creds = await run(['creds', 'app'], env);
    expect(creds.code).toBe(2);
    expect(expectOneErrorLine(creds.stderr)).toMatch(/^tvm: unknown role "app" \(HTTP 400 on GET tvm\/creds\/app\)$/);
    expect(await okJson<string[]>(['role', 'list', '--format', 'json'])).not.toContain('app');
  });
});

describe('creds', () => {
  it('json (default): creds data plus the lease', async () => {
    const c = await okJson<CredsOut>(['creds', 'orders']);
    expect(c).toMatchObject({
      token_type: 'readwrite',
      role: 'orders',
      read: ['db://orders/*'],
      write: ['db://orders/outbox'],
      audiences: ['orders-api'],
      lease_duration: 300,
      renewable: true,
    });
    expect(c.lease_id).toMatch(/^tvm\/creds\/orders\/.+/);
    expect(c.token.split('.')).toHaveLength(3);
    expect(decodeProtectedHeader(c.token).typ).toBe('at+jwt');
  });

  it('narrows with --ttl, --read, --write, --audience', async () => {
    const c = await okJson<CredsOut>(['creds', 'orders', '--ttl', '60', '--read', 'db://orders/2024', '--audience', 'orders-api']);
    expect(c).toMatchObject({ lease_duration: 60, read: ['db://orders/2024'], write: ['db://orders/outbox'] });
    const w = await okJson<CredsOut>(['creds', 'orders', '--write', 'db://orders/outbox', '--read', 'db://orders/x', '--ttl', '2m']);
    expect(w).toMatchObject({ lease_duration: 120, token_type: 'readwrite' });
  });

  it('token: just the JWT', async () => {
    const out = await ok(['creds', 'demo', '--format', 'token']);
    expect(out).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  });

  it('env: shell-safe TVM_* lines a shell can eval', async () => {
    const out = await ok(['creds', 'demo', '--format', 'env']);
    const lines = out.trimEnd().split('\n');
    expect(lines.map((l) => l.split('=')[0])).toEqual(['TVM_TOKEN', 'TVM_LEASE_ID', 'TVM_EXPIRES_AT']);
    const evaluated = execFileSync('sh', ['-c', `${out}printf '%s|%s|%s' "$TVM_TOKEN" "$TVM_LEASE_ID" "$TVM_EXPIRES_AT"`], {
      encoding: 'utf8',
    }).split('|');
    expect(evaluated[0]).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(evaluated[1]).toMatch(/^tvm\/creds\/demo\//);
    expect(Number.isNaN(Date.parse(evaluated[2]))).toBe(false);
  });

  it('reads the token from ~/.vault-token when VAULT_TOKEN is unset', async () => {
    const home = mkdtempSync(join(tmpdir(), 'tvm-home-'));
    try {
      writeFileSync(join(home, '.vault-token'), `${server.rootToken}\n`);
      const r = await run(['creds', 'demo', '--format', 'token'], { VAULT_ADDR: server.address, HOME: home });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('lease', () => {
  it('lookup, list, renew (new token, same jti, later exp), revoke', async () => {
    const c = await okJson<CredsOut>(['creds', 'orders', '--ttl', '60']);

    const info = await okJson<{ id: string; ttl: number; renewable: boolean }>(['lease', 'lookup', c.lease_id, '--format', 'json']);
    expect(info).toMatchObject({ id: c.lease_id, renewable: true });
    expect(info.ttl).toBeGreaterThan(50);
    expect(await ok(['lease', 'lookup', c.lease_id])).toMatch(new RegExp(`\\nid\\s+${c.lease_id.replace(/\//g, '\\/')}\\n`));

    expect(await okJson<string[]>(['lease', 'list', '--format', 'json'])).toContain(c.lease_id);
    expect(await okJson<string[]>(['lease', 'list', 'tvm/creds/orders/', '--format', 'json'])).toContain(c.lease_id);
    expect(await ok(['lease', 'list'])).toContain(`\n${c.lease_id}\n`);

    const renewed = await okJson<CredsOut>(['lease', 'renew', c.lease_id, '--increment', '10m']);
    expect(renewed).toMatchObject({ jti: c.jti, lease_id: c.lease_id, lease_duration: 600 });
    expect(renewed.token).not.toBe(c.token);
    expect(Date.parse(renewed.expires_at)).toBeGreaterThan(Date.parse(c.expires_at));

    expect(await ok(['lease', 'revoke', c.lease_id])).toBe(`Success! Revoked lease: ${c.lease_id}\n`);
    expect(await okJson<string[]>(['lease', 'list', '--format', 'json'])).not.toContain(c.lease_id);
    // Revoking twice succeeds, as in Vault.
    await ok(['lease', 'revoke', c.lease_id]);
  });
});

describe('token', () => {
  it('verify: valid, then invalid once its lease is revoked', async () => {
    const c = await okJson<CredsOut>(['creds', 'orders']);
    const claims = await okJson(['token', 'verify', c.token, '--audience', 'orders-api']);
    expect(claims).toMatchObject({ jti: c.jti, client_id: 'orders', aud: 'orders-api', scope: c.scope });

    expect(await okJson(['token', 'introspect', c.token])).toMatchObject({ active: true, jti: c.jti, client_id: 'orders' });

    await ok(['lease', 'revoke', c.lease_id]);
    const r = await run(['token', 'verify', c.token, '--audience', 'orders-api'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    // Revocation is read from the token's signed status list, as a resource server reads it.
    expect(expectOneErrorLine(r.stderr)).toMatch(/^tvm: token invalid: .*revoked/);

    expect(await okJson(['token', 'introspect', c.token])).toEqual({ active: false });
  });

  it('verify: a tampered token is invalid', async () => {
    const token = (await ok(['creds', 'orders', '--format', 'token'])).trim();
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'write:db://**' })).toString('base64url');
    const r = await run(['token', 'verify', `${h}.${forged}.${s}`], env);
    expect(r.code).toBe(1);
    expect(expectOneErrorLine(r.stderr)).toBe('tvm: token invalid: signature verification failed');
    const garbage = await run(['token', 'verify', 'not.a.jwt'], env);
    expect(garbage.code).toBe(1);
    expect(expectOneErrorLine(garbage.stderr)).toBe('tvm: token invalid: the header or the claims are not base64url JSON');
  });

  it('verify takes the token from $TVM_TOKEN', async () => {
    const token = (await ok(['creds', 'demo', '--format', 'token'])).trim();
    expect(await ok(['token', 'verify'], { TVM_TOKEN: token })).toContain('"client_id": "demo"');
  });
});

describe('keys rotate', () => {
  it('signs new tokens with a new key; tokens of the old key still verify', async () => {
    const before = (await ok(['creds', 'demo', '--format', 'token'])).trim();
    expect(await ok(['keys', 'rotate'])).toMatch(/^Key\s+Value\n---\s+-----\nkid\s+\S+\nalg\s+\S+\n$/);
    const rotated = await okJson<{ kid: string; alg: string }>(['keys', 'rotate', '--format', 'json']);
    expect(rotated.kid).not.toBe(decodeProtectedHeader(before).kid);
    const after = (await ok(['creds', 'demo', '--format', 'token'])).trim();
    expect(decodeProtectedHeader(after).kid).toBe(rotated.kid);
    await ok(['token', 'verify', before]);
    await ok(['token', 'verify', after]);
  });
});

describe('errors: one line on stderr, the right exit code, no stack trace', () => {
  it('denied: a bad token', async () => {
    const r = await run(['creds', 'demo'], { VAULT_ADDR: server.address, VAULT_TOKEN: 'not-a-real-token' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(expectOneErrorLine(r.stderr)).toMatch(/^tvm: permission denied/);
  });

  it('bad input: the server\'s 400 message', async () => {
    const unknown = await run(['creds', 'nope'], env);
    expect(unknown.code).toBe(2);
    expect(expectOneErrorLine(unknown.stderr)).toMatch(/^tvm: unknown role "nope" \(HTTP 400 on GET tvm\/creds\/nope\)$/);

    const badTtl = await run(['creds', 'orders', '--ttl', '10parsecs'], env);
    expect(badTtl.code).toBe(2);
    expect(expectOneErrorLine(badTtl.stderr)).toMatch(/^tvm: invalid ttl: .*10parsecs/);

    const overMax = await run(['creds', 'orders', '--ttl', '2h'], env);
    expect(overMax.code).toBe(2);
    expect(expectOneErrorLine(overMax.stderr)).toMatch(/^tvm: invalid ttl: 7200s is longer than the role's max_ttl 3600s/);

    const widen = await run(['creds', 'orders', '--read', 'db://billing/*'], env);
    expect(widen.code).toBe(2);
    expect(expectOneErrorLine(widen.stderr)).toMatch(/^tvm: invalid read\[0\]: "db:\/\/billing\/\*" is not covered/);

    const badRole = await run(['role', 'write', 'x', '--read', 'db://a/*', '--ttl', 'soon'], env);
    expect(badRole.code).toBe(2);
    expect(expectOneErrorLine(badRole.stderr)).toMatch(/^tvm: invalid ttl: /);

    const unknownField = await run(['role', 'write', 'x', 'read=db://a/*', 'colour=blue'], env);
    expect(unknownField.code).toBe(2);
    expect(expectOneErrorLine(unknownField.stderr)).toMatch(/colour/);

    const badLease = await run(['lease', 'lookup', 'tvm/creds/orders/nope'], env);
    expect(badLease.code).toBe(2);
    expectOneErrorLine(badLease.stderr);
  });

  it('a wrong mount', async () => {
    const r = await run(['creds', 'demo', '--mount', 'elsewhere'], env);
    expect(r.code).not.toBe(0);
    expectOneErrorLine(r.stderr);
  });
});

describe('tvm server -dev, then tvm creds demo', () => {
  it('serves until SIGINT, then closes and exits 0', async () => {
    let signal: ((s: string) => void) | null = null;
    let banner = '';
    const running = run(['server', '-dev', '-dev-root-token-id', 'cli-root', '-dev-listen-address=127.0.0.1:0'], {}, {
      stdout: (t) => {
        banner += t;
      },
      onSignal: (handler) => {
        signal = handler;
        return () => undefined;
      },
    });
    for (let i = 0; i < 400 && signal === null; i++) await new Promise((r) => setTimeout(r, 10));
    expect(signal).not.toBeNull();
    const addr = /listening on (\S+)/.exec(banner)?.[1];
    expect(addr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(banner).toContain('Root Token: cli-root');
    expect(banner).toContain('vault read tvm/creds/demo');

    const creds = await run(['creds', 'demo'], { VAULT_ADDR: addr!, VAULT_TOKEN: 'cli-root' });
    expect(creds.code).toBe(0);
    expect(JSON.parse(creds.stdout)).toMatchObject({ role: 'demo', renewable: true });

    signal!('SIGINT');
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(banner).toContain(`tvm server at ${addr} stopped`);
    const after = await run(['creds', 'demo'], { VAULT_ADDR: addr!, VAULT_TOKEN: 'cli-root' });
    expect(after.code).toBe(1);
    expect(expectOneErrorLine(after.stderr)).toMatch(/^tvm: cannot reach Vault at .*: connection (refused|reset)$/);
  });
});
