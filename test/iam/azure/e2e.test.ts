// End to end: the dev server issues the tvm token, the provider presents it to
// the Azure fake as a federated client assertion, and the fake verifies it the
// way Entra does (issuer's discovery and JWKS, RSA algorithm, iss/sub/aud
// against the app's federated identity credential, exp), then the SAS is
// signed with the user delegation key the fake issued.
//
// Two differences Entra would not forgive, as for AWS: the dev server's issuer
// is http://127.0.0.1:<port>/v1/tvm, and Entra fetches only https issuers; and
// the mount must sign with RS256, because Entra refuses ES256 (tvm's default)
// and EdDSA assertions. The engine refuses an Azure role on a mount that does
// not sign RS256; a second mount (`tvm-es`, ES256, a plain role with Entra's
// audience) shows what Entra itself answers to an ES256 assertion (AADSTS5002738).

import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type VaultConnection } from '../../../src/client/index.ts';
import { CloudError } from '../../../src/iam/errors.ts';
import { azureModule, type AzureTarget } from '../../../src/iam/azure/module.ts';
import { createAzureProvider, type AzureSas } from '../../../src/iam/azure/provider.ts';
import type { GrantRequest } from '../../../src/iam/types.ts';
import { startServer } from '../../../src/server/index.ts';
import { startAzureFake, type AzureFake } from '../fakes/azure.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0b5f2c1e-9d7a-4c1b-8f00-000000000042';
const OID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
const AUD = 'api://AzureADTokenExchange';
const IAM = { azure: { tenant_id: TENANT, client_id: CLIENT, storage_account: 'tvmlogs01' } };
const ROLE = { read: ['azblob://tvmlogs01/logs/**'], write: ['azblob://tvmlogs01/outbox/report.csv'], audiences: [AUD, 'https://orders.example'], ttl: '15m', max_ttl: '1h', iam: IAM };

let server: Awaited<ReturnType<typeof startServer>>;
let conn: VaultConnection;
let issuer: string;
let fake: AzureFake;

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  conn = connect({ addr: server.address, token: server.rootToken, env: {} });
  await conn.write('tvm/config', { signing_algorithm: 'RS256' });
  await conn.write('tvm/roles/blobs', ROLE);
  issuer = `${server.address}/v1/tvm`;
  await conn.write('sys/mounts/tvm-es', { type: 'tvm' });
  const { iam: _iam, ...plain } = ROLE;
  await conn.write('tvm-es/roles/blobs', plain);
  fake = await startAzureFake();
  fake.addApp({
    tenantId: TENANT,
    clientId: CLIENT,
    objectId: OID,
    federated: [
      { issuer, subject: 'root', audiences: [AUD] },
      { issuer: `${server.address}/v1/tvm-es`, subject: 'root', audiences: [AUD] },
    ],
  });
});

afterAll(async () => {
  await fake?.close();
  await server?.close();
});

afterEach(() => {
  fake.reset();
});

/** `vault write tvm/creds/blobs audience=...` (a read gives every audience of the role). */
async function creds(audience: string[] | null): Promise<{ token: string; leaseS: number }> {
  const res = audience === null ? await conn.read('tvm/creds/blobs') : await conn.write('tvm/creds/blobs', { audience });
  return { token: res?.data?.token as string, leaseS: res?.lease_duration as number };
}

async function exchange(token: string, leaseS: number) {
  const provider = createAzureProvider({ authorityHost: fake.urls.login, blobEndpoint: fake.blobEndpoint, agent: fake.agent, maxRetries: 0 });
  const role = (await conn.read('tvm/roles/blobs'))?.data as { read: string[]; write: string[]; iam: { azure: unknown } };
  const target = azureModule.parseTarget(role.iam.azure, 'iam.azure');
  const claims = decodeJwt(token);
  const now = Date.now();
  const req: GrantRequest<AzureTarget> = {
    grantId: 'e2e00000-0000-4000-8000-0000000000az',
    jti: String(claims.jti),
    token,
    subject: String(claims.sub),
    role: 'blobs',
    scopes: { read: role.read, write: role.write },
    target,
    now,
    leaseExpiresAt: now + leaseS * 1000,
    leaseMaxExpiresAt: now + 3_600_000,
  };
  return provider.issue(req, provider.plan(req));
}

