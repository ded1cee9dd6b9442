// A persistent server with a TLS listener: real Vault clients reach it over
// HTTPS when they trust its certificate, and refuse it when they do not.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vault from 'node-vault';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCertificate } from '../../src/plugin/tls.ts';
import { startServer } from '../../src/server/index.ts';
import { sealStanza } from '../server/seal-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-tls-'));
let server: Awaited<ReturnType<typeof startServer>>;
let certPem: string;

beforeAll(async () => {
  const cert = await generateCertificate();
  certPem = cert.certPem;
  writeFileSync(join(dir, 'server.crt'), cert.certPem);
  writeFileSync(join(dir, 'server.key'), cert.keyPem, { mode: 0o600 });
  writeFileSync(
    join(dir, 'tvm.hcl'),
    `storage "sqlite" {\n  path = "tvm.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_cert_file = "server.crt"\n  tls_key_file = "server.key"\n}\n${sealStanza(dir)}`,
  );
  server = await startServer({ dev: false, configPath: join(dir, 'tvm.hcl'), quiet: true });
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('TLS listener', () => {
  it('serves the Vault API over HTTPS to a client that trusts the certificate', async () => {
    expect(server.address).toMatch(/^https:\/\//);
    const port = new URL(server.address).port;
    const client = vault({
      apiVersion: 'v1',
      endpoint: `https://localhost:${port}`,
      token: server.rootToken,
      requestOptions: { ca: certPem },
    });
    await client.write('tvm/roles/app', { read: ['db://orders/*'] });
    const creds = await client.read('tvm/creds/app');
    expect(creds.data.token_type).toBe('read');
    expect(creds.data.scope).toBe('read:db://orders/*');
  });

  it('is refused by a client that does not trust the certificate', async () => {
    const port = new URL(server.address).port;
    const client = vault({ apiVersion: 'v1', endpoint: `https://localhost:${port}`, token: server.rootToken });
    await expect(client.read('sys/health')).rejects.toThrow(/self[- ]signed|certificate/i);
  });
});
