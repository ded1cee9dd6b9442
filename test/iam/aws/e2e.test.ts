// The tvm token as AWS's web identity, end to end: the dev server issues it,
// the provider presents it to the STS fake, and the fake verifies it the way
// AssumeRoleWithWebIdentity does (an OIDC provider for the issuer, discovery,
// JWKS signature with an RSA or EC algorithm, aud among the client ids, exp, sub).
//
// One difference AWS would not forgive: the dev server's issuer is
// http://127.0.0.1:<port>/v1/tvm, and AWS's IAM OIDC providers take only an
// https:// issuer URL (and fetch discovery and JWKS over TLS). A real
// deployment sets the mount's issuer to a public https URL serving the same
// two documents; the fake accepts http so the rest of the check can run here.

import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type VaultConnection } from '../../../src/client/index.ts';
import { CloudError } from '../../../src/iam/errors.ts';
import type { AwsTarget } from '../../../src/iam/aws/module.ts';
import { createAwsProvider } from '../../../src/iam/aws/provider.ts';
import type { GrantRequest } from '../../../src/iam/types.ts';
import { startServer } from '../../../src/server/index.ts';
import { FAKE_BROKER_KEYS, startAwsFake, type AwsFake } from '../fakes/aws.ts';

const ROLE_ARN = 'arn:aws:iam::123456789012:role/log-reader';

let server: Awaited<ReturnType<typeof startServer>>;
let conn: VaultConnection;
let issuer: string;
let fake: AwsFake | null = null;
let clock: number | null = null;

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  conn = connect({ addr: server.address, token: server.rootToken, env: {} });
  await conn.write('tvm/roles/logs', { read: ['s3://logs/app/**'], audiences: ['sts.amazonaws.com'], ttl: '20m', max_ttl: '1h' });
  await conn.write('tvm/roles/vault-only', { read: ['s3://logs/app/**'], audiences: ['vault'], ttl: '20m', max_ttl: '1h' });
  const discovery = (await (await fetch(`${server.address}/v1/tvm/.well-known/openid-configuration`)).json()) as { issuer: string };
  issuer = discovery.issuer;
});

afterAll(async () => {
  await server.close();
});

afterEach(async () => {
  await fake?.close();
  fake = null;
  clock = null;
});

async function awsFake(oidcIssuer = issuer): Promise<AwsFake> {
  fake = await startAwsFake({ oidc: { issuer: oidcIssuer, clientIds: ['sts.amazonaws.com'] }, now: () => clock ?? Date.now() });
  fake.addRole(ROLE_ARN, { trustedSubjects: ['root'] });
  return fake;
}

async function creds(role = 'logs'): Promise<{ token: string; jti: string; expiresAt: number }> {
  const res = await conn.read(`tvm/creds/${role}`);
  const data = res?.data as { token: string; jti: string; expires_at: string };
  return { token: data.token, jti: data.jti, expiresAt: Date.parse(data.expires_at) };
}

async function exchange(f: AwsFake, token: { token: string; jti: string }) {
  const provider = createAwsProvider({ stsEndpoint: f.url, iamEndpoint: f.url, credentials: FAKE_BROKER_KEYS, maxAttempts: 1 });
  const now = Date.now();
  const req: GrantRequest<AwsTarget> = {
    grantId: 'e2e00000-0000-4000-8000-000000000001',
    jti: token.jti,
    token: token.token,
    subject: 'root',
    role: 'logs',
    scopes: { read: ['s3://logs/app/**'], write: [] },
    target: provider.module.parseTarget({ role_arn: ROLE_ARN }, 'iam.aws'),
    now,
    leaseExpiresAt: now + 20 * 60_000,
    leaseMaxExpiresAt: now + 3600_000,
  };
  return provider.issue(req, provider.plan(req));
}

async function denied(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CloudError);
  expect((err as CloudError).code).toBe('ERR_CLOUD_DENIED');
  return (err as CloudError).message;
}

describe('the tvm token as an AWS web identity', () => {
  it('discovery names what AWS reads: issuer, jwks_uri, an RSA or EC algorithm (but over http://)', async () => {
    const doc = (await (await fetch(`${server.address}/v1/tvm/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(doc.issuer).toBe(`${server.address}/v1/tvm`);
    expect(doc.jwks_uri).toBe(`${issuer}/.well-known/jwks.json`);
    expect(doc.id_token_signing_alg_values_supported).toEqual(['ES256']);
    expect(doc.response_types_supported).toContain('id_token');
    expect(doc.subject_types_supported).toContain('public');
    expect(issuer.startsWith('http://')).toBe(true); // AWS requires https://: see the note at the top
  });

  it('ES256 (the default): STS accepts it, checking issuer, aud, exp, sub and the signature', async () => {
    const f = await awsFake();
    const token = await creds();
    const grant = await exchange(f, token);
    expect(f.state.sessions).toHaveLength(1);
    expect(f.state.sessions[0]).toMatchObject({ verified: true, alg: 'ES256', issuer, audience: 'sts.amazonaws.com', subject: 'root' });
    expect(f.requests[0].params.WebIdentityToken).toBe(token.token);
    expect(grant.credential.env.AWS_ACCESS_KEY_ID).toBe(f.state.sessions[0].accessKeyId);
    // The credential handed out is a live one: signed with it, STS knows the assumed role.
    const env = grant.credential.env;
    const workload = new STSClient({
      region: 'us-east-1',
      endpoint: f.url,
      maxAttempts: 1,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN },
    });
    const who = await workload.send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe(`arn:aws:sts::123456789012:assumed-role/log-reader/tvm-e2e00000-0000-4000-8000-000000000001`);
  });

  it('an expired token is refused (ExpiredToken)', async () => {
    const f = await awsFake();
    const token = await creds();
    clock = token.expiresAt + 1000;
    expect(await denied(exchange(f, token))).toContain('ExpiredToken');
    expect(f.state.sessions).toEqual([]);
  });

  it('a token for another audience is refused', async () => {
    const f = await awsFake();
    expect(await denied(exchange(f, await creds('vault-only')))).toContain('Incorrect token audience');
  });

  it('a token of an issuer with no OIDC provider in the account is refused', async () => {
    const f = await awsFake('https://elsewhere.example/v1/tvm');
    expect(await denied(exchange(f, await creds()))).toContain('No OpenIDConnect provider found');
  });

  it("a subject the role's trust policy does not name is refused", async () => {
    const f = await awsFake();
    f.addRole(ROLE_ARN, { trustedSubjects: ['approle:other'] });
    expect(await denied(exchange(f, await creds()))).toContain('AccessDenied (HTTP 403)');
  });

  it('a tampered token is refused', async () => {
    const f = await awsFake();
    const token = await creds();
    const [h, p, s] = token.token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url');
    expect(await denied(exchange(f, { ...token, token: `${h}.${forged}.${s}` }))).toContain('InvalidIdentityToken');
  });

  it('RS256 is accepted too; EdDSA is not (AWS takes RSA and EC keys only)', async () => {
    await conn.write('tvm/config', { signing_algorithm: 'RS256' });
    try {
      const f = await awsFake();
      await exchange(f, await creds());
      expect(f.state.sessions[0]).toMatchObject({ verified: true, alg: 'RS256', subject: 'root' });
      await f.close();

      await conn.write('tvm/config', { signing_algorithm: 'EdDSA' });
      const g = await awsFake();
      expect(await denied(exchange(g, await creds()))).toContain('Unsupported token signing algorithm EdDSA');
    } finally {
      await conn.write('tvm/config', { signing_algorithm: 'ES256' });
    }
  });
});
