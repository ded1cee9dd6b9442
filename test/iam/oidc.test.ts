// The issuer tvm publishes (discovery document + JWKS, served by the engine
// through the dev server) checked against each cloud's stated federation
// requirements, offline.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type VaultConnection } from '../../src/client/index.ts';
import { issuerProblems, type IssuerDocuments } from '../../src/iam/oidc.ts';
import { startServer } from '../../src/server/index.ts';

let server: Awaited<ReturnType<typeof startServer>>;
let conn: VaultConnection;

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  conn = connect({ addr: server.address, token: server.rootToken, env: {} });
});
afterAll(() => server.close());

async function documents(): Promise<IssuerDocuments> {
  const config = (await conn.read('tvm/config'))!.data as Record<string, unknown>;
  const discovery = (await (await fetch(`${server.address}/v1/tvm/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  // The discovery document names the JWKS by the public issuer; fetch the same path from the dev server.
  const jwksPath = new URL(discovery.jwks_uri as string).pathname;
  const jwks = (await (await fetch(`${server.address}${jwksPath}`)).json()) as IssuerDocuments['jwks'];
  return { issuer: config.issuer as string, discovery, jwks, signingAlgorithm: config.signing_algorithm as string };
}

describe('issuer checks against cloud federation requirements', () => {
  it('the dev server issuer is http on loopback: every federating cloud would refuse it, and says why', async () => {
    const docs = await documents();
    expect(docs.issuer).toBe(`${server.address}/v1/tvm`);
    for (const cloud of ['aws', 'gcp', 'azure'] as const) {
      const problems = issuerProblems(cloud, docs).map((p) => p.problem);
      expect(problems).toContain(`issuer ${JSON.stringify(docs.issuer)} is not https: clouds fetch discovery and keys over https only (a loopback dev server: fine for tests, never reachable by a cloud)`);
    }
    expect(issuerProblems('kubernetes', docs)).toEqual([]);
  });

  it('an https issuer signing RS256 meets AWS, GCP and Azure', async () => {
    await conn.write('tvm/config', { issuer: 'https://tvm.example.com/v1/tvm', signing_algorithm: 'RS256' });
    const docs = await documents();
    expect(docs.discovery).toMatchObject({
      issuer: 'https://tvm.example.com/v1/tvm',
      jwks_uri: 'https://tvm.example.com/v1/tvm/.well-known/jwks.json',
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
    });
    const rsa = docs.jwks.keys!.find((k) => k.alg === 'RS256')!;
    expect(rsa).toMatchObject({ kty: 'RSA', use: 'sig' });
    expect(Buffer.from(rsa.n as string, 'base64url').length * 8).toBe(2048);
    for (const cloud of ['aws', 'gcp', 'azure'] as const) expect(issuerProblems(cloud, docs)).toEqual([]);
  });

  it('ES256 suits AWS and GCP, not Azure; EdDSA suits none of them', async () => {
    await conn.write('tvm/config', { signing_algorithm: 'ES256' });
    let docs = await documents();
    expect(issuerProblems('aws', docs)).toEqual([]);
    expect(issuerProblems('gcp', docs)).toEqual([]);
    expect(issuerProblems('azure', docs)).toEqual([{ cloud: 'azure', problem: 'tokens are signed with ES256; azure accepts RS256' }]);

    await conn.write('tvm/config', { signing_algorithm: 'EdDSA' });
    docs = await documents();
    expect(issuerProblems('aws', docs).map((p) => p.problem)).toEqual([
      'tokens are signed with EdDSA; aws accepts RS256, RS384, RS512, ES256, ES384, ES512',
    ]);
    expect(issuerProblems('gcp', docs).map((p) => p.problem)).toEqual(['tokens are signed with EdDSA; gcp accepts RS256, ES256']);
  });

  it('names each defect of a broken document', () => {
    const problems = issuerProblems('aws', {
      issuer: 'https://a.example/v1/tvm',
      discovery: { issuer: 'https://b.example/v1/tvm', jwks_uri: 'http://a.example/jwks', id_token_signing_alg_values_supported: ['RS256'] },
      jwks: { keys: [{ kty: 'RSA', alg: 'RS256', use: 'enc', n: Buffer.alloc(128, 1).toString('base64url'), e: 'AQAB', d: 'x' }] },
      signingAlgorithm: 'RS256',
    }).map((p) => p.problem);
    expect(problems).toEqual([
      'discovery issuer "https://b.example/v1/tvm" differs from the tokens\' iss "https://a.example/v1/tvm"',
      'jwks_uri "http://a.example/jwks" is not https: clouds fetch discovery and keys over https only',
      'discovery response_types_supported is missing (OpenID Connect Discovery requires it)',
      'discovery subject_types_supported is missing (OpenID Connect Discovery requires it)',
      'JWKS key 0 has no kid (tokens name their key by kid)',
      'JWKS key 0 has use "enc", not "sig"',
      'JWKS key 0 carries private key material',
      'JWKS key 0 is an RSA key shorter than 2048 bits',
    ]);
  });
});
