// Config mode (SQLite): auth mounts, their config, roles, secret IDs (with
// their remaining uses), entities and the tokens logins issued all survive a
// restart; disabling a method after the restart still revokes its tokens.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportSPKI, SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { claimsOf, startHarness } from './auth-helpers.ts';
import { sealStanza } from './seal-helpers.ts';
import { keyPair } from '../keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-auth-persist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('auth methods in config mode', () => {
  it('keep mounts, config, roles, secret IDs, entities and login tokens across a restart', async () => {
    const config = join(dir, 'tvm.hcl');
    writeFileSync(config, `storage "sqlite" {\n  path = "data/tvm.db"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n${sealStanza(dir)}`);
    const { publicKey, privateKey } = keyPair('ES256');
    const jwt = (): Promise<string> => {
      const iat = Math.floor(Date.now() / 1000);
      return new SignJWT({ sub: 'ci-runner', aud: 'vault', iat, exp: iat + 300 }).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    };

    const first = await startHarness({ configPath: config });
    const root = first.rootToken;
    let roleId: string;
    let secretId: string;
    let appToken: string;
    let entityId: string;
    try {
      await first.call('POST', 'tvm/roles/app', { read: ['db://app/*'], ttl: '5m' });
      await first.call('POST', 'sys/policies/acl/app', { policy: 'path "tvm/creds/app" { capabilities = ["read"] }' });
      expect((await first.call('POST', 'sys/auth/approle', { type: 'approle', description: 'apps' })).status).toBe(204);
      expect((await first.call('POST', 'sys/auth/jwt', { type: 'jwt', config: { max_lease_ttl: '1h' } })).status).toBe(204);
      expect((await first.call('POST', 'auth/jwt/config', { jwt_validation_pubkeys: [await exportSPKI(publicKey)] })).status).toBe(204);
      await first.call('POST', 'auth/jwt/role/ci', { role_type: 'jwt', user_claim: 'sub', bound_audiences: ['vault'], token_policies: ['app'] });
      await first.call('POST', 'auth/approle/role/app', { token_policies: ['app'], secret_id_num_uses: 3, token_ttl: '1h' });
      roleId = (await first.call('GET', 'auth/approle/role/app/role-id')).body.data!.role_id as string;
      secretId = (await first.call('POST', 'auth/approle/role/app/secret-id', {})).body.data!.secret_id as string;
      const login = await first.call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId }, null);
      expect(login.status).toBe(200);
      appToken = login.body.auth!.client_token as string;
      entityId = login.body.auth!.entity_id as string;
      expect((await first.call('POST', 'auth/jwt/login', { role: 'ci', jwt: await jwt() }, null)).status).toBe(200);
    } finally {
      await first.close();
    }

    const second = await startHarness({ configPath: config });
    try {
      const call = (method: string, path: string, body?: unknown, token: string | null = root) => second.call(method, path, body, token);
      const auth = (await call('GET', 'sys/auth')).body.data!;
      expect(auth['approle/']).toMatchObject({ type: 'approle', description: 'apps' });
      expect(auth['jwt/']).toMatchObject({ type: 'jwt', config: { max_lease_ttl: 3600 } });
      expect((await call('GET', 'auth/approle/role/app')).body.data).toMatchObject({ token_policies: ['app'], secret_id_num_uses: 3 });
      expect((await call('GET', 'auth/approle/role/app/role-id')).body.data!.role_id).toBe(roleId);
      expect((await call('GET', 'auth/jwt/config')).body.data!.jwt_validation_pubkeys).toHaveLength(1);

      // The token issued before the restart still acts for its workload.
      const creds = await call('GET', 'tvm/creds/app', undefined, appToken);
      expect(creds.status, creds.text).toBe(200);
      expect(claimsOf(creds.body.data!.token as string).sub).toBe('approle:app');

      // The secret ID kept its remaining uses: two of three left.
      const again = await call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId }, null);
      expect(again.status).toBe(200);
      expect(again.body.auth!.entity_id).toBe(entityId);
      expect((await call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId }, null)).status).toBe(200);
      expect((await call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId }, null)).body.errors).toEqual([
        'invalid role or secret ID',
      ]);
      const ci = await call('POST', 'auth/jwt/login', { role: 'ci', jwt: await jwt() }, null);
      expect(ci.status, ci.text).toBe(200);
      expect(ci.body.auth!.lease_duration).toBe(3600);
      expect((await call('GET', `identity/entity/id/${entityId}`)).status).toBe(200);

      expect((await call('DELETE', 'sys/auth/approle')).status).toBe(204);
      expect((await call('GET', 'auth/token/lookup-self', undefined, appToken)).status).toBe(403);
      expect((await call('GET', 'auth/token/lookup-self', undefined, again.body.auth!.client_token as string)).status).toBe(403);
    } finally {
      await second.close();
    }

    // And the disabling itself was durable.
    const third = await startHarness({ configPath: config });
    try {
      const auth = (await third.call('GET', 'sys/auth', undefined, root)).body.data!;
      expect(Object.keys(auth).sort()).toEqual(['jwt/', 'token/']);
    } finally {
      await third.close();
    }
  });
});
