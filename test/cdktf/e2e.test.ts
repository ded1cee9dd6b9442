// End to end: synthesize the example stack (cdktf/config.ts + TvmStack), apply
// the Terraform JSON to a dev server started in-process, making the Vault API
// calls the Terraform Vault provider makes (apply.ts), then log the two
// workloads in the way they would in production and vend tokens:
// orders-service with AppRole, log-shipper with a service-account style JWT
// signed by a test issuer. Each may vend its own role and nothing else.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'cdktf';
import type { KeyObject } from 'node:crypto';
import { decodeJwt, exportSPKI, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleConfig } from '../../cdktf/config.ts';
import { TvmStack } from '../../cdktf/stacks/tvm-stack.ts';
import { startServer, type Logger } from '../../src/server/index.ts';
import { applyTerraformJson, type ApplyResult, type TerraformJson } from './apply.ts';
import { keyPair } from '../keys.ts';

type Server = Awaited<ReturnType<typeof startServer>>;

const ISSUER = 'https://kubernetes.test.invalid';
const SERVICE_ACCOUNT = 'system:serviceaccount:logging:log-shipper';

interface Reply {
  status: number;
  body: {
    data?: Record<string, unknown>;
    auth?: { client_token: string; policies: string[]; token_policies?: string[]; accessor?: string };
    errors?: string[];
  };
}

