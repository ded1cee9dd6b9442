// The server config file: HCL and JSON, errors that say what to write, the
// seal stanza and its keys, the example config, and a TLS listener.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSealKeys, type SealConfig } from '../../src/server/config.ts';
import { ConfigError, loadConfig, parseConfig, startServer } from '../../src/server/index.ts';
import { sealStanza } from './seal-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SEAL = 'seal "static" {\n  current_key_id = "k1"\n  current_key = "file:///etc/tvm/seal.key"\n}\n';
const SEALED = { type: 'static', current: { id: 'k1', ref: { kind: 'file', path: '/etc/tvm/seal.key' } } };

describe('parseConfig', () => {
  it('reads the HCL form', async () => {
    const config = await parseConfig(
      `storage "sqlite" {\n  path = "/var/lib/tvm/tvm.db"\n}\nlistener "tcp" {\n  address = "0.0.0.0:8201"\n  tls_disable = true\n}\napi_addr = "https://tvm.example.com:8201/"\nui = true\n${SEAL}`,
      '/etc/tvm/server.hcl',
    );
    expect(config).toEqual({
      storage: { type: 'sqlite', path: '/var/lib/tvm/tvm.db' },
      seal: SEALED,
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
        seal: { static: { current_key_id: 'k1', current_key: 'file://seal/k1.key', previous_key_id: 'k0', previous_key: 'env://TVM_SEAL_K0' } },
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
    expect(config.seal).toEqual({
      type: 'static',
      current: { id: 'k1', ref: { kind: 'file', path: '/etc/tvm/seal/k1.key' } },
      previous: { id: 'k0', ref: { kind: 'env', name: 'TVM_SEAL_K0' } },
    });
  });

  it('accepts tls_disable written as a string, as Vault configs often do', async () => {
    const config = await parseConfig(`storage "sqlite" { path = "x.db" }\nlistener "tcp" { tls_disable = "1" }\n${SEAL}`, '/c.hcl');
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
      const sealed = text.endsWith('= ') ? text : `${SEAL}${text}`;
      await expect(parseConfig(sealed, '/c.hcl')).rejects.toThrow(message);
      await expect(parseConfig(sealed, '/c.hcl')).rejects.toBeInstanceOf(ConfigError);
    }
  });

  it('loadConfig names a missing file', async () => {
    await expect(loadConfig(join(dir, 'missing.hcl'))).rejects.toThrow(/cannot read config file .*missing\.hcl: no such file \(vault-config\/dev\.hcl is an example to start from\)/);
  });

  it('the example config in vault-config/ parses', async () => {
    const path = resolve('vault-config/dev.hcl');
    const config = await loadConfig(path);
    expect(config.storage.path).toBe(resolve(dirname(path), '../data/tvm.db'));
    expect(config.seal).toEqual({ type: 'static', current: { id: 'dev-1', ref: { kind: 'env', name: 'TVM_SEAL_KEY' } } });
    expect(config.listener).toEqual({ address: '127.0.0.1:8200', tlsDisable: true });
    expect(config.apiAddr).toBe('http://127.0.0.1:8200');
    expect(config.warnings).toEqual([]);
  });
});

describe('the seal stanza', () => {
  const base = 'storage "sqlite" { path = "x.db" }\nlistener "tcp" { tls_disable = true }\n';
  const parse = (seal: string) => parseConfig(`${base}${seal}`, '/etc/tvm/c.hcl');
  const inlineKey = randomBytes(32).toString('hex');

  it('reads a file or an environment variable, with or without a previous key, as OpenBao writes it', async () => {
    const c = await parse(
      'seal "static" {\n  current_key_id = "20250606-1"\n  current_key = "file:///openbao/secrets/unseal-20250606-1.key"\n  previous_key_id = "20250306-1"\n  previous_key = "file://keys/old.key"\n  disabled = "false"\n}\n',
    );
    expect(c.seal).toEqual({
      type: 'static',
      current: { id: '20250606-1', ref: { kind: 'file', path: '/openbao/secrets/unseal-20250606-1.key' } },
      previous: { id: '20250306-1', ref: { kind: 'file', path: '/etc/tvm/keys/old.key' } },
    });
    expect(c.warnings).toEqual([]);
    const env = await parse('seal "static" {\n  current_key_id = "a"\n  current_key = "env://TVM_SEAL_KEY"\n  key_type = "x"\n}\n');
    expect(env.seal).toEqual({ type: 'static', current: { id: 'a', ref: { kind: 'env', name: 'TVM_SEAL_KEY' } } });
    expect(env.warnings).toEqual(['seal "static": unknown key key_type']);
  });

  it('refuses each bad stanza with a ConfigError naming the field, and never echoes a key', async () => {
    const at = 'config file /etc/tvm/c.hcl: seal "static"';
    const cases: Array<[string, string]> = [
      ['', 'config file /etc/tvm/c.hcl: a seal stanza is required (the storage is encrypted with a 32-byte key you provide): seal "static" { current_key_id = "1", current_key = "file:///etc/tvm/seal.key" }'],
      ['seal "awskms" { region = "us-east-1" }', 'config file /etc/tvm/c.hcl: seal "awskms" is not supported; use seal "static" { current_key_id = "1", current_key = "file:///etc/tvm/seal.key" }'],
      [`${SEAL}${SEAL}`, 'config file /etc/tvm/c.hcl: only one seal stanza is allowed'],
      ['seal "static" { current_key_id = "a" }', `${at}: current_key is required: "file:///path/to/key" or "env://VAR_NAME"`],
      ['seal "static" { current_key = "env://K" }', `${at}: current_key_id is required with current_key`],
      ['seal "static" {\n current_key_id = "has space"\n current_key = "env://K"\n}', `${at}: current_key_id must be 1 to 128 printable characters without spaces`],
      ['seal "static" {\n current_key_id = ""\n current_key = "env://K"\n}', `${at}: current_key_id must be 1 to 128 printable characters without spaces`],
      [`seal "static" {\n current_key_id = "a"\n current_key = "${inlineKey}"\n}`, `${at}: current_key must be "file:///path/to/key" or "env://VAR_NAME" (a key written in the config itself is not accepted)`],
      [`seal "static" {\n current_key_id = "a"\n current_key = "env://${inlineKey}-x"\n}`, `${at}: current_key = "env://..." needs an environment variable name (letters, digits and _)`],
      ['seal "static" {\n current_key_id = "a"\n current_key = 7\n}', `${at}: current_key must be "file:///path/to/key" or "env://VAR_NAME" (a key written in the config itself is not accepted)`],
      ['seal "static" {\n current_key_id = "a"\n current_key = "file://"\n}', `${at}: current_key = "file://..." needs the key file's path`],
      ['seal "static" {\n current_key_id = "a"\n current_key = "env://K"\n previous_key_id = "b"\n}', `${at}: previous_key is required with previous_key_id: "file:///path/to/key" or "env://VAR_NAME"`],
      [`seal "static" {\n current_key_id = "a"\n current_key = "env://K"\n previous_key = "${inlineKey}"\n}`, `${at}: previous_key_id is required with previous_key`],
      ['seal "static" {\n current_key_id = "a"\n current_key = "env://K"\n previous_key_id = "a"\n previous_key = "env://J"\n}', `${at}: previous_key_id must differ from current_key_id`],
      ['seal "static" {\n current_key_id = "a"\n current_key = "env://K"\n disabled = true\n}', `${at}: disabled = true is not supported: the persistent server's storage is always sealed`],
    ];
    for (const [seal, message] of cases) {
      const err = await parse(seal).then(
        () => new Error(`accepted: ${seal.slice(0, 40)}`),
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toBe(message);
      expect(err.message).not.toContain(inlineKey);
    }
  });
});

describe('loadSealKeys', () => {
  const keysDir = join(dir, 'keys');
  mkdirSync(keysDir, { recursive: true });
  const fileSeal = (path: string): SealConfig => ({ type: 'static', current: { id: 'k', ref: { kind: 'file', path } } });
  const envSeal = (name: string): SealConfig => ({ type: 'static', current: { id: 'k', ref: { kind: 'env', name } } });
  const write = (name: string, content: Buffer | string, mode = 0o600): string => {
    const path = join(keysDir, name);
    writeFileSync(path, content, { mode });
    chmodSync(path, mode);
    return path;
  };

  it('reads 32 raw bytes, hex or base64 from a file, hex or base64 from the environment, and the previous key', async () => {
    const key = randomBytes(32);
    const forms: Array<[string, Buffer | string]> = [
      ['raw.key', key],
      ['hex.key', `${key.toString('hex')}\n`],
      ['b64.key', `${key.toString('base64')}\n`],
      ['b64url.key', key.toString('base64url')],
    ];
    for (const [name, content] of forms) {
      const ring = await loadSealKeys(fileSeal(write(name, content)));
      expect([name, Buffer.from(ring.current.key).equals(key)]).toEqual([name, true]);
    }
    const previous = randomBytes(32);
    const ring = await loadSealKeys(
      { type: 'static', current: { id: 'new', ref: { kind: 'env', name: 'A' } }, previous: { id: 'old', ref: { kind: 'env', name: 'B' } } },
      { env: { A: key.toString('hex'), B: previous.toString('base64') } },
    );
    expect(ring.current.id).toBe('new');
    expect(Buffer.from(ring.current.key).equals(key)).toBe(true);
    expect(ring.previous?.id).toBe('old');
    expect(Buffer.from(ring.previous!.key).equals(previous)).toBe(true);
  });

  it('warns about a key file that group or others may read, and not about a 0600 one', async () => {
    const warnings: string[] = [];
    const loose = write('loose.key', randomBytes(32), 0o644);
    await loadSealKeys(fileSeal(loose), { warn: (w) => warnings.push(w) });
    expect(warnings).toEqual([`seal "static": current_key: key file ${loose} may be read by group or others (mode 0644); chmod 600 it`]);
    warnings.length = 0;
    await loadSealKeys(fileSeal(write('tight.key', randomBytes(32))), { warn: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
  });

  it('refuses a missing or unreadable file, a key of the wrong length, an unset variable: naming the field, never the key', async () => {
    const short = randomBytes(16);
    const long = randomBytes(48);
    const missing = join(keysDir, 'missing.key');
    const cases: Array<[SealConfig, Record<string, string>, string]> = [
      [fileSeal(missing), {}, `seal "static": current_key: cannot read key file ${missing}: ENOENT`],
      [fileSeal(keysDir), {}, `seal "static": current_key: cannot read key file ${keysDir}: EISDIR`],
      [fileSeal(write('short.key', short)), {}, `seal "static": current_key: key file ${join(keysDir, 'short.key')} must hold a 32-byte key (32 raw bytes, 64 hex digits or base64); it holds 16 bytes that are none of these`],
      [fileSeal(write('long.hex', long.toString('hex'))), {}, `seal "static": current_key: key file ${join(keysDir, 'long.hex')} must hold a 32-byte key (32 raw bytes, 64 hex digits or base64); it holds 96 bytes that are none of these`],
      [envSeal('TVM_TEST_UNSET_SEAL_KEY'), {}, 'seal "static": current_key: environment variable TVM_TEST_UNSET_SEAL_KEY is not set'],
      [envSeal('K'), { K: '' }, 'seal "static": current_key: environment variable K is not set'],
      [envSeal('K'), { K: short.toString('hex') }, 'seal "static": current_key: environment variable K must hold a 32-byte key (64 hex digits or base64); it holds 32 bytes that are none of these'],
    ];
    for (const [seal, env, message] of cases) {
      const err = await loadSealKeys(seal, { env }).then(
        () => new Error('accepted'),
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toBe(message);
      for (const secret of [short, long]) {
        for (const form of ['hex', 'base64'] as const) expect(err.message).not.toContain(secret.toString(form));
      }
    }
    const previous: SealConfig = { type: 'static', current: { id: 'a', ref: { kind: 'env', name: 'A' } }, previous: { id: 'b', ref: { kind: 'file', path: missing } } };
    await expect(loadSealKeys(previous, { env: { A: randomBytes(32).toString('hex') } })).rejects.toThrow(
      `seal "static": previous_key: cannot read key file ${missing}: ENOENT`,
    );
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
      `storage "sqlite" { path = "tls.db" }\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_cert_file = "cert.pem"\n  tls_key_file = "key.pem"\n}\n${sealStanza(dir)}`,
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
