// `tvm token verify` against a server with a TLS listener: the verifier's
// fetches (JWKS, status list) go through the connection's TLS settings
// (VAULT_CACERT, VAULT_SKIP_VERIFY), as node-vault's requests do.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCertificate } from '../../src/plugin/tls.ts';
import { startServer } from '../../src/server/index.ts';
import { sealStanza } from '../server/seal-helpers.ts';
import { expectOneErrorLine, run } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-verify-tls-'));
let server: Awaited<ReturnType<typeof startServer>>;
let addr: string;
let base: Record<string, string>;

beforeAll(async () => {
  const cert = await generateCertificate();
  writeFileSync(join(dir, 'server.crt'), cert.certPem);
  writeFileSync(join(dir, 'server.key'), cert.keyPem, { mode: 0o600 });
  writeFileSync(
    join(dir, 'tvm.hcl'),
    `storage "sqlite" {\n  path = "tvm.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_cert_file = "server.crt"\n  tls_key_file = "server.key"\n}\n${sealStanza(dir)}`,
  );
  server = await startServer({ dev: false, configPath: join(dir, 'tvm.hcl'), quiet: true });
  // The certificate names localhost.
  addr = `https://localhost:${new URL(server.address).port}`;
  base = { VAULT_ADDR: addr, VAULT_TOKEN: server.rootToken };
  expect(await run(['role', 'write', 'app', '--read', 'db://orders/*'], { ...base, VAULT_CACERT: join(dir, 'server.crt') })).toMatchObject({ code: 0 });
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tvm token verify over https', () => {
  it('verifies with VAULT_CACERT, and with VAULT_SKIP_VERIFY; sees the revocation', async () => {
    const trusted = { ...base, VAULT_CACERT: join(dir, 'server.crt') };
    const issued = await run(['creds', 'app'], trusted);
    expect(issued).toMatchObject({ code: 0, stderr: '' });
    const creds = JSON.parse(issued.stdout) as { token: string; lease_id: string };
    for (const env of [trusted, { ...base, VAULT_SKIP_VERIFY: '1' }]) {
      const r = await run(['token', 'verify', creds.token, '--op', 'read', '--resource', 'db://orders/1'], env);
      expect(r, JSON.stringify(Object.keys(env))).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(r.stdout)).toMatchObject({ client_id: 'app' });
    }
    expect(await run(['lease', 'revoke', creds.lease_id], trusted)).toMatchObject({ code: 0 });
    const after = await run(['token', 'verify', creds.token], trusted);
    expect(after.code).toBe(1);
    expect(expectOneErrorLine(after.stderr)).toMatch(/^tvm: token invalid: .*revoked/);
  });

  it('without trust in the certificate, fails to reach Vault rather than calling the token invalid', async () => {
    const issued = await run(['creds', 'app', '--format', 'token'], { ...base, VAULT_CACERT: join(dir, 'server.crt') });
    const token = issued.stdout.trim();
    const discovery = await run(['token', 'verify', token], base);
    expect(discovery.code).toBe(1);
    expect(expectOneErrorLine(discovery.stderr)).toMatch(new RegExp(`^tvm: cannot reach Vault at ${addr}: TLS`));
    // With --issuer nothing goes through node-vault: the verifier's own fetch of the JWKS fails the same way.
    const issuer = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { iss: string }).iss;
    const keys = await run(['token', 'verify', token, '--issuer', issuer], base);
    expect(keys.code).toBe(1);
    expect(expectOneErrorLine(keys.stderr)).toMatch(new RegExp(`^tvm: cannot reach Vault at ${addr}: TLS`));
  });
});