async function call(address: string, method: string, path: string, token?: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${address}/v1/${path}`, {
    method,
    headers: { ...(token ? { 'X-Vault-Token': token } : {}), ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Reply['body']) };
}

// No probe and no skip: everything this needs runs in-process (the dev server, the test issuer). The dev
// server serves sys/auth, AppRole and JWT; if enabling either breaks, the apply below fails, as it should.
describe('the example stack, synthesized and applied to a dev server', () => {
  let server: Server;
  let dir: string;
  let tf: TerraformJson;
  let applied: ApplyResult;
  let issuerKey: KeyObject;
  const logLines: string[] = [];
  /** Every secret the test handles; none may appear in a log line. */
  const secrets: string[] = [];
  let mountPath: string;

  const root = (method: string, path: string, body?: unknown): Promise<Reply> => call(server.address, method, path, server.rootToken, body);

  /** A Kubernetes-style service-account token from the test issuer; `claims` override the defaults. */
  function serviceAccountToken(claims: Record<string, unknown> = {}, opts: { expiresAt?: number; issuedAt?: number } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const iat = opts.issuedAt ?? now;
    return new SignJWT({
      iss: ISSUER,
      sub: SERVICE_ACCOUNT,
      aud: ['vault'],
      iat,
      nbf: iat,
      exp: opts.expiresAt ?? iat + 600,
      'kubernetes.io': { namespace: 'logging', serviceaccount: { name: 'log-shipper' } },
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .sign(issuerKey);
  }

  async function appRoleLogin(): Promise<string> {
    const roleId = (await root('GET', 'auth/approle/role/orders-service/role-id')).body.data?.role_id as string;
    const secret = await root('POST', 'auth/approle/role/orders-service/secret-id');
    const secretId = secret.body.data?.secret_id as string;
    secrets.push(secretId);
    const login = await call(server.address, 'POST', 'auth/approle/login', undefined, { role_id: roleId, secret_id: secretId });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body.auth!.policies).toContain('tvm-orders-service');
    expect(login.body.auth!.policies).not.toContain('tvm-log-shipper');
    secrets.push(login.body.auth!.client_token);
    return login.body.auth!.client_token;
  }

  async function jwtLogin(): Promise<string> {
    const jwt = await serviceAccountToken();
    secrets.push(jwt);
    const login = await call(server.address, 'POST', 'auth/jwt/login', undefined, { role: 'log-shipper', jwt });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body.auth!.policies).toContain('tvm-log-shipper');
    expect(login.body.auth!.policies).not.toContain('tvm-orders-service');
    secrets.push(login.body.auth!.client_token);
    return login.body.auth!.client_token;
  }

  beforeAll(async () => {
    const capture = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
      logLines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
    };
    const logger: Logger = { debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error') };
    server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true, logger });
    secrets.push(server.rootToken);

    const keys = keyPair('RS256');
    issuerKey = keys.privateKey;
    dir = mkdtempSync(join(tmpdir(), 'tvm-cdktf-e2e-'));
    const pubkeyFile = join(dir, 'issuer.pem');
    writeFileSync(pubkeyFile, await exportSPKI(keys.publicKey));

    // The example stack's own config, pointed at this server and this issuer.
    const config = exampleConfig({ VAULT_ADDR: server.address, TVM_JWT_ISSUER: ISSUER, TVM_JWT_PUBKEY_FILE: pubkeyFile });
    mountPath = config.mount.path;
    const app = new App({ outdir: join(dir, 'cdktf.out') });
    new TvmStack(app, config.stackName, config);
    app.synth();
    tf = JSON.parse(readFileSync(join(dir, 'cdktf.out', 'stacks', config.stackName, 'cdk.tf.json'), 'utf8')) as TerraformJson;
    applied = await applyTerraformJson(tf, { token: server.rootToken });
  });

  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies every resource in dependency order, and a read after each write finds what was written', () => {
    expect(mountPath).toBe('tvm-platform');
    const types = applied.order.map((a) => a.split('.')[0]);
    const first = (type: string, match = (_a: string) => true): number => applied.order.findIndex((a) => a.startsWith(`${type}.`) && match(a));
    expect(types.sort()).toEqual(
      [
        'vault_approle_auth_backend_role',
        'vault_auth_backend',
        'vault_generic_endpoint',
        'vault_generic_endpoint',
        'vault_generic_endpoint',
        'vault_jwt_auth_backend',
        'vault_jwt_auth_backend_role',
        'vault_mount',
        'vault_policy',
        'vault_policy',
      ].sort(),
    );
    expect(first('vault_mount')).toBeLessThan(first('vault_generic_endpoint'));
    expect(first('vault_generic_endpoint')).toBeLessThan(first('vault_policy'));
    expect(first('vault_policy')).toBeLessThan(first('vault_approle_auth_backend_role'));
    expect(first('vault_auth_backend')).toBeLessThan(first('vault_approle_auth_backend_role'));
    expect(first('vault_jwt_auth_backend')).toBeLessThan(first('vault_jwt_auth_backend_role'));
    expect(applied.drift).toEqual([]);

    // The provider's calls: configure with a child token, then each resource's writes.
    expect(applied.calls.slice(0, 3).map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET auth/token/lookup-self',
      'GET sys/seal-status',
      'POST auth/token/create',
    ]);
    const writes = applied.calls.filter((c) => c.method !== 'GET').map((c) => `${c.method} ${c.path}`);
    expect(writes.sort()).toEqual(
      [
        'POST auth/token/create',
        'POST sys/mounts/tvm-platform',
        'PUT tvm-platform/config',
        'PUT tvm-platform/roles/orders',
        'PUT tvm-platform/roles/logs',
        'PUT sys/policies/acl/tvm-orders-service',
        'PUT sys/policies/acl/tvm-log-shipper',
        'POST sys/auth/approle',
        'PUT auth/approle/role/orders-service',
        'POST sys/auth/jwt',
        'PUT auth/jwt/config',
        'PUT auth/jwt/role/log-shipper',
      ].sort(),
    );
    expect(applied.calls.every((c) => c.status < 300)).toBe(true);
  });

  it('leaves the server as the stack describes it', async () => {
    const role = await root('GET', `${mountPath}/roles/orders`);
    expect(role.body.data).toMatchObject({ read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: 300 });
    const auth = await root('GET', 'sys/auth');
    const methods = (auth.body.data ?? auth.body) as Record<string, { type?: string }>;
    expect(methods['approle/']?.type).toBe('approle');
    expect(methods['jwt/']?.type).toBe('jwt');
    const policy = await root('GET', 'sys/policies/acl/tvm-log-shipper');
    expect(policy.body.data?.policy).toContain(`path "${mountPath}/creds/logs"`);
    // The dev server's own tvm/ mount and its demo role are untouched.
    expect((await root('GET', 'tvm/roles/demo')).status).toBe(200);
  });

  it('orders-service logs in with AppRole and vends orders, and only orders', async () => {
    const token = await appRoleLogin();
    const creds = await call(server.address, 'GET', `${mountPath}/creds/orders`, token);
    expect(creds.status, JSON.stringify(creds.body)).toBe(200);
    expect(creds.body.data).toMatchObject({ token_type: 'readwrite', read: ['db://orders/*'], write: ['db://orders/outbox'], role: 'orders' });
    const claims = decodeJwt(creds.body.data!.token as string);
    expect(claims.scope).toBe('read:db://orders/* write:db://orders/outbox');
    expect(claims.client_id).toBe('orders');
    // The identity it logged in with is the subject of what it vends.
    expect(claims.sub).toContain('orders-service');
    expect(claims.exp! - claims.iat!).toBe(300);

    // Down-scoped vending is an update on the same path: allowed too.
    const narrow = await call(server.address, 'POST', `${mountPath}/creds/orders`, token, { read: ['db://orders/42'], write: [] });
    expect(narrow.status, JSON.stringify(narrow.body)).toBe(200);

    for (const [method, path, body] of [
      ['GET', `${mountPath}/creds/logs`],
      ['POST', `${mountPath}/creds/logs`, {}],
      ['GET', 'tvm/creds/demo'],
      ['POST', `${mountPath}/roles/orders`, { read: ['db://**'] }],
      ['POST', `${mountPath}/roles/anything`, { read: ['db://**'] }],
      ['PUT', 'sys/policies/acl/tvm-orders-service', { policy: 'path "*" { capabilities = ["sudo"] }' }],
    ] as [string, string, unknown?][]) {
      const denied = await call(server.address, method, path, token, body);
      expect(denied.status, `${method} ${path}: ${JSON.stringify(denied.body)}`).toBe(403);
      expect(denied.body.errors?.join(' ')).toMatch(/permission denied/);
    }
  });

  it('log-shipper logs in with its service-account JWT and vends logs, and only logs', async () => {
    const token = await jwtLogin();
    const creds = await call(server.address, 'GET', `${mountPath}/creds/logs`, token);
    expect(creds.status, JSON.stringify(creds.body)).toBe(200);
    expect(creds.body.data).toMatchObject({ token_type: 'read', read: ['s3://logs/app/**'], write: [], role: 'logs' });
    const claims = decodeJwt(creds.body.data!.token as string);
    expect(claims.scope).toBe('read:s3://logs/app/**');
    expect(claims.sub).toContain(SERVICE_ACCOUNT);

    for (const [method, path, body] of [
      ['GET', `${mountPath}/creds/orders`],
      ['POST', `${mountPath}/creds/orders`, { read: ['db://orders/1'] }],
      ['POST', `${mountPath}/roles/logs`, { write: ['s3://logs/**'] }],
      ['DELETE', `${mountPath}/roles/orders`],
    ] as [string, string, unknown?][]) {
      const denied = await call(server.address, method, path, token, body);
      expect(denied.status, `${method} ${path}: ${JSON.stringify(denied.body)}`).toBe(403);
    }
  });

  describe('bad logins fail with a clear 400 or 403', () => {
    async function expectRefused(path: string, body: Record<string, unknown>, says: RegExp): Promise<void> {
      const res = await call(server.address, 'POST', path, undefined, body);
      expect([400, 403], `${path}: ${res.status} ${JSON.stringify(res.body)}`).toContain(res.status);
      const message = res.body.errors?.join('; ') ?? '';
      expect(message).toMatch(says);
      for (const v of Object.values(body)) if (typeof v === 'string' && v.length > 20) expect(message).not.toContain(v);
    }

    it('a wrong secret_id', async () => {
      const roleId = (await root('GET', 'auth/approle/role/orders-service/role-id')).body.data?.role_id as string;
      const wrong = randomUUID();
      secrets.push(wrong);
      await expectRefused('auth/approle/login', { role_id: roleId, secret_id: wrong }, /secret.?id/i);
    });

    it('a single-use secret_id used twice', async () => {
      const roleId = (await root('GET', 'auth/approle/role/orders-service/role-id')).body.data?.role_id as string;
      const secretId = (await root('POST', 'auth/approle/role/orders-service/secret-id')).body.data?.secret_id as string;
      secrets.push(secretId);
      const first = await call(server.address, 'POST', 'auth/approle/login', undefined, { role_id: roleId, secret_id: secretId });
      expect(first.status).toBe(200);
      secrets.push(first.body.auth!.client_token);
      await expectRefused('auth/approle/login', { role_id: roleId, secret_id: secretId }, /secret.?id/i);
    });

    it('an expired JWT', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await serviceAccountToken({}, { issuedAt: now - 3600, expiresAt: now - 1800 });
      secrets.push(jwt);
      await expectRefused('auth/jwt/login', { role: 'log-shipper', jwt }, /exp/i);
    });

    it('a tampered JWT (claims changed after signing)', async () => {
      const jwt = await serviceAccountToken();
      const [header, payload, signature] = jwt.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
      const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url')}.${signature}`;
      secrets.push(jwt, forged);
      await expectRefused('auth/jwt/login', { role: 'log-shipper', jwt: forged }, /signature|verif/i);
    });

    it('a JWT for another audience', async () => {
      const jwt = await serviceAccountToken({ aud: ['https://kubernetes.default.svc'] });
      secrets.push(jwt);
      await expectRefused('auth/jwt/login', { role: 'log-shipper', jwt }, /aud/i);
    });

    it('a JWT of another service account', async () => {
      const jwt = await serviceAccountToken({ sub: 'system:serviceaccount:default:default' });
      secrets.push(jwt);
      await expectRefused('auth/jwt/login', { role: 'log-shipper', jwt }, /sub/i);
    });

    it('an unsigned JWT (alg none)', async () => {
      const signed = await serviceAccountToken();
      const payload = signed.split('.')[1];
      const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
      secrets.push(unsigned);
      await expectRefused('auth/jwt/login', { role: 'log-shipper', jwt: unsigned }, /alg|none|signature|verif/i);
    });
  });

  it('logs no secret: no secret id, client token or JWT appears in a log line', () => {
    expect(secrets.length).toBeGreaterThan(5);
    for (const line of logLines) {
      for (const s of secrets) expect(line.includes(s), `a log line holds a secret: ${line.slice(0, 200)}`).toBe(false);
    }
  });
});
