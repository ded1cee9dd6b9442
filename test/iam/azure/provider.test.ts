// The Azure provider with the real @azure/identity (MSAL) and @azure/storage-blob
// against the loopback HTTPS fake, and a local RS256 issuer the fake verifies
// client assertions against (discovery + JWKS, as Entra does).
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import {
  BlobSASPermissions,
  ContainerSASPermissions,
  SASProtocol,
  generateBlobSASQueryParameters,
  type UserDelegationKey,
} from '@azure/storage-blob';
import type { KeyObject } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CloudError, IamFieldError } from '../../../src/iam/errors.ts';
import { azureModule, type AzureTarget } from '../../../src/iam/azure/module.ts';
import { createAzureProvider, REVOKE_API_VERSION, START_SKEW_MS, type AzureProviderOptions, type AzurePlan, type AzureSas } from '../../../src/iam/azure/provider.ts';
import { SAS_VERSION, sasTime } from '../../../src/iam/azure/sas.ts';
import type { CloudGrant, CloudProvider, GrantRequest } from '../../../src/iam/types.ts';
import { documentedSignature, documentedStringToSign } from '../fakes/azure-sas.ts';
import { startAzureFake, type AzureFake, type AzureFakeKey } from '../fakes/azure.ts';
import { keyPair } from '../../keys.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0b5f2c1e-9d7a-4c1b-8f00-000000000042';
const OID = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
const SUB = '4a8c0d3e-1111-4222-8333-944455556666';
const RG = 'rg-tvm';
const ACCOUNT = 'tvmlogs01';
const SUBJECT = 'approle:ci';
const AUD = 'api://AzureADTokenExchange';
const ARM_TOKEN = 'arm-broker-token';
const SCOPES = {
  read: ['azblob://tvmlogs01/logs/**', 'azblob://tvmlogs01/lake/raw/2026/**', 'db://orders/*'],
  write: ['azblob://tvmlogs01/outbox/batch-7.json', 'azblob://tvmlogs01/logs/**'],
};
const BASE_TARGET = { tenant_id: TENANT, client_id: CLIENT, storage_account: ACCOUNT, hierarchical_namespace: true };
const REVOKING_TARGET = { ...BASE_TARGET, revoke_user_delegation_keys: true, subscription_id: SUB, resource_group: RG };

let issuerServer: Server;
let issuer: string;
let rsaKey: KeyObject;
let ecKey: KeyObject;
let fake: AzureFake;
let provider: CloudProvider<AzureTarget>;
/** Moves the fake's clock (SAS and key times) away from the wall clock. */
let fakeClockOffsetMs = 0;
const armScopes: string[][] = [];
const managementCredential: TokenCredential = {
  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    armScopes.push(Array.isArray(scopes) ? scopes : [scopes]);
    return { token: ARM_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 };
  },
};

function providerWith(over: AzureProviderOptions = {}): CloudProvider<AzureTarget> {
  return createAzureProvider({
    authorityHost: fake.urls.login,
    blobEndpoint: fake.blobEndpoint,
    managementEndpoint: fake.urls.management,
    managementCredential,
    agent: fake.agent,
    maxRetries: 0,
    ...over,
  });
}