describe('the tvm token as an Entra federated client assertion', () => {
  it('the role as stored passes the Azure checks (audience among the role audiences, max_ttl within 7 days)', async () => {
    const role = (await conn.read('tvm/roles/blobs'))?.data as { read: string[]; write: string[]; audiences: string[]; max_ttl: number; iam: { azure: unknown } };
    const target = azureModule.parseTarget(role.iam.azure, 'iam.azure');
    expect(target.audience).toBe(AUD);
    expect(() => azureModule.checkRole(target, { read: role.read, write: role.write, audiences: role.audiences, maxTtlS: role.max_ttl }, 'iam.azure')).not.toThrow();
  });

  it('RS256 mount: Entra (the fake) verifies iss, sub, aud and the signature against the issuer JWKS, and the SAS follows', async () => {
    await conn.write('tvm/config', { signing_algorithm: 'RS256' });
    const { token, leaseS } = await creds([AUD]);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: expect.any(String) });
    expect(decodeJwt(token)).toMatchObject({ iss: issuer, sub: 'root', aud: AUD });
    const grant = await exchange(token, leaseS);
    expect(fake.state.tokens).toHaveLength(1);
    expect(fake.state.tokens[0]).toMatchObject({ resource: 'https://storage.azure.com', assertion: { iss: issuer, sub: 'root', aud: AUD, alg: 'RS256' } });
    expect(fake.requests.find((r) => r.endpoint === 'token')?.form?.client_assertion).toBe(token);
    const sas = grant.credential.sas as AzureSas[];
    expect(sas.map((s) => [s.resource, s.container, s.path, s.permissions])).toEqual([
      ['container', 'logs', undefined, 'rl'],
      ['blob', 'outbox', 'report.csv', 'acwd'],
    ]);
    expect(new URLSearchParams(sas[0].token).get('skoid')).toBe(OID);
    expect(grant.expiresAt).toBeLessThanOrEqual(Date.now() + leaseS * 1000);
  });

  it('a token with every role audience (a plain read) is accepted too: Entra needs only one to match', async () => {
    await conn.write('tvm/config', { signing_algorithm: 'RS256' });
    const { token, leaseS } = await creds(null);
    expect(decodeJwt(token).aud).toEqual([AUD, 'https://orders.example']);
    await exchange(token, leaseS);
    expect(fake.state.tokens).toHaveLength(1);
  });

  it('a token narrowed to another audience is refused (AADSTS700212)', async () => {
    await conn.write('tvm/config', { signing_algorithm: 'RS256' });
    const { token, leaseS } = await creds(['https://orders.example']);
    const err = (await exchange(token, leaseS).catch((e: unknown) => e)) as CloudError;
    expect(err).toBeInstanceOf(CloudError);
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toContain('AADSTS700212');
    expect(fake.state.keys).toEqual([]);
  });

  it('the engine refuses an Azure role on an ES256 mount, and ES256 on a mount with an Azure role', async () => {
    await expect(conn.write('tvm-es/roles/mapped', ROLE)).rejects.toThrow(
      'invalid iam.azure: azure federation accepts tokens signed with RS256; this mount signs with ES256 (set config signing_algorithm to RS256)',
    );
    await expect(conn.write('tvm/config', { signing_algorithm: 'ES256' })).rejects.toThrow('invalid signing_algorithm: role "blobs" maps azure');
  });

  it("an ES256 assertion is refused by Entra itself (AADSTS5002738): why Azure roles need signing_algorithm=RS256", async () => {
    const res = await conn.write('tvm-es/creds/blobs', { audience: [AUD] });
    const token = res?.data?.token as string;
    const leaseS = res?.lease_duration as number;
    expect(decodeProtectedHeader(token).alg).toBe('ES256');
    const err = (await exchange(token, leaseS).catch((e: unknown) => e)) as CloudError;
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toBe(
      "azure: Entra token for the federated client assertion failed: Entra answered: invalid_client: AADSTS5002738: Invalid JWT token. 'ES256' is not a supported signature algorithm.",
    );
  });
});
