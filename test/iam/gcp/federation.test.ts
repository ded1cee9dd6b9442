// End to end: the dev server issues the tvm token, the GCP fake verifies it as
// workload identity federation would (the issuer's discovery document, its
// JWKS, alg, iss, aud, iat/exp, sub), and the provider exchanges it.
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type VaultConnection } from '../../../src/client/index.ts';
import { CloudError } from '../../../src/iam/errors.ts';
import { accessBoundaryFor, gcpModule } from '../../../src/iam/gcp/module.ts';
import { createGcpProvider } from '../../../src/iam/gcp/provider.ts';
import type { CloudProvider, GrantRequest } from '../../../src/iam/types.ts';
import type { GcpTarget } from '../../../src/iam/gcp/target.ts';
import { startServer } from '../../../src/server/index.ts';
import { startGcpFake, type GcpFake } from '../fakes/gcp.ts';

const PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/tvm-pool/providers/tvm-oidc';
const AUDIENCE = `https:${PROVIDER}`;
const OTHER = 'https://orders.example';
const ROLE = { read: ['gs://logs/app/**'], write: ['gs://out/batch/**'], audiences: [AUDIENCE, OTHER], ttl: '5m', max_ttl: '1h' };

let server: Awaited<ReturnType<typeof startServer>>;
let conn: VaultConnection;
let fake: GcpFake;
let provider: CloudProvider<GcpTarget>;
let issuer: string;

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  conn = connect({ addr: server.address, token: server.rootToken, env: {} });
  issuer = `${server.address}/v1/tvm`;
  await conn.write('tvm/roles/gcs', { ...ROLE, iam: { gcp: { workload_identity_provider: PROVIDER } } });
  fake = await startGcpFake({ verify: { issuer } });
  provider = createGcpProvider({ stsEndpoint: fake.url, iamCredentialsEndpoint: fake.url });
});

afterAll(async () => {
  await fake?.close();
  await server?.close();
});

async function creds(audience: string[]): Promise<{ token: string; leaseS: number }> {
  const res = await conn.write('tvm/creds/gcs', { audience });
  return { token: res?.data?.token as string, leaseS: res?.lease_duration as number };
}

async function request(token: string, leaseS: number): Promise<GrantRequest<GcpTarget>> {
  const now = Date.now();
  const claims = decodeJwt(token);
  return {
    grantId: '0b5f2c1e-9d7a-4c1b-8f00-000000000043',
    jti: String(claims.jti),
    token,
    subject: String(claims.sub),
    role: 'gcs',
    scopes: { read: ROLE.read, write: ROLE.write },
    target: gcpModule.parseTarget({ workload_identity_provider: PROVIDER }, 'iam.gcp'),
    now,
    leaseExpiresAt: now + leaseS * 1000,
    leaseMaxExpiresAt: now + 3_600_000,
  };
}

describe('tvm token -> GCP STS, verified against the dev server issuer', () => {
  it('the role carries the provider audience, so GCP accepts its token', async () => {
    gcpModule.checkRole(gcpModule.parseTarget({ workload_identity_provider: PROVIDER }, 'iam.gcp'), { ...ROLE, maxTtlS: 3600 }, 'iam.gcp');
    const { token, leaseS } = await creds([AUDIENCE]);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: expect.any(String) });
    expect(decodeJwt(token)).toMatchObject({ iss: issuer, aud: AUDIENCE });
    const req = await request(token, leaseS);
    fake.reset();
    const grant = await provider.issue(req, provider.plan(req));
    expect(fake.requests.map((r) => [r.endpoint, r.status])).toEqual([['sts', 200]]);
    expect(fake.requests[0].options).toEqual(accessBoundaryFor(req.scopes));
    const minted = fake.state.tokens[0];
    expect(minted).toMatchObject({ kind: 'federated', subject: req.subject });
    expect(grant.credential.access_token).toBe(minted.access_token);
    // The federated token expires with the tvm token (its exp), inside the lease.
    expect(grant.expiresAt).toBeLessThanOrEqual(Number(decodeJwt(token).exp) * 1000 + 1000);
    expect(grant.expiresAt).toBeLessThanOrEqual(req.leaseMaxExpiresAt);
  });

  it('a token for another audience is refused by GCP: ERR_CLOUD_DENIED naming the aud claim', async () => {
    const { token, leaseS } = await creds([OTHER]);
    const req = await request(token, leaseS);
    fake.reset();
    const err = await provider.issue(req, provider.plan(req)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudError);
    expect((err as CloudError).code).toBe('ERR_CLOUD_DENIED');
    expect((err as CloudError).message).toMatch(/^gcp: token exchange failed: HTTP 400: invalid_grant: The JWT failed verification: unexpected "aud" claim value$/);
    expect(fake.state.tokens).toEqual([]);
  });

  it('a token signed by another key is refused (signature checked against the issuer JWKS)', async () => {
    const { token, leaseS } = await creds([AUDIENCE]);
    const [h, p] = token.split('.');
    const forged = `${h}.${p}.${Buffer.alloc(64, 7).toString('base64url')}`;
    const req = await request(forged, leaseS);
    const err = (await provider.issue(req, provider.plan(req)).catch((e: unknown) => e)) as CloudError;
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toContain('signature verification failed');
    expect(err.message).not.toContain(p);
  });

  /**
   * Issues a token signed with `alg` (mount config), restoring ES256 after. The
   * engine refuses EdDSA while a role maps a federating GCP target, so for
   * EdDSA the role is unmapped for the while (its token is still presented to
   * the fake, to show what GCP itself answers).
   */
  async function signedWith(alg: string): Promise<GrantRequest<GcpTarget>> {
    const unmap = alg === 'EdDSA';
    if (unmap) {
      await expect(conn.write('tvm/config', { signing_algorithm: alg })).rejects.toThrow('invalid signing_algorithm: role "gcs" maps gcp');
      await conn.write('tvm/roles/gcs', { iam: {} });
    }
    await conn.write('tvm/config', { signing_algorithm: alg });
    try {
      const { token, leaseS } = await creds([AUDIENCE]);
      expect(decodeProtectedHeader(token).alg).toBe(alg);
      return await request(token, leaseS);
    } finally {
      await conn.write('tvm/config', { signing_algorithm: 'ES256' });
      if (unmap) await conn.write('tvm/roles/gcs', { iam: { gcp: { workload_identity_provider: PROVIDER } } });
    }
  }

  it('an EdDSA-signed token is refused: GCP federation takes RS256 or ES256 only', async () => {
    const req = await signedWith('EdDSA');
    const err = (await provider.issue(req, provider.plan(req)).catch((e: unknown) => e)) as CloudError;
    expect(err.code).toBe('ERR_CLOUD_DENIED');
    expect(err.message).toBe('gcp: token exchange failed: HTTP 400: invalid_grant: Unsupported JWT alg EdDSA; RS256 or ES256.');
  });

  it('RS256 tokens are accepted too (the JWKS keeps the RS256 key while its tokens live)', async () => {
    const req = await signedWith('RS256');
    const grant = await provider.issue(req, provider.plan(req));
    expect(grant.credential.token_type).toBe('Bearer');
  });
});