beforeAll(async () => {
  const rsa = keyPair('RS256');
  const ec = keyPair('ES256');
  rsaKey = rsa.privateKey;
  ecKey = ec.privateKey;
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  issuerServer = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/v1/tvm/.well-known/openid-configuration') res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json` }));
    else if (req.url === '/v1/tvm/.well-known/jwks.json') res.end(JSON.stringify({ keys }));
    else res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => issuerServer.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}/v1/tvm`;
  fake = await startAzureFake({ managementTokens: [ARM_TOKEN], clock: () => Date.now() + fakeClockOffsetMs });
  provider = providerWith();
});

afterAll(async () => {
  await fake?.close();
  await new Promise<void>((r) => issuerServer.close(() => r()));
});

beforeEach(() => {
  fakeClockOffsetMs = 0;
  fake.reset();
  fake.addApp({ tenantId: TENANT, clientId: CLIENT, objectId: OID, federated: [{ issuer, subject: SUBJECT, audiences: [AUD] }] });
  fake.addAccount({ name: ACCOUNT, subscriptionId: SUB, resourceGroup: RG });
  armScopes.length = 0;
});

async function sign(opts: { alg?: 'RS256' | 'ES256'; sub?: string; aud?: string; expS?: number } = {}): Promise<string> {
  const nowS = Math.floor(Date.now() / 1000);
  const alg = opts.alg ?? 'RS256';
  return new SignJWT({ scope: 'read:azblob://tvmlogs01/logs/**', client_id: 'logs' })
    .setProtectedHeader({ alg, kid: alg === 'RS256' ? 'rsa-1' : 'ec-1', typ: 'at+jwt' })
    .setIssuer(issuer)
    .setSubject(opts.sub ?? SUBJECT)
    .setAudience(opts.aud ?? AUD)
    .setIssuedAt(nowS)
    .setNotBefore(nowS)
    .setExpirationTime(opts.expS ?? nowS + 900)
    .setJti('7b0c7d0e-0000-4000-8000-000000000001')
    .sign(alg === 'RS256' ? rsaKey : ecKey);
}

async function request(target: Record<string, unknown> = BASE_TARGET, over: Partial<GrantRequest<AzureTarget>> = {}): Promise<GrantRequest<AzureTarget>> {
  const now = Date.now();
  return {
    grantId: '0b5f2c1e-9d7a-4c1b-8f00-0000000000a1',
    jti: '7b0c7d0e-0000-4000-8000-000000000001',
    token: await sign(),
    subject: SUBJECT,
    role: 'logs',
    scopes: SCOPES,
    target: azureModule.parseTarget(target, 'iam.azure'),
    now,
    leaseExpiresAt: now + 15 * 60_000,
    leaseMaxExpiresAt: now + 3_600_000,
    ...over,
  };
}

async function caught(p: Promise<unknown>): Promise<CloudError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CloudError);
    return err as CloudError;
  }
  throw new Error('expected a CloudError');
}

const floorS = (ms: number) => Math.floor(ms / 1000) * 1000;
const params = (token: string) => Object.fromEntries(new URLSearchParams(token));
const sasOf = (grant: CloudGrant) => grant.credential.sas as AzureSas[];

function sdkKey(k: AzureFakeKey): UserDelegationKey {
  return {
    signedObjectId: k.signedOid,
    signedTenantId: k.signedTid,
    signedStartsOn: new Date(k.signedStart),
    signedExpiresOn: new Date(k.signedExpiry),
    signedService: k.signedService,
    signedVersion: k.signedVersion,
    value: k.value,
  };
}

/**
 * Verifies a SAS offline against the key the fake issued, without tvm's signing
 * code: the string-to-sign Microsoft documents (test/iam/fakes/azure-sas.ts) over
 * the resource the SAS names, HMAC'd with the key; sdd is the directory's depth.
 * For containers and blobs the SDK signs the same inputs again and must agree.
 */
function verifySas(s: AzureSas, k: AzureFakeKey): void {
  const q = params(s.token);
  const resource = `/blob/${ACCOUNT}/${s.container}${q.sr === 'c' ? '' : `/${s.path}`}`;
  expect(documentedSignature(k.value, documentedStringToSign(q, resource)) === q.sig, `the ${q.sr} SAS for ${resource} verifies`).toBe(true);
  if (q.sr === 'd') expect(Number(q.sdd)).toBe((s.path as string).split('/').length);
  else {
    const key = sdkKey(k);
    const again = generateBlobSASQueryParameters(
      {
        containerName: s.container,
        ...(q.sr === 'b' ? { blobName: s.path } : {}),
        permissions: q.sr === 'b' ? BlobSASPermissions.parse(q.sp) : ContainerSASPermissions.parse(q.sp),
        startsOn: new Date(q.st),
        expiresOn: new Date(q.se),
        protocol: SASProtocol.Https,
        version: q.sv,
      },
      key,
      ACCOUNT,
    );
    expect(again.signature === q.sig, 'the SDK signs the same SAS').toBe(true);
  }
}

describe('plan', () => {
  it('names the account and one SAS per resource, nothing to create; deterministic and JSON', async () => {
    const req = await request(REVOKING_TARGET);
    const plan = provider.plan(req) as AzurePlan;
    expect(plan).toEqual({
      cloud: 'azure',
      grantId: req.grantId,
      account: ACCOUNT,
      tenantId: TENANT,
      clientId: CLIENT,
      objects: [],
      sas: [
        { resource: 'c', container: 'logs', permissions: 'racwdl', patterns: ['read:azblob://tvmlogs01/logs/**', 'write:azblob://tvmlogs01/logs/**'] },
        { resource: 'd', container: 'lake', path: 'raw/2026', depth: 2, permissions: 'rl', patterns: ['read:azblob://tvmlogs01/lake/raw/2026/**'] },
        { resource: 'b', container: 'outbox', path: 'batch-7.json', permissions: 'acwd', patterns: ['write:azblob://tvmlogs01/outbox/batch-7.json'] },
      ],
      revokeKeys: { subscriptionId: SUB, resourceGroup: RG },
    });
    expect(provider.plan(req)).toEqual(plan);
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
    expect((provider.plan(await request()) as AzurePlan).revokeKeys).toBeNull();
    expect(provider.cloud).toBe('azure');
    expect(provider.module).toBe(azureModule);
    expect(fake.requests).toEqual([]);
  });

  it('refuses scopes no SAS can express, and a grant with no azblob:// scope', async () => {
    const flat = await request({ ...BASE_TARGET, hierarchical_namespace: false });
    expect(() => provider.plan(flat)).toThrow(IamFieldError);
    expect(() => provider.plan(flat)).toThrow('invalid read[1]: azblob://tvmlogs01/lake/raw/2026/**: a prefix needs a directory SAS (sr=d)');
    const none = await request(BASE_TARGET, { scopes: { read: ['db://orders/*'], write: [] } });
    expect(() => provider.plan(none)).toThrow('no azblob:// scope');
  });
});

describe('issue', () => {
  it('federated client assertion -> storage token -> user delegation key -> one SAS per scope, exactly', async () => {
    const req = await request();
    const grant = await provider.issue(req, provider.plan(req));
    expect(fake.requests.map((r) => [r.service, r.endpoint, r.status])).toEqual([
      ['login', 'openidConfiguration', 200],
      ['login', 'token', 200],
      ['blob', 'userDelegationKey', 200],
    ]);
    const [discovery, token, udk] = fake.requests;
    expect(discovery.path).toBe(`/${TENANT}/v2.0/.well-known/openid-configuration`);
    // The token request: client credentials for storage, the tvm token as the assertion.
    expect(token.path).toBe(`/${TENANT}/oauth2/v2.0/token`);
    expect(token.form).toMatchObject({
      client_id: CLIENT,
      grant_type: 'client_credentials',
      scope: 'https://storage.azure.com/.default',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: req.token,
    });
    expect(fake.state.tokens[0]).toMatchObject({ resource: 'https://storage.azure.com', clientId: CLIENT, assertion: { iss: issuer, sub: SUBJECT, aud: AUD, alg: 'RS256' } });
    // The key request: start = now - skew, expiry = the lease's expiry, whole seconds.
    const st = sasTime(new Date(floorS(req.now - START_SKEW_MS)));
    const se = sasTime(new Date(floorS(req.leaseExpiresAt)));
    expect(udk.path).toBe(`/${ACCOUNT}/`);
    expect(udk.query).toEqual({ restype: 'service', comp: 'userdelegationkey' });
    expect(udk.headers.authorization).toBe(`Bearer ${fake.state.tokens[0].access_token}`);
    expect(udk.body).toBe(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><KeyInfo><Start>${st}</Start><Expiry>${se}</Expiry></KeyInfo>`);
    const key = fake.state.keys[0];
    expect(key).toMatchObject({ account: ACCOUNT, signedOid: OID, signedTid: TENANT, signedStart: st, signedExpiry: se, revokedAt: null });

    const common = { sv: SAS_VERSION, spr: 'https', st, se, skoid: OID, sktid: TENANT, skt: st, ske: se, sks: 'b', skv: key.signedVersion };
    const sas = sasOf(grant);
    expect(sas.map((s) => params(s.token))).toEqual([
      { ...common, sr: 'c', sp: 'racwdl', sig: expect.any(String) },
      { ...common, sr: 'd', sp: 'rl', sdd: '2', sig: expect.any(String) },
      { ...common, sr: 'b', sp: 'acwd', sig: expect.any(String) },
    ]);
    expect(sas.map((s) => [s.resource, s.container, s.path, s.permissions, s.url.split('?')[0]])).toEqual([
      ['container', 'logs', undefined, 'racwdl', `${fake.urls.blob}/${ACCOUNT}/logs`],
      ['directory', 'lake', 'raw/2026', 'rl', `${fake.urls.blob}/${ACCOUNT}/lake/raw/2026`],
      ['blob', 'outbox', 'batch-7.json', 'acwd', `${fake.urls.blob}/${ACCOUNT}/outbox/batch-7.json`],
    ]);
    for (const s of sas) {
      expect(s.url).toBe(`${s.url.split('?')[0]}?${s.token}`);
      verifySas(s, key);
    }
    expect(grant.expiresAt).toBe(floorS(req.leaseExpiresAt));
    expect(grant.credential).toMatchObject({ cloud: 'azure', expires_at: new Date(floorS(req.leaseExpiresAt)).toISOString(), account: ACCOUNT, account_url: `${fake.urls.blob}/${ACCOUNT}` });
    expect(grant.credential.env).toEqual({
      AZURE_STORAGE_ACCOUNT: ACCOUNT,
      AZURE_STORAGE_SAS_URL_1: sas[0].url,
      AZURE_STORAGE_SAS_URL_2: sas[1].url,
      AZURE_STORAGE_SAS_URL_3: sas[2].url,
    });
    // State: non-secret facts only.
    expect(grant.state).toEqual({ account: ACCOUNT, expires_at: grant.credential.expires_at, sas_version: SAS_VERSION, key_oid: OID, key_start: st, key_expiry: se });
    expect(JSON.stringify(grant.state)).not.toContain(key.value);
  });

  it('a tampered SAS does not verify (the check has teeth)', async () => {
    const req = await request(BASE_TARGET, { scopes: { read: ['azblob://tvmlogs01/logs/**', 'azblob://tvmlogs01/lake/raw/2026/**'], write: [] } });
    const grant = await provider.issue(req, provider.plan(req));
    const [c, d] = sasOf(grant);
    expect(() => verifySas({ ...c, token: c.token.replace('sp=rl', 'sp=rwl') }, fake.state.keys[0])).toThrow();
    expect(() => verifySas({ ...d, token: d.token.replace('sdd=2', 'sdd=1') }, fake.state.keys[0])).toThrow();
    expect(() => verifySas({ ...d, path: 'raw' }, fake.state.keys[0])).toThrow();
    expect(() => verifySas({ ...d, token: d.token.replace('sp=rl', 'sp=rcl') }, fake.state.keys[0])).toThrow();
    verifySas(c, fake.state.keys[0]);
    verifySas(d, fake.state.keys[0]);
  });

  it('one SAS: AZURE_STORAGE_SAS_TOKEN as well (what az storage reads with AZURE_STORAGE_ACCOUNT)', async () => {
    const req = await request(BASE_TARGET, { scopes: { read: ['azblob://tvmlogs01/config/app/settings.json'], write: [] } });
    const grant = await provider.issue(req, provider.plan(req));
    const [s] = sasOf(grant);
    expect(params(s.token)).toMatchObject({ sr: 'b', sp: 'r' });
    expect(grant.credential.env).toEqual({ AZURE_STORAGE_ACCOUNT: ACCOUNT, AZURE_STORAGE_SAS_URL_1: s.url, AZURE_STORAGE_SAS_TOKEN: s.token });
    verifySas(s, fake.state.keys[0]);
  });

  it("never past the lease's hard end: the key and the SAS expire at leaseMaxExpiresAt", async () => {
    const now = Date.now();
    const req = await request(BASE_TARGET, { now, leaseExpiresAt: now + 7_200_000, leaseMaxExpiresAt: now + 1_800_500 });
    const grant = await provider.issue(req, provider.plan(req));
    const se = sasTime(new Date(floorS(now + 1_800_500)));
    expect(fake.requests.find((r) => r.endpoint === 'userDelegationKey')?.keyInfo?.expiry).toBe(se);
    expect(sasOf(grant).every((s) => params(s.token).se === se)).toBe(true);
    expect(grant.expiresAt).toBeLessThanOrEqual(req.leaseMaxExpiresAt);
  });

  it("inside the key's 7 days even when the lease would run longer", async () => {
    const now = Date.now();
    const req = await request(BASE_TARGET, { now, leaseExpiresAt: now + 8 * 86_400_000, leaseMaxExpiresAt: now + 9 * 86_400_000 });
    const grant = await provider.issue(req, provider.plan(req));
    expect(grant.expiresAt).toBe(floorS(now + 7 * 86_400_000 - 60_000));
    expect(fake.state.keys[0].signedExpiry).toBe(sasTime(new Date(grant.expiresAt)));
  });

  it('no time left before the hard end: ERR_CLOUD_LIMIT, nothing asked of Azure', async () => {
    const now = Date.now();
    const req = await request(BASE_TARGET, { now, leaseExpiresAt: now + 500, leaseMaxExpiresAt: now + 500 });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_LIMIT');
    expect(err.message).toContain("leaves no time for an Azure SAS");
    expect(fake.requests).toEqual([]);
  });
});

