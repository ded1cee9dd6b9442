// The JWT auth method through Vault's HTTP API: config (a JWKS URL served by a
// loopback test issuer, PEM public keys, OIDC discovery), roles written the way
// the Terraform provider writes them, login with tokens signed by the test
// issuer, vending as the workload, and every kind of bad token refused with a
// 400 (or 403) naming the problem, never echoing the token.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { exportJWK, exportSPKI, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimsOf, startHarness, type Answer, type Harness } from './auth-helpers.ts';
import { keyPair } from '../keys.ts';

const SA = 'system:serviceaccount:logging:log-shipper';

interface Issuer {
  url: string;
  key: KeyObject;
  kid: string;
  /** Keys published in the JWKS (replaceable). */
  jwks: { keys: JWK[] };
  server: Server;
}

let h: Harness;
let issuer: Issuer;
/** Signs with a key the JWKS does not publish. */
let stranger: { key: KeyObject; kid: string };
let rsa: { privateKey: KeyObject; pem: string };

async function startIssuer(): Promise<Issuer> {
  const { publicKey, privateKey } = keyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'issuer-key-1', alg: 'ES256', use: 'sig' };
  const jwks = { keys: [jwk] };
  const server = createServer((req, res) => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === '/jwks.json') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(jwks));
    } else if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/jwks.json` }));
    } else if (req.url === '/not-a-jwks') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"hello":"world"}');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, key: privateKey, kid: 'issuer-key-1', jwks, server };
}

const now = (): number => Math.floor(h.now() / 1000);

async function sign(
  claims: Record<string, unknown> = {},
  opts: { key?: KeyObject; kid?: string | null; alg?: string } = {},
): Promise<string> {
  const iat = now();
  const header: Record<string, unknown> = { alg: opts.alg ?? 'ES256', typ: 'JWT' };
  const kid = opts.kid === undefined ? issuer.kid : opts.kid;
  if (kid !== null) header.kid = kid;
  return new SignJWT({ iss: issuer.url, sub: SA, aud: ['vault'], iat, nbf: iat, exp: iat + 600, ns: 'logging', ...claims })
    .setProtectedHeader(header as { alg: string })
    .sign(opts.key ?? issuer.key);
}

function unsigned(claims: Record<string, unknown>): string {
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
}

const login = (jwt: string, role = 'log-shipper', mount = 'jwt'): Promise<Answer> =>
  h.call('POST', `auth/${mount}/login`, { role, jwt }, null);

async function refused(jwt: string, status: number, message: RegExp | string, role = 'log-shipper'): Promise<void> {
  const r = await login(jwt, role);
  expect(r.status, r.text).toBe(status);
  if (typeof message === 'string') expect(r.body.errors).toEqual([message]);
  else expect(r.body.errors![0]).toMatch(message);
  expect(r.text).not.toContain(jwt);
}

/** The role as vault_jwt_auth_backend_role writes it. */
function providerRole(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    token_policies: ['log-shipper'],
    token_type: 'default',
    token_ttl: 900,
    bound_audiences: ['vault'],
    user_claim: 'sub',
    user_claim_json_pointer: false,
    role_type: 'jwt',
    bound_subject: SA,
    bound_claims: { ns: ['logging'] },
    clock_skew_leeway: 0,
    expiration_leeway: 0,
    not_before_leeway: 0,
    verbose_oidc_logging: false,
    ...overrides,
  };
}

beforeAll(async () => {
  h = await startHarness();
  issuer = await startIssuer();
  const other = keyPair('ES256');
  stranger = { key: other.privateKey, kid: 'someone-else' };
  const r = keyPair('RS256');
  rsa = { privateKey: r.privateKey, pem: await exportSPKI(r.publicKey) };

  expect((await h.call('POST', 'sys/auth/jwt', { type: 'jwt' })).status).toBe(204);
  const cfg = await h.call('POST', 'auth/jwt/config', { jwks_url: `${issuer.url}/jwks.json`, bound_issuer: issuer.url });
  expect(cfg.status, cfg.text).toBe(204);
  const role = await h.call('POST', 'auth/jwt/role/log-shipper', providerRole());
  expect(role.status, role.text).toBe(204);
  await h.call('POST', 'tvm/roles/logs-ro', { read: ['s3://logs/app/**'], ttl: '5m' });
  await h.call('POST', 'tvm/roles/orders-rw', { read: ['db://orders/*'], ttl: '5m' });
  await h.call('POST', 'sys/policies/acl/log-shipper', { policy: 'path "tvm/creds/logs-ro" { capabilities = ["read", "update"] }' });
});

afterAll(async () => {
  await h?.close();
  await new Promise<void>((r) => (issuer ? issuer.server.close(() => r()) : r()));
});

describe('config', () => {
  it('reads back every field Vault shows, and never a client secret', async () => {
    const r = await h.call('GET', 'auth/jwt/config');
    expect(r.body.data).toEqual({
      oidc_discovery_url: '',
      oidc_discovery_ca_pem: '',
      oidc_client_id: '',
      oidc_response_mode: '',
      oidc_response_types: [],
      jwks_url: `${issuer.url}/jwks.json`,
      jwks_ca_pem: '',
      jwks_pairs: [],
      default_role: '',
      jwt_validation_pubkeys: [],
      jwt_supported_algs: [],
      bound_issuer: issuer.url,
      provider_config: {},
      namespace_in_state: true,
      unsupported_critical_cert_extensions: [],
    });
  });

  it('refuses configs that name no key source, two of them, or ones that do not work', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await h.call('POST', 'sys/auth/jwt-bad', { type: 'jwt' });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ bound_issuer: 'x' }, /^exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set$/],
      [{ jwks_url: `${issuer.url}/jwks.json`, jwt_validation_pubkeys: [rsa.pem] }, /^exactly one of/],
      [{ jwt_validation_pubkeys: ['-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----'] }, /^invalid jwt_validation_pubkeys\[0\]: error parsing public key/],
      [{ jwks_url: `http://127.0.0.1:${deadPort}/jwks.json` }, new RegExp(`^invalid jwks_url: error checking jwks URL http://127.0.0.1:${deadPort}/jwks.json: ECONNREFUSED$`)],
      [{ jwks_url: `${issuer.url}/missing` }, /answered HTTP 404/],
      [{ jwks_url: `${issuer.url}/not-a-jwks` }, /the document has no "keys" list/],
      [{ jwks_url: 'not a url' }, /^invalid jwks_url: "not a url" is not a URL/],
      [{ jwks_url: `${issuer.url}/jwks.json`, jwt_supported_algs: ['HS256'] }, /^invalid jwt_supported_algs: unsupported signing algorithm "HS256"/],
      [{ jwks_url: `${issuer.url}/jwks.json`, oidc_client_id: 'app', oidc_client_secret: 's' }, /the OIDC browser flow\) are not supported/],
      [{ jwks_url: `${issuer.url}/jwks.json`, jwks_ca_pem: 'x' }, /NODE_EXTRA_CA_CERTS/],
      [{ jwks_pairs: [{ jwks_url: 'x' }] }, /^invalid jwks_pairs: not supported/],
    ];
    for (const [body, message] of cases) {
      const r = await h.call('POST', 'auth/jwt-bad/config', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors![0]).toMatch(message);
    }
    expect((await h.call('GET', 'auth/jwt-bad/config')).status).toBe(404);
    const noConfig = await h.call('POST', 'auth/jwt-bad/role/r', providerRole());
    expect(noConfig.status).toBe(204);
    expect((await login(await sign(), 'r', 'jwt-bad')).body.errors![0]).toMatch(/^could not load configuration/);
  });
});

