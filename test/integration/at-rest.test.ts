// Encryption at rest, end to end: a persistent server issues tokens; a copy of
// its database files (taken while it runs, as an attacker would) holds neither
// the private signing key, nor the root token, nor an issued JWT, nor an
// AppRole secret id; the copy does not start without its key or with a wrong
// one, and starts and serves with the right one. The files are 0600.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { openSealedStorage, openSqliteStorage } from '../../src/server/storage/index.ts';
import { walkKeys } from '../../src/server/storage/seal.ts';
import { sealKeyFile, sealStanza } from '../server/seal-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-at-rest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const dbFiles = (db: string): string[] => [db, `${db}-wal`, `${db}-shm`].filter((f) => existsSync(f));

function writeConfig(name: string, dbPath: string, seal: string): string {
  const path = join(dir, `${name}.hcl`);
  // One api_addr for the server and its copy: the issuer of the tokens is the same.
  writeFileSync(
    path,
    `storage "sqlite" {\n  path = "${dbPath}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\napi_addr = "http://tvm.test:8200"\n${seal}`,
  );
  return path;
}

async function call(server: RunningServer, token: string | null, method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: token ? { 'X-Vault-Token': token } : {},
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as { data?: Record<string, unknown>; auth?: Record<string, unknown>; errors?: string[] } };
}

/** Every `d` (private key member) of a JWK found in a JSON document. */
function privateMembers(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) privateMembers(v, out);
  else if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.kty === 'string' && typeof o.d === 'string') out.push(o.d);
    for (const v of Object.values(o)) privateMembers(v, out);
  }
  return out;
}