describe('renew', () => {
  it('a new key and new SAS from the renewed token, expiring at the renewed lease', async () => {
    const req = await request();
    const plan = provider.plan(req);
    const first = await provider.issue(req, plan);
    const renewedToken = await sign();
    const later = { ...req, token: renewedToken, now: req.now + 1000, leaseExpiresAt: req.leaseExpiresAt + 600_000 };
    const second = await provider.renew(later, plan, first);
    expect(fake.state.keys).toHaveLength(2);
    expect(fake.requests.filter((r) => r.endpoint === 'token').map((r) => r.form?.client_assertion)).toEqual([req.token, renewedToken]);
    expect(second.expiresAt).toBe(floorS(later.leaseExpiresAt));
    expect(sasOf(second).map((s) => params(s.token).se)).toEqual(sasOf(first).map(() => sasTime(new Date(second.expiresAt))));
    sasOf(second).forEach((s) => verifySas(s, fake.state.keys[1]));
    expect(sasOf(second)[0].token).not.toBe(sasOf(first)[0].token);
  });

  it('keeps the current grant when the hard end leaves no time', async () => {
    const req = await request();
    const plan = provider.plan(req);
    const first = await provider.issue(req, plan);
    fake.reset();
    const atEnd = { ...req, now: req.leaseMaxExpiresAt - 100 };
    expect(await provider.renew(atEnd, plan, first)).toBe(first);
    expect(fake.requests).toEqual([]);
  });
});