describe('roles', () => {
  it('reads a role back with the types the Terraform provider expects', async () => {
    const r = await h.call('GET', 'auth/jwt/role/log-shipper');
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({
      role_type: 'jwt',
      expiration_leeway: 0,
      not_before_leeway: 0,
      clock_skew_leeway: 0,
      bound_audiences: ['vault'],
      bound_subject: SA,
      bound_claims_type: 'string',
      bound_claims: { ns: ['logging'] },
      claim_mappings: null,
      user_claim: 'sub',
      user_claim_json_pointer: false,
      groups_claim: '',
      allowed_redirect_uris: null, // unset, as Vault and OpenBao answer it
      oidc_scopes: null,
      verbose_oidc_logging: false,
      max_age: 0,
      token_bound_cidrs: [],
      token_explicit_max_ttl: 0,
      token_max_ttl: 0,
      token_no_default_policy: false,
      token_num_uses: 0,
      token_period: 0,
      token_policies: ['log-shipper'],
      token_ttl: 900,
      token_type: 'default',
      alias_metadata: {},
    });
    expect((await h.call('LIST', 'auth/jwt/role')).body.data).toEqual({ keys: ['log-shipper'] });
  });

  it('refuses roles it cannot serve or that bind nothing, naming the field', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [providerRole({ role_type: undefined }), /^invalid role_type: missing: Vault defaults to "oidc".*set role_type to "jwt"/],
      [providerRole({ role_type: 'oidc' }), /^invalid role_type: "oidc" \(the browser flow\) is not supported/],
      [providerRole({ role_type: 'kubernetes' }), /^invalid role_type: "kubernetes" is not a role type/],
      [providerRole({ user_claim: '' }), /^invalid user_claim: a user claim must be defined on the role/],
      [
        providerRole({ bound_audiences: [], bound_subject: '', bound_claims: {} }),
        /^must have at least one bound constraint when creating\/updating a role/,
      ],
      [providerRole({ bound_claims_type: 'regex' }), /^invalid bound_claims_type: "regex" is not "string" or "glob"/],
      [providerRole({ bound_claims: { ns: [{ deep: 1 }] } }), /^invalid bound_claims.ns: \{"deep":1\} is not a string/],
      [providerRole({ claim_mappings: { email: 'role' } }), /^invalid claim_mappings: metadata key "role" is reserved/],
      [providerRole({ clock_skew_leeway: 'soon' }), /^invalid clock_skew_leeway/],
    ];
    for (const [body, message] of cases) {
      const r = await h.call('POST', 'auth/jwt/role/bad', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors![0]).toMatch(message);
    }
    expect((await h.call('GET', 'auth/jwt/role/bad')).status).toBe(404);
  });
});