describe('encryption at rest', () => {
  it('a copy of the database files gives away no secret and does not start without the key', async () => {
    const db = join(dir, 'live', 'data', 'tvm.db');
    const config = writeConfig('live', db, sealStanza(dir, 'live-1'));
    const previousUmask = process.umask(0o022);
    let server: RunningServer;
    try {
      server = await startServer({ dev: false, configPath: config, quiet: true, logger: quiet });
    } finally {
      process.umask(previousUmask);
    }
    const root = server.rootToken;
    const secrets: string[] = [root];
    let jwt = '';
    try {
      expect((await call(server, root, 'POST', 'tvm/roles/orders', { read: ['db://orders/*'], ttl: '10m' })).status).toBe(204);
      expect((await call(server, root, 'POST', 'sys/policies/acl/orders', { policy: 'path "tvm/creds/orders" { capabilities = ["read"] }' })).status).toBe(204);
      expect((await call(server, root, 'POST', 'sys/auth/approle', { type: 'approle' })).status).toBe(204);
      expect((await call(server, root, 'POST', 'auth/approle/role/app', { token_policies: ['orders'], token_ttl: '1h' })).status).toBe(204);
      const roleId = (await call(server, root, 'GET', 'auth/approle/role/app/role-id')).body.data!.role_id as string;
      const secretId = (await call(server, root, 'POST', 'auth/approle/role/app/secret-id', {})).body.data!.secret_id as string;
      const login = await call(server, null, 'POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId });
      const appToken = login.body.auth!.client_token as string;
      for (let i = 0; i < 3; i++) {
        const creds = await call(server, appToken, 'GET', 'tvm/creds/orders');
        expect(creds.status).toBe(200);
        secrets.push(creds.body.data!.token as string);
      }
      jwt = secrets[secrets.length - 1];
      secrets.push(secretId, appToken);
      expect(jwt.split('.')).toHaveLength(3);

      // The files are the owner's alone, though the umask was 022.
      expect((statSync(dirname(db)).mode & 0o777).toString(8)).toBe('700');
      for (const f of dbFiles(db)) expect([f, (statSync(f).mode & 0o777).toString(8)]).toEqual([f, '600']);

      // The attacker's copy, taken while the server runs.
      mkdirSync(join(dir, 'copy'));
      for (const f of dbFiles(db)) copyFileSync(f, join(dir, 'copy', f.slice(dirname(db).length + 1)));
    } finally {
      await server.close();
    }

    // The private signing key, as the engine stored it (read through the seal, with the key).
    const keyring = { current: { id: 'live-1', key: readFileSync(sealKeyFile(dir, 'live-1')) } };
    const sealed = await openSealedStorage(openSqliteStorage(db), keyring);
    const privateKeys: string[] = [];
    for await (const key of walkKeys(sealed, '')) {
      const value = new TextDecoder().decode((await sealed.get(key))!);
      if (value.startsWith('{') || value.startsWith('[')) privateMembers(JSON.parse(value), privateKeys);
    }
    await sealed.close();
    expect(privateKeys.length).toBeGreaterThan(0);

    const copy = join(dir, 'copy', 'tvm.db');
    const copied = dbFiles(copy);
    expect(copied.length).toBeGreaterThanOrEqual(2); // the database and its WAL
    const leaked: string[] = [];
    for (const f of copied) {
      const bytes = readFileSync(f);
      for (const [what, list] of [['private key d', privateKeys], ['token or secret id', secrets]] as const) {
        // Only which kind leaked is reported: a failure message never holds a secret.
        for (const s of list) if (bytes.includes(Buffer.from(s))) leaked.push(`${what} in ${f.slice(dir.length)}`);
      }
    }
    expect(leaked).toEqual([]);

    // Without the seal stanza, without the key file, with an unset variable, with a wrong key or another key id: refused.
    const wrongKey = join(dir, 'wrong.key');
    writeFileSync(wrongKey, randomBytes(32), { mode: 0o600 });
    const refusals: Array<[string, string]> = [
      ['', `config file ${join(dir, 'r0.hcl')}: a seal stanza is required`],
      ['seal "static" {\n  current_key_id = "live-1"\n  current_key = "file:///nonexistent/tvm/seal.key"\n}\n', 'seal "static": current_key: cannot read key file /nonexistent/tvm/seal.key: ENOENT'],
      ['seal "static" {\n  current_key_id = "live-1"\n  current_key = "env://TVM_TEST_AT_REST_UNSET"\n}\n', 'seal "static": current_key: environment variable TVM_TEST_AT_REST_UNSET is not set'],
      [`seal "static" {\n  current_key_id = "live-1"\n  current_key = "file://${wrongKey}"\n}\n`, `the key given for key id "live-1" does not open the storage at ${copy}: it is not the key this storage was sealed with`],
      [`seal "static" {\n  current_key_id = "other"\n  current_key = "file://${wrongKey}"\n}\n`, `the storage at ${copy} is sealed with key id "live-1", which the seal stanza does not name (current_key_id "other")`],
    ];
    for (const [i, [seal, message]] of refusals.entries()) {
      const err = await startServer({ dev: false, configPath: writeConfig(`r${i}`, copy, seal), quiet: true, logger: quiet }).then(
        async (s) => {
          await s.close();
          return new Error(`started with refusal ${i}`);
        },
        (e: unknown) => e as Error,
      );
      expect(err.message).toContain(message);
    }
    // A key that cannot be read refuses the start before any database is created.
    const fresh = join(dir, 'fresh', 'tvm.db');
    const missingKey = 'seal "static" {\n  current_key_id = "k"\n  current_key = "env://TVM_TEST_AT_REST_UNSET"\n}\n';
    await expect(startServer({ dev: false, configPath: writeConfig('fresh', fresh, missingKey), quiet: true, logger: quiet })).rejects.toThrow(/is not set/);
    expect(existsSync(dirname(fresh))).toBe(false);

    // With the right key, the copy is the server: the root token, the role and the issued token are there.
    const again = await startServer({ dev: false, configPath: writeConfig('copy', copy, sealStanza(dir, 'live-1')), quiet: true, logger: quiet });
    try {
      expect(again.firstStart).toBe(false);
      expect((await call(again, root, 'GET', 'auth/token/lookup-self')).body.data).toMatchObject({ policies: ['root'] });
      expect((await call(again, root, 'GET', 'tvm/roles/orders')).body.data).toMatchObject({ read: ['db://orders/*'] });
      expect((await call(again, root, 'POST', 'tvm/introspect', { token: jwt })).body.data).toMatchObject({ active: true });
    } finally {
      await again.close();
    }
  });
});