describe('teardown', () => {
  it('revoke without key revocation: nothing to call, relies on the SAS expiry', async () => {
    const req = await request();
    const plan = provider.plan(req);
    const grant = await provider.issue(req, plan);
    fake.reset();
    const res = await provider.teardown(plan, grant, 'revoke', Date.now());
    expect(res).toEqual({ detail: `Azure cannot revoke one user delegation SAS; relies on SAS expiry at ${grant.credential.expires_at}`, cleanupAt: null });
    expect(fake.requests).toEqual([]);
  });

  it('revoke with revoke_user_delegation_keys: ARM revokes every key of the account, and the detail says the blast radius', async () => {
    const other = await request(REVOKING_TARGET, { grantId: '0b5f2c1e-9d7a-4c1b-8f00-0000000000a2' });
    await provider.issue(other, provider.plan(other)); // another grant on the same account
    const req = await request(REVOKING_TARGET);
    const plan = provider.plan(req);
    const grant = await provider.issue(req, plan);
    expect(fake.state.keys.map((k) => k.revokedAt)).toEqual([null, null]);
    const before = fake.requests.length;
    const res = await provider.teardown(plan, grant, 'revoke', Date.now());
    const arm = fake.requests.slice(before);
    expect(arm.map((r) => [r.service, r.endpoint, r.method, r.status])).toEqual([['management', 'revoke', 'POST', 200]]);
    expect(arm[0].path).toBe(`/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/${ACCOUNT}/revokeUserDelegationKeys`);
    expect(arm[0].query).toEqual({ 'api-version': REVOKE_API_VERSION });
    expect(REVOKE_API_VERSION).toBe('2023-05-01');
    expect(arm[0].headers.authorization).toBe(`Bearer ${ARM_TOKEN}`);
    expect(armScopes).toEqual([['https://management.azure.com/.default']]);
    // Both grants' keys are gone: the blast radius is the whole account.
    expect(fake.state.keys.every((k) => k.revokedAt !== null)).toBe(true);
    expect(fake.state.revocations).toMatchObject([{ account: ACCOUNT, subscriptionId: SUB, resourceGroup: RG, apiVersion: '2023-05-01', keysRevoked: 2 }]);
    expect(res.cleanupAt).toBeNull();
    expect(res.detail).toBe(
      `revoked every user delegation key of storage account ${ACCOUNT} (subscription ${SUB}, resource group ${RG}): every user delegation SAS of that account stopped working, this grant's (else valid until ${grant.credential.expires_at}) and every other grant's and application's`,
    );
    // Idempotent: a second revoke succeeds too.
    expect((await provider.teardown(plan, grant, 'revoke', Date.now())).detail).toContain('revoked every user delegation key');
  });

  it('revoke after the SAS expired leaves the keys alone (no blast radius for nothing)', async () => {
    const req = await request(REVOKING_TARGET);
    const plan = provider.plan(req);
    const grant = await provider.issue(req, plan);
    fake.reset();
    const res = await provider.teardown(plan, grant, 'revoke', grant.expiresAt + 1);
    expect(res.detail).toBe(`the SAS already expired at ${grant.credential.expires_at}; the user delegation keys of ${ACCOUNT} were left alone`);
    expect(fake.requests).toEqual([]);
  });

  it('revoke of an account ARM no longer has (404) succeeds', async () => {
    const req = await request(REVOKING_TARGET);
    const plan = provider.plan(req);
    const grant = await provider.issue(req, plan);
    fake.state.accounts.length = 0;
    const res = await provider.teardown(plan, grant, 'revoke', Date.now());
    expect(res.detail).toBe(`storage account ${ACCOUNT} (subscription ${SUB}, resource group ${RG}) no longer exists in ARM: its SAS died with it`);
    expect(fake.requests.at(-1)?.status).toBe(404);
  });

  it('ARM refusing the broker (403) is ERR_CLOUD_DENIED; 503 ERR_CLOUD_UNAVAILABLE', async () => {
    const req = await request(REVOKING_TARGET);
    const plan = provider.plan(req);
    const grant = await provider.issue(req, plan);
    fake.failNext('revoke', 403, JSON.stringify({ error: { code: 'AuthorizationFailed', message: "The client does not have authorization to perform action 'Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action'." } }));
    const denied = await caught(provider.teardown(plan, grant, 'revoke', Date.now()));
    expect(denied.code).toBe('ERR_CLOUD_DENIED');
    expect(denied.message).toBe(
      "azure: ARM revokeUserDelegationKeys failed: HTTP 403: AuthorizationFailed: The client does not have authorization to perform action 'Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action'.",
    );
    fake.failNext('revoke', 503);
    const down = await caught(provider.teardown(plan, grant, 'revoke', Date.now()));
    expect(down.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(down.retryable).toBe(true);
    expect(fake.state.keys[0].revokedAt).toBeNull();
  });

  it('rollback of a half-finished issue (crash between the key and the registry write): a no-op from the plan alone, idempotent', async () => {
    const req = await request(REVOKING_TARGET);
    const plan = JSON.parse(JSON.stringify(provider.plan(req))) as AzurePlan; // as read back from the registry
    await provider.issue(req, plan); // the grant is lost with the crash
    fake.reset();
    const again = createAzureProvider({ authorityHost: fake.urls.login, blobEndpoint: fake.blobEndpoint, agent: fake.agent, maxRetries: 0 }); // after restart
    for (let i = 0; i < 2; i++) {
      const res = await again.teardown(plan, null, 'rollback', Date.now());
      expect(res).toEqual({
        detail: `nothing to undo in Azure for storage account ${ACCOUNT}: no object is created (a user delegation key cannot be deleted) and no SAS left the broker`,
        cleanupAt: null,
      });
    }
    expect(fake.requests).toEqual([]);
    expect(fake.state.revocations).toEqual([]);
  });
});

describe('Azure refusing or failing -> CloudError, never a secret in the message', () => {
  it('a subject no federated credential names: ERR_CLOUD_DENIED with Entra code, no key asked for', async () => {
    const req = await request(BASE_TARGET, { token: await sign({ sub: 'approle:intruder' }) });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      "azure: Entra token for the federated client assertion failed: Entra answered: invalid_client: AADSTS700213: No matching federated identity record found for presented assertion subject 'approle:intruder'.",
    );
    expect(err.message).not.toContain(req.token);
    expect(fake.requests.map((r) => r.endpoint)).toEqual(['openidConfiguration', 'token']);
  });

  it('a token for another audience: AADSTS700212', async () => {
    const req = await request(BASE_TARGET, { token: await sign({ aud: 'https://orders.example' }) });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toContain("AADSTS700212: No matching federated identity record found for presented assertion audience 'https://orders.example'.");
  });

  it('an ES256 assertion: Entra takes RSA only (AADSTS5002738)', async () => {
    const req = await request(BASE_TARGET, { token: await sign({ alg: 'ES256' }) });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toContain("AADSTS5002738: Invalid JWT token. 'ES256' is not a supported signature algorithm.");
  });

  it('an expired assertion: AADSTS700024', async () => {
    const req = await request(BASE_TARGET, { token: await sign({ expS: Math.floor(Date.now() / 1000) - 120 }) });
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.message).toContain('AADSTS700024: Client assertion is not within its valid time range.');
  });

  it('Entra unavailable (temporarily_unavailable, dropped connection, metadata down): ERR_CLOUD_UNAVAILABLE', async () => {
    const req = await request();
    fake.failNext('token', 503);
    const busy = await caught(provider.issue(req, provider.plan(req)));
    expect(busy.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(busy.message).toBe('azure: Entra token for the federated client assertion failed: Entra answered: temporarily_unavailable: AADSTS90033: fake failure');
    fake.failNext('token', 'drop');
    expect((await caught(provider.issue(req, provider.plan(req)))).code).toBe('ERR_CLOUD_UNAVAILABLE');
    const cold = providerWith(); // a new provider: MSAL fetches the authority metadata again
    fake.failNext('openidConfiguration', 503);
    const meta = await caught(cold.issue(req, cold.plan(req)));
    expect(meta.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(meta.message).toContain('endpoints_resolution_error');
  });

  it('an app without the delegator permission: 403 AuthorizationPermissionMismatch is ERR_CLOUD_DENIED', async () => {
    fake.addApp({ tenantId: TENANT, clientId: CLIENT, objectId: OID, federated: [{ issuer, subject: SUBJECT, audiences: [AUD] }], canDelegate: false });
    const req = await request();
    const err = await caught(provider.issue(req, provider.plan(req)));
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toBe('azure: Get User Delegation Key failed: HTTP 403: AuthorizationPermissionMismatch: This request is not authorized to perform this operation using this permission.');
    expect(fake.state.keys).toEqual([]);
  });

  it('Blob service busy (503) or gone (dropped): ERR_CLOUD_UNAVAILABLE', async () => {
    const req = await request();
    fake.failNext('userDelegationKey', 503);
    const busy = await caught(provider.issue(req, provider.plan(req)));
    expect(busy.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(busy.message).toBe('azure: Get User Delegation Key failed: HTTP 503: ServerBusy: fake failure');
    fake.failNext('userDelegationKey', 'drop');
    const dropped = await caught(provider.issue(req, provider.plan(req)));
    expect(dropped.code).toBe('ERR_CLOUD_UNAVAILABLE');
    expect(dropped.message).toMatch(/^azure: Get User Delegation Key failed: no answer: /);
  });

  it('the SDK retries what Azure answers 503 when maxRetries allows', async () => {
    const retrying = providerWith({ maxRetries: 1 });
    const req = await request(BASE_TARGET, { scopes: { read: ['azblob://tvmlogs01/logs/**'], write: [] } });
    fake.failNext('userDelegationKey', 500);
    const grant = await retrying.issue(req, retrying.plan(req));
    expect(fake.requests.filter((r) => r.endpoint === 'userDelegationKey').map((r) => r.status)).toEqual([500, 200]);
    verifySas(sasOf(grant)[0], fake.state.keys[0]);
  });
});

/** One request to the fake's blob data plane: status, error code, body. */
function blobCall(url: string, method = 'GET', body?: string): Promise<{ status: number; code: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'x-ms-version': SAS_VERSION };
    if (method === 'PUT') Object.assign(headers, { 'x-ms-blob-type': 'BlockBlob', 'content-length': String(Buffer.byteLength(body ?? '')) });
    const req = httpsRequest(url, { method, agent: fake.agent, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: res.headers['x-ms-error-code'] as string | undefined, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the SAS handed out, used on the data plane (the fake checks it as Blob Storage does)', () => {
  /** The grant's SAS by resource type, and URLs to a blob under each. */
  async function issued(target: Record<string, unknown> = BASE_TARGET) {
    const req = await request(target);
    const grant = await provider.issue(req, provider.plan(req));
    const [container, directory, blob] = sasOf(grant);
    const base = `${fake.urls.blob}/${ACCOUNT}`;
    return { grant, container, directory, blob, base, at: (path: string, token: string) => `${base}/${path}?${token}` };
  }
  const edit = (token: string, field: string, value: string) => {
    const q = new URLSearchParams(token);
    q.set(field, value);
    return q.toString();
  };

  it('each SAS does what its permissions say on its own resource', async () => {
    const { container, directory, blob, at } = await issued();
    fake.putBlob(ACCOUNT, 'lake', 'raw/2026/03/a.json', '{"a":1}');
    fake.putBlob(ACCOUNT, 'logs', 'app/1.log', 'line');
    expect(await blobCall(at('lake/raw/2026/03/a.json', directory.token))).toMatchObject({ status: 200, body: '{"a":1}' });
    expect(await blobCall(at('logs/app/1.log', container.token))).toMatchObject({ status: 200, body: 'line' });
    const listed = await blobCall(at('logs', `restype=container&comp=list&${container.token}`));
    expect(listed.status).toBe(200);
    expect(listed.body).toContain('<Name>app/1.log</Name>');
    expect((await blobCall(at('outbox/batch-7.json', blob.token), 'PUT', 'x')).status).toBe(201);
    expect((await blobCall(at('outbox/batch-7.json', blob.token), 'PUT', 'y')).status).toBe(201);
    expect(fake.state.blobs.get(`${ACCOUNT}/outbox/batch-7.json`)?.toString()).toBe('y');
    expect((await blobCall(at('outbox/batch-7.json', blob.token), 'DELETE')).status).toBe(202);
  });

  it('a permission the SAS lacks: 403 AuthorizationPermissionMismatch', async () => {
    const { directory, blob, at } = await issued();
    fake.putBlob(ACCOUNT, 'outbox', 'batch-7.json', 'x');
    // The directory SAS reads and lists (rl): no write, no delete.
    expect(await blobCall(at('lake/raw/2026/03/b.json', directory.token), 'PUT', 'x')).toMatchObject({ status: 403, code: 'AuthorizationPermissionMismatch' });
    expect(await blobCall(at('lake/raw/2026/03/b.json', directory.token), 'DELETE')).toMatchObject({ status: 403, code: 'AuthorizationPermissionMismatch' });
    // The blob SAS writes (acwd): no read.
    expect(await blobCall(at('outbox/batch-7.json', blob.token))).toMatchObject({ status: 403, code: 'AuthorizationPermissionMismatch' });
    expect(fake.state.blobs.has(`${ACCOUNT}/lake/raw/2026/03/b.json`)).toBe(false);
  });

  it('a directory SAS with a wrong sdd, or on a blob outside its directory: 403 AuthenticationFailed', async () => {
    const { directory, at } = await issued();
    expect(new URLSearchParams(directory.token).get('sdd')).toBe('2');
    fake.putBlob(ACCOUNT, 'lake', 'raw/2026/03/a.json', 'in');
    fake.putBlob(ACCOUNT, 'lake', 'raw/2025/a.json', 'out');
    for (const sdd of ['1', '3', '0', 'x']) {
      const r = await blobCall(at('lake/raw/2026/03/a.json', edit(directory.token, 'sdd', sdd)));
      expect([sdd, r.status, r.code]).toEqual([sdd, 403, 'AuthenticationFailed']);
    }
    const r = await blobCall(at('lake/raw/2026/03/a.json', new URLSearchParams([...new URLSearchParams(directory.token)].filter(([k]) => k !== 'sdd')).toString()));
    expect([r.status, r.code]).toEqual([403, 'AuthenticationFailed']);
    expect(await blobCall(at('lake/raw/2025/a.json', directory.token))).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
    // A sibling whose name merely starts like the directory's.
    expect(await blobCall(at('lake/raw/20261/a.json', directory.token))).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
    expect(await blobCall(at('other/raw/2026/03/a.json', directory.token))).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
  });

  it('a blob SAS on another blob, a container SAS on another container: 403 AuthenticationFailed', async () => {
    const { container, blob, at } = await issued();
    expect(await blobCall(at('outbox/batch-8.json', blob.token), 'PUT', 'x')).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
    expect(await blobCall(at('lake/app/1.log', container.token))).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
    expect(fake.state.blobs.size).toBe(0);
  });

  it('any signed field changed (permissions, times, key fields, protocol, resource type): 403 AuthenticationFailed', async () => {
    const { directory, at } = await issued();
    fake.putBlob(ACCOUNT, 'lake', 'raw/2026/03/a.json', 'in');
    const q = Object.fromEntries(new URLSearchParams(directory.token));
    const later = new Date(Date.parse(q.se) + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    for (const [field, value] of [
      ['sp', 'rwl'],
      ['sp', 'r'],
      ['se', later],
      ['st', q.skt.replace(/:\d\dZ$/, ':59Z')],
      ['skoid', '00000000-0000-4000-8000-000000000000'],
      ['ske', later],
      ['spr', 'https,http'],
      ['sr', 'c'],
      ['sig', Buffer.alloc(32, 1).toString('base64')],
    ]) {
      const r = await blobCall(at('lake/raw/2026/03/a.json', edit(directory.token, field, value)));
      expect([field, r.status, r.code]).toEqual([field, 403, 'AuthenticationFailed']);
    }
    const mismatch = await blobCall(at('lake/raw/2026/03/a.json', edit(directory.token, 'sp', 'rwl')));
    expect(mismatch.body).toContain('<AuthenticationErrorDetail>Signature did not match.');
    expect(mismatch.body).not.toContain(fake.state.keys[0].value);
    expect((await blobCall(at('lake/raw/2026/03/a.json', directory.token))).status).toBe(200);
  });

  it('an expired SAS, a SAS not yet valid, a revoked key: 403 AuthenticationFailed', async () => {
    const { directory, at, grant } = await issued(REVOKING_TARGET);
    fake.putBlob(ACCOUNT, 'lake', 'raw/2026/03/a.json', 'in');
    const url = at('lake/raw/2026/03/a.json', directory.token);
    fakeClockOffsetMs = grant.expiresAt - Date.now() + 1000;
    expect(await blobCall(url)).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
    fakeClockOffsetMs = -START_SKEW_MS - 60_000;
    expect(await blobCall(url)).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
    fakeClockOffsetMs = 0;
    expect((await blobCall(url)).status).toBe(200);
    await provider.teardown(provider.plan(await request(REVOKING_TARGET)), grant, 'revoke', Date.now());
    const revoked = await blobCall(url);
    expect(revoked).toMatchObject({ status: 403, code: 'AuthenticationFailed' });
    expect(revoked.body).toContain('The user delegation key was revoked.');
  });

  it('without a SAS: 401 NoAuthenticationInformation', async () => {
    fake.putBlob(ACCOUNT, 'logs', 'app/1.log', 'line');
    expect(await blobCall(`${fake.urls.blob}/${ACCOUNT}/logs/app/1.log`)).toMatchObject({ status: 401, code: 'NoAuthenticationInformation' });
  });
});
