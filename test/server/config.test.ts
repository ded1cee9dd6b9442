// The server config file: HCL and JSON, errors that say what to write, the
// example config, and a TLS listener.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig, startServer } from '../../src/server/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseConfig', () => {
  it('reads the HCL form', async () => {
    const config = await parseConfig(
      `storage "sqlite" {\n  path = "/var/lib/tvm/tvm.db"\n}\nlistener "tcp" {\n  address = "0.0.0.0:8201"\n  tls_disable = true\n}\napi_addr = "https://tvm.example.com:8201/"\nui = true\n`,
      '/etc/tvm/server.hcl',
    );
    expect(config).toEqual({
      storage: { type: 'sqlite', path: '/var/lib/tvm/tvm.db' },
      listener: { address: '0.0.0.0:8201', tlsDisable: true },
      apiAddr: 'https://tvm.example.com:8201',
      warnings: ['ui has no effect on this server'],
    });
  });

  it('reads the JSON form, and resolves relative paths against the file', async () => {
    const config = await parseConfig(
      JSON.stringify({
        storage: { sqlite: { path: 'data/tvm.db' } },
        listener: [{ tcp: { address: '127.0.0.1:8200', tls_cert_file: 'tls/c.pem', tls_key_file: 'tls/k.pem' } }],
      }),
      '/etc/tvm/server.json',
    );
    expect(config.storage.path).toBe('/etc/tvm/data/tvm.db');
    expect(config.listener).toEqual({
      address: '127.0.0.1:8200',
      tlsDisable: false,
      tlsCertFile: '/etc/tvm/tls/c.pem',
      tlsKeyFile: '/etc/tvm/tls/k.pem',
    });
    expect(config.apiAddr).toBeUndefined();
  });

  it('accepts tls_disable written as a string, as Vault configs often do', async () => {
    const config = await parseConfig('storage "sqlite" { path = "x.db" }\nlistener "tcp" { tls_disable = "1" }', '/c.hcl');
    expect(config.listener).toEqual({ address: '127.0.0.1:8200', tlsDisable: true });
  });

  it('explains what is wrong', async () => {
    const cases: Array<[string, RegExp]> = [
      ['storage "file" { path = "/x" }\nlistener "tcp" { tls_disable = true }', /storage "file" is not supported; use storage "sqlite"/],
      ['storage "sqlite" {}\nlistener "tcp" { tls_disable = true }', /needs path =/],
      ['listener "tcp" { tls_disable = true }', /a storage block is required/],
      ['storage "sqlite" { path = "x" }', /a listener block is required/],
      ['storage "sqlite" { path = "x" }\nlistener "tcp" { address = "nope" }', /address must be "host:port"/],
      ['storage "sqlite" { path = "x" }\nlistener "tcp" { address = "127.0.0.1:1" }', /tls_cert_file and tls_key_file are required unless tls_disable = true/],
      ['storage "sqlite" { path = "x" }\nlistener "unix" { address = "/x" }', /listener "unix" is not supported/],
      ['storage "sqlite" { path = "x" }\nlistener "tcp" { tls_disable = "maybe" }', /tls_disable must be true or false/],
      ['storage "sqlite" { path = "x" }\nlistener "tcp" { tls_disable = true }\napi_addr = "localhost"', /api_addr must be a URL/],
      ['storage "sqlite" { path = ', /cannot parse config file/],
    ];
    for (const [text, message] of cases) {
      await expect(parseConfig(text, '/c.hcl')).rejects.toThrow(message);
      await expect(parseConfig(text, '/c.hcl')).rejects.toBeInstanceOf(ConfigError);
    }
  });

  it('loadConfig names a missing file', async () => {
    await expect(loadConfig(join(dir, 'missing.hcl'))).rejects.toThrow(/cannot read config file .*missing\.hcl: ENOENT/);
  });

  it('the example config in vault-config/ parses', async () => {
    const path = resolve('vault-config/dev.hcl');
    const config = await loadConfig(path);
    expect(config.storage.path).toBe(resolve(dirname(path), '../data/tvm.db'));
    expect(config.listener).toEqual({ address: '127.0.0.1:8200', tlsDisable: true });
    expect(config.apiAddr).toBe('http://127.0.0.1:8200');
    expect(config.warnings).toEqual([]);
  });
});

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasOpenssl)('a TLS listener', () => {
  it('serves HTTPS with the configured certificate and key', async () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    const config = join(dir, 'tls.hcl');
    writeFileSync(
      config,
      `storage "sqlite" { path = "tls.db" }\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_cert_file = "cert.pem"\n  tls_key_file = "key.pem"\n}\n`,
    );
    const server = await startServer({ dev: false, configPath: config, quiet: true });
    try {
      expect(server.address).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolveBody, reject) => {
        const req = request(`${server.address}/v1/sys/health`, { ca: readFileSync(cert) }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolveBody(text));
        });
        req.on('error', reject);
        req.end();
      });
      expect(JSON.parse(body)).toMatchObject({ initialized: true, sealed: false });
    } finally {
      await server.close();
    }
  });
});