describe('help', () => {
  it("answers a path's help from its route declarations", async () => {
    const role = await h.call('GET', 'auth/jwt/role/x?help=1');
    expect(role.status).toBe(200);
    expect(role.body.help).toMatch(/^Defines a role: what a login JWT must show/);
    expect(role.body.help).toContain('bound_audiences (string_list)');
    const config = await h.call('GET', 'auth/jwt/config?help=1');
    expect(config.body.help).toMatch(/^Configures where the keys that verify login JWTs come from/);
    expect((await h.call('GET', 'auth/jwt/login?help=1', undefined, null)).body.help).toContain('jwt (string): The signed JWT.');
  });
});

describe('login', () => {
  it('logs a workload in with its signed JWT and vends as that workload', async () => {
    const jwt = await sign();
    const r = await login(jwt);
    expect(r.status, r.text).toBe(200);
    expect(r.body.auth).toMatchObject({
      client_token: expect.stringMatching(/^hvs\./),
      policies: ['default', 'log-shipper'],
      token_policies: ['default', 'log-shipper'],
      metadata: { role: 'log-shipper' },
      lease_duration: 900,
      renewable: true,
      entity_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const token = r.body.auth!.client_token as string;
    const self = await h.call('GET', 'auth/token/lookup-self', undefined, token);
    expect(self.body.data).toMatchObject({ display_name: `jwt-${SA}`, path: 'auth/jwt/login', entity_id: r.body.auth!.entity_id });

    const creds = await h.call('GET', 'tvm/creds/logs-ro', undefined, token);
    expect(creds.status, creds.text).toBe(200);
    expect(claimsOf(creds.body.data!.token as string).sub).toBe(`jwt:${SA}`);
    expect((await h.call('GET', 'tvm/creds/orders-rw', undefined, token)).status).toBe(403);

    const entity = await h.call('GET', `identity/entity/id/${r.body.auth!.entity_id as string}`);
    expect(entity.body.data!.aliases).toEqual([expect.objectContaining({ name: SA, mount_type: 'jwt', mount_path: 'auth/jwt/' })]);
    // A second login of the same workload is the same entity.
    expect((await login(await sign())).body.auth!.entity_id).toBe(r.body.auth!.entity_id);
  });

  it('copies claims to metadata through claim_mappings, and reads nested claims by JSON pointer', async () => {
    await h.call('POST', 'auth/jwt/role/mapped', providerRole({
      user_claim: '/kubernetes.io/serviceaccount/name',
      user_claim_json_pointer: true,
      bound_subject: '',
      bound_claims: { '/kubernetes.io/namespace': 'logging' },
      claim_mappings: { ns: 'namespace', '/kubernetes.io/serviceaccount/uid': 'uid' },
    }));
    const jwt = await sign({ 'kubernetes.io': { namespace: 'logging', serviceaccount: { name: 'log-shipper', uid: 'u-1' } } });
    const r = await login(jwt, 'mapped');
    expect(r.status, r.text).toBe(200);
    expect(r.body.auth!.metadata).toEqual({ role: 'mapped', namespace: 'logging', uid: 'u-1' });
    const self = await h.call('GET', 'auth/token/lookup-self', undefined, r.body.auth!.client_token as string);
    expect(self.body.data!.display_name).toBe('jwt-log-shipper');
  });

  it('matches glob bound claims', async () => {
    await h.call('POST', 'auth/jwt/role/ci', providerRole({
      bound_subject: '',
      bound_claims_type: 'glob',
      bound_claims: { ref: ['refs/heads/main', 'refs/tags/v*'] },
    }));
    expect((await login(await sign({ ref: 'refs/tags/v1.2.3' }), 'ci')).status).toBe(200);
    await refused(await sign({ ref: 'refs/heads/feature' }), 400, 'error validating claims: claim "ref" does not match any associated bound claim values', 'ci');
  });

  it('uses the default role when a login names none', async () => {
    await h.call('POST', 'sys/auth/jwt-default', { type: 'jwt' });
    await h.call('POST', 'auth/jwt-default/config', { jwks_url: `${issuer.url}/jwks.json`, default_role: 'Only' });
    await h.call('POST', 'auth/jwt-default/role/only', providerRole());
    const r = await h.call('POST', 'auth/jwt-default/login', { jwt: await sign() }, null);
    expect(r.status, r.text).toBe(200);
    expect(r.body.auth!.metadata).toEqual({ role: 'only' });
    const self = await h.call('GET', 'auth/token/lookup-self', undefined, r.body.auth!.client_token as string);
    expect(self.body.data!.display_name).toBe(`jwt-default-${SA}`);
  });

  it('verifies with PEM public keys (jwt_validation_pubkeys)', async () => {
    await h.call('POST', 'sys/auth/jwt-pem', { type: 'jwt' });
    const cfg = await h.call('POST', 'auth/jwt-pem/config', { jwt_validation_pubkeys: [rsa.pem], bound_issuer: issuer.url });
    expect(cfg.status, cfg.text).toBe(204);
    await h.call('POST', 'auth/jwt-pem/role/log-shipper', providerRole());
    const good = await sign({}, { key: rsa.privateKey, alg: 'RS256', kid: null });
    expect((await login(good, 'log-shipper', 'jwt-pem')).status).toBe(200);
    const es = await sign();
    const r = await login(es, 'log-shipper', 'jwt-pem');
    expect(r.body.errors).toEqual(["error validating token: failed to verify the token's signature with any of the configured jwt_validation_pubkeys"]);
  });

  it('verifies through OIDC discovery, requiring the discovered issuer', async () => {
    await h.call('POST', 'sys/auth/jwt-oidc', { type: 'jwt' });
    const cfg = await h.call('POST', 'auth/jwt-oidc/config', { oidc_discovery_url: issuer.url });
    expect(cfg.status, cfg.text).toBe(204);
    await h.call('POST', 'auth/jwt-oidc/role/log-shipper', providerRole());
    expect((await login(await sign(), 'log-shipper', 'jwt-oidc')).status).toBe(200);
    const other = await login(await sign({ iss: 'https://elsewhere.example' }), 'log-shipper', 'jwt-oidc');
    expect(other.body.errors![0]).toMatch(/^error validating token: invalid issuer \(iss\) claim: "https:\/\/elsewhere.example" is not the bound issuer/);
    const wrong = await h.call('POST', 'auth/jwt-oidc/config', { oidc_discovery_url: `${issuer.url}/other` });
    expect(wrong.status).toBe(400);
  });

  it('allows the default clock skew, and none when a role disables it', async () => {
    const late = await sign({ iat: now() - 700, nbf: now() - 700, exp: now() - 30 });
    expect((await login(late)).status).toBe(200);
    await h.call('POST', 'auth/jwt/role/strict', providerRole({ clock_skew_leeway: -1 }));
    await refused(late, 400, /^error validating token: invalid expiration time \(exp\) claim: token is expired/, 'strict');
  });

  it('refuses tokens bound elsewhere by token_bound_cidrs with 403', async () => {
    await h.call('POST', 'auth/jwt/role/far', providerRole({ token_bound_cidrs: ['10.0.0.0/8'] }));
    await refused(await sign(), 403, 'permission denied', 'far');
  });
});

describe('bad tokens', () => {
  it('an expired token', async () => {
    await refused(
      await sign({ iat: now() - 3600, nbf: now() - 3600, exp: now() - 1800 }),
      400,
      /^error validating token: invalid expiration time \(exp\) claim: token is expired \(expired at .*, leeway 60s\)$/,
    );
  });

  it('a token not yet valid', async () => {
    await refused(await sign({ nbf: now() + 3600, iat: now() }), 400, /^error validating token: invalid not before \(nbf\) claim: token not yet valid/);
  });

  it('a token issued in the future', async () => {
    await refused(await sign({ iat: now() + 3600, nbf: now() - 10 }), 400, /^error validating token: invalid issued at \(iat\) claim: token issued in the future/);
    // Without nbf, iat stands in for it.
    await refused(await sign({ iat: now() + 3600, nbf: undefined }), 400, /^error validating token: invalid not before \(nbf\) claim: token not yet valid/);
  });

  it('a token without any time claim', async () => {
    await refused(
      await sign({ iat: undefined, nbf: undefined, exp: undefined }),
      400,
      'error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token',
    );
  });

  it('a tampered token (claims changed after signing)', async () => {
    const jwt = await sign();
    const [header, payload, sig] = jwt.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, ns: 'kube-system' })).toString('base64url')}.${sig}`;
    await refused(forged, 400, "error validating token: failed to verify the token's signature");
  });

  it('an unsigned token (alg none)', async () => {
    const iat = now();
    await refused(
      unsigned({ iss: issuer.url, sub: SA, aud: ['vault'], iat, exp: iat + 600, ns: 'logging' }),
      400,
      'error validating token: unsigned tokens (alg "none") are not accepted',
    );
  });

  it('a token signed with an algorithm that is not allowed', async () => {
    const secret = new TextEncoder().encode('a-shared-secret-of-at-least-32-bytes!!');
    const iat = now();
    const hs = await new SignJWT({ iss: issuer.url, sub: SA, aud: ['vault'], iat, exp: iat + 600, ns: 'logging' })
      .setProtectedHeader({ alg: 'HS256', kid: issuer.kid })
      .sign(secret);
    await refused(hs, 400, /^error validating token: token signed with algorithm "HS256", which is not allowed \(allowed: RS256, .*EdDSA\)$/);
  });

  it('a token for another audience', async () => {
    await refused(
      await sign({ aud: ['https://kubernetes.default.svc'] }),
      400,
      `error validating token: invalid audience (aud) claim: ["https://kubernetes.default.svc"]; the role's bound_audiences are ["vault"]`,
    );
  });

  it('a token with an audience, for a role that binds none', async () => {
    await h.call('POST', 'auth/jwt/role/no-aud', providerRole({ bound_audiences: [] }));
    await refused(await sign(), 400, 'audience claim found in JWT but no audiences bound to the role', 'no-aud');
  });

  it('a token from another issuer', async () => {
    await refused(
      await sign({ iss: 'https://evil.example' }),
      400,
      `error validating token: invalid issuer (iss) claim: "https://evil.example" is not the bound issuer "${issuer.url}"`,
    );
  });

  it('a token signed by a key the issuer does not publish (unknown kid)', async () => {
    await refused(
      await sign({}, { key: stranger.key, kid: stranger.kid }),
      400,
      `error validating token: no key in the issuer's key set (${issuer.url}/jwks.json) matches the token's key ID "someone-else" and algorithm "ES256"`,
    );
  });

  it('a token signed by another key under the issuer\'s kid', async () => {
    await refused(await sign({}, { key: stranger.key }), 400, "error validating token: failed to verify the token's signature");
  });

  it('a token of another subject', async () => {
    await refused(
      await sign({ sub: 'system:serviceaccount:default:default' }),
      400,
      `error validating token: invalid subject (sub) claim: "system:serviceaccount:default:default" does not match the role's bound_subject`,
    );
  });

  it('a token whose claims miss or break the role\'s bindings', async () => {
    await refused(await sign({ ns: 'kube-system' }), 400, 'error validating claims: claim "ns" does not match any associated bound claim values');
    await refused(await sign({ ns: undefined }), 400, 'error validating claims: claim "ns" is missing');
    await h.call('POST', 'auth/jwt/role/by-email', providerRole({ user_claim: 'email', bound_subject: '' }));
    await refused(await sign(), 400, 'claim "email" not found in token', 'by-email');
    await refused(await sign({ email: 42 }), 400, 'claim "email" could not be converted to string', 'by-email');
  });

  it('garbage, missing fields and unknown roles', async () => {
    await refused('not-a-jwt', 400, /^error validating token: the token is not a signed JWT/);
    await refused('a.b.c', 400, 'error validating token: the token header is not base64url-encoded JSON');
    expect((await h.call('POST', 'auth/jwt/login', { role: 'log-shipper' }, null)).body.errors).toEqual(['missing token: the "jwt" field is empty']);
    expect((await h.call('POST', 'auth/jwt/login', { jwt: 'x' }, null)).body.errors).toEqual(['missing role']);
    expect((await h.call('POST', 'auth/jwt/login', { role: 'nope', jwt: 'x' }, null)).body.errors).toEqual(['role "nope" could not be found']);
  });

  it('a JWT sent as something other than a string, never echoed', async () => {
    const jwt = await sign();
    const r = await h.call('POST', 'auth/jwt/login', { role: 'log-shipper', jwt: [jwt] }, null);
    expect(r).toMatchObject({ status: 400, body: { errors: ['invalid jwt: expected a string'] } });
    expect(r.text).not.toContain(jwt.slice(0, 20));
  });

  it('never writes a JWT or an issued token to a log line', async () => {
    const good = await sign();
    const ok = await login(good);
    const bad = await sign({ aud: ['elsewhere'] });
    await login(bad);
    await login(`${good}x`);
    const all = h.logs.join('\n');
    expect(all).toContain('auth/jwt/login');
    for (const secret of [good, bad, ok.body.auth!.client_token as string, good.split('.')[2]]) expect(all).not.toContain(secret);
  });
});
