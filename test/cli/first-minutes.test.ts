// What a new user meets in the first minutes, answered at once and in words
// that say what to do: an https address for the plain-http dev server, and no
// token at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { run } from './helpers.ts';

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
});
afterAll(async () => {
  await server?.close();
});

describe('the first minutes', () => {
  it('an https address for a plain-http server fails at once, saying so', async () => {
    const https = server.address.replace('http://', 'https://');
    const started = Date.now();
    const r = await run(['creds', 'demo'], { VAULT_ADDR: https, VAULT_TOKEN: server.rootToken });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`tvm: cannot reach Vault at ${https}: TLS handshake failed: the server does not speak TLS there; if it serves plain http, use ${server.address}\n`);
  });

  it('no token says that no token was given and where one is looked for', async () => {
    const r = await run(['creds', 'demo'], { VAULT_ADDR: server.address, HOME: '/nonexistent' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no Vault token was given (set VAULT_TOKEN, or write it to ~/.vault-token');
    // A token that is refused is still Vault's plain answer.
    const wrong = await run(['creds', 'demo'], { VAULT_ADDR: server.address, VAULT_TOKEN: 'hvs.not-a-token' });
    expect(wrong.stderr).toBe('tvm: permission denied (HTTP 403 on GET tvm/creds/demo)\n');
  });
});

describe('tvm server flags', () => {
  it('refuses -dev with -config, and names a missing config file in words', async () => {
    const both = await run(['server', '-dev', '-config', 'vault-config/dev.hcl']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('-dev and -config exclude each other');
    const missing = await run(['server', '-config', '/nonexistent/tvm.hcl']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toBe('tvm: cannot read config file /nonexistent/tvm.hcl: no such file (vault-config/dev.hcl is an example to start from)\n');
  });
});

describe('response wrapping from the CLI', () => {
  it('tvm creds --wrap-ttl hands out a single-use wrapping token that tvm unwrap opens once', async () => {
    const env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
    const wrapped = await run(['creds', 'demo', '--wrap-ttl', '2m', '--format', 'json'], env);
    expect(wrapped.code).toBe(0);
    const info = JSON.parse(wrapped.stdout) as { token: string; accessor: string; ttl: number; creation_path: string };
    expect(info).toMatchObject({ ttl: 120, creation_path: 'tvm/creds/demo' });
    expect(wrapped.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]+\./);
    // Opened with the wrapping token alone (no VAULT_TOKEN), once.
    const opened = await run(['unwrap', info.token], { VAULT_ADDR: server.address, HOME: '/nonexistent' });
    expect(opened.code).toBe(0);
    expect(JSON.parse(opened.stdout)).toMatchObject({ role: 'demo', token: expect.stringMatching(/^eyJ/) });
    const again = await run(['unwrap', info.token], { VAULT_ADDR: server.address });
    expect(again.code).not.toBe(0);
    expect(again.stderr).not.toContain(info.token);
    expect((await run(['creds', 'demo', '--wrap-ttl', 'soon'], env)).code).toBe(2);
    expect((await run(['unwrap'], { VAULT_ADDR: server.address })).code).toBe(2);
  });
});

describe('tvm plugin register', () => {
  it('says when --api-addr is left out, and what a server without a plugin catalog means', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'tvm-plugin-')), 'tvm-plugin');
    writeFileSync(file, '#!/usr/bin/env node\n', { mode: 0o755 });
    const printed = await run(['plugin', 'register', '--plugin', file]);
    expect(printed.code).toBe(0);
    expect(printed.stderr).toContain('no --api-addr');
    const applied = await run(['plugin', 'register', '--plugin', file, '--apply', '--api-addr', server.address], { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken });
    expect(applied.code).toBe(2);
    expect(applied.stderr).toContain('this server has no plugin catalog. The dev server (tvm server -dev) runs the engine built in');
  });
});
