// The differential suite's scenario: one sequence of requests covering every
// endpoint the dev server implements, run once against OpenBao (tvm plugin at
// tvm/, approle/ and jwt/ enabled) and once against the dev server. Each
// target keeps its own values (tokens, accessors, lease ids, role ids) in a
// context; a step's path, body and token may read them, and a step may keep
// values of its answer for later steps (named, so answers show them by name).
import type { KeyObject } from 'node:crypto';
import { exportSPKI, SignJWT } from 'jose';
import type { Answer, Placeholders } from './differential-compare.ts';
import { keyPair } from '../keys.ts';

export interface Target {
  name: 'openbao' | 'dev';
  /** http://127.0.0.1:<port> */
  address: string;
  rootToken: string;
}

/** A target's running state: values kept from its answers. */
export interface Ctx {
  target: Target;
  v: Record<string, string>;
  placeholders: Placeholders;
  /** The signing key of the JWT issuer the jwt/ auth method trusts. */
  jwt: JwtIssuer;
}

type Dyn<T> = T | ((c: Ctx) => T);

export interface Step {
  /** Unique and stable: docs/fidelity.md names differences by it. */
  id: string;
  method: string;
  path: Dyn<string>;
  /** A JSON body (objects are serialised; a string is sent as is). */
  body?: Dyn<unknown>;
  /** The X-Vault-Token: a kept value's name, 'root' (default) or null for none. */
  token?: Dyn<string | null>;
  headers?: Record<string, string>;
  /** Keeps values of the answer for later steps. */
  keep?: (c: Ctx, a: Answer) => void;
}

export interface JwtIssuer {
  privateKey: KeyObject;
  publicPem: string;
}

export async function jwtIssuer(): Promise<JwtIssuer> {
  const { privateKey, publicKey } = keyPair('ES256');
  return { privateKey, publicPem: await exportSPKI(publicKey) };
}

export const JWT_ISSUER = 'https://ci.example';

/** A JWT of the issuer; `age` seconds old and expired `age - 300` seconds ago when given. */
async function signJwt(issuer: JwtIssuer, claims: { aud: string; sub: string; age?: number }): Promise<string> {
  const now = Math.floor(Date.now() / 1000) - (claims.age ?? 0);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(JWT_ISSUER)
    .setAudience(claims.aud)
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .sign(issuer.privateKey);
}

/** Keeps a value under a name (and shows it as `<name>` in answers). */
export function keep(c: Ctx, name: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') throw new Error(`${c.target.name}: no ${name} to keep (got ${JSON.stringify(value)})`);
  c.v[name] = value;
  c.placeholders.names.set(value, `<${name}>`);
}

const data = (a: Answer): Record<string, unknown> => ((a.body as { data?: Record<string, unknown> }).data ?? {}) as Record<string, unknown>;
const auth = (a: Answer): Record<string, unknown> => ((a.body as { auth?: Record<string, unknown> }).auth ?? {}) as Record<string, unknown>;
const top = (a: Answer): Record<string, unknown> => (a.body ?? {}) as Record<string, unknown>;
const wrapInfo = (a: Answer): Record<string, unknown> => ((a.body as { wrap_info?: Record<string, unknown> }).wrap_info ?? {}) as Record<string, unknown>;

/** Keeps a login's or token create's token and accessor. */
const keepAuth = (name: string) => (c: Ctx, a: Answer): void => {
  keep(c, name, auth(a).client_token);
  keep(c, `${name}-accessor`, auth(a).accessor);
};

const APP_POLICY = `
path "tvm/creds/demo" { capabilities = ["read", "update"] }
path "tvm/roles/*" { capabilities = ["read", "list"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }
`;

const OTHER_POLICY = `
path "sys/leases/renew" { capabilities = ["update"] }
path "tvm/creds/demo" { capabilities = ["read", "update"] }
`;

const DEMO_ROLE = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '15m', max_ttl: '1h' };

/** The scenario: every endpoint the dev server implements, with its refusals. */
export function scenario(): Step[] {
  const steps: Step[] = [
    // --- status endpoints
    { id: 'health', method: 'GET', path: 'sys/health', token: null },
    { id: 'health-head', method: 'HEAD', path: 'sys/health', token: null },
    { id: 'seal-status', method: 'GET', path: 'sys/seal-status', token: null },
    { id: 'leader', method: 'GET', path: 'sys/leader', token: null },
    { id: 'init', method: 'GET', path: 'sys/init', token: null },

    // --- secrets engines: list, enable tvm, read, tune, disable
    { id: 'mounts-list', method: 'GET', path: 'sys/mounts' },
    { id: 'mounts-list-no-token', method: 'GET', path: 'sys/mounts', token: null },
    { id: 'mounts-enable', method: 'POST', path: 'sys/mounts/tvm2', body: { type: 'tvm', description: 'second' } },
    { id: 'mounts-enable-again', method: 'POST', path: 'sys/mounts/tvm2', body: { type: 'tvm' } },
    { id: 'mounts-enable-unknown-type', method: 'POST', path: 'sys/mounts/other', body: { type: 'no-such-engine' } },
    { id: 'mounts-enable-no-type', method: 'POST', path: 'sys/mounts/other', body: {} },
    { id: 'mounts-read', method: 'GET', path: 'sys/mounts/tvm2' },
    { id: 'mounts-read-trailing-slash', method: 'GET', path: 'sys/mounts/tvm2/' },
    { id: 'mounts-read-missing', method: 'GET', path: 'sys/mounts/nothing-here' },
    { id: 'mounts-tune', method: 'POST', path: 'sys/mounts/tvm2/tune', body: { default_lease_ttl: '10m', max_lease_ttl: '30m', description: 'tuned' } },
    { id: 'mounts-tune-read', method: 'GET', path: 'sys/mounts/tvm2/tune' },
    { id: 'mounts-tune-bad-ttl', method: 'POST', path: 'sys/mounts/tvm2/tune', body: { default_lease_ttl: 'soon' } },
    { id: 'mounts-tune-missing', method: 'GET', path: 'sys/mounts/nothing-here/tune' },
    { id: 'mounts-tvm2-roles-list-empty', method: 'LIST', path: 'tvm2/roles' },
    // tvm2's max_lease_ttl (30m, tuned above) caps a lease of a role whose ttl is longer.
    { id: 'mounts-tvm2-role-long', method: 'POST', path: 'tvm2/roles/long', body: { read: ['db://orders/*'], ttl: '45m', max_ttl: '1h' } },
    { id: 'mounts-tvm2-creds-capped', method: 'GET', path: 'tvm2/creds/long', keep: (c, a) => keep(c, 'capped-lease', top(a).lease_id) },
    {
      id: 'mounts-tvm2-renew-capped',
      method: 'POST',
      path: 'sys/leases/renew',
      body: (c: Ctx) => ({ lease_id: c.v['capped-lease'], increment: '45m' }),
    },
    { id: 'mounts-disable', method: 'DELETE', path: 'sys/mounts/tvm2' },
    { id: 'mounts-disable-again', method: 'DELETE', path: 'sys/mounts/tvm2' },
    { id: 'mounts-after-disable', method: 'GET', path: 'tvm2/roles/x' },

    // --- auth methods: list, enable, read, tune
    { id: 'auth-list', method: 'GET', path: 'sys/auth' },
    { id: 'auth-enable-approle', method: 'POST', path: 'sys/auth/approle', body: { type: 'approle' } },
    { id: 'auth-enable-jwt', method: 'POST', path: 'sys/auth/jwt', body: { type: 'jwt', description: 'ci' } },
    { id: 'auth-enable-again', method: 'POST', path: 'sys/auth/approle', body: { type: 'approle' } },
    { id: 'auth-read', method: 'GET', path: 'sys/auth/approle', keep: (c, a) => keep(c, 'approle-mount-accessor', data(a).accessor) },
    { id: 'auth-read-missing', method: 'GET', path: 'sys/auth/nothing-here' },
    { id: 'auth-read-via-mounts', method: 'GET', path: 'sys/mounts/auth/approle' },
    { id: 'auth-read-via-mounts-missing', method: 'GET', path: 'sys/mounts/auth/nothing-here' },
    { id: 'auth-tune', method: 'POST', path: 'sys/auth/approle/tune', body: { default_lease_ttl: '20m', max_lease_ttl: '2h' } },
    { id: 'auth-tune-read', method: 'GET', path: 'sys/auth/approle/tune' },
    { id: 'auth-tune-read-via-mounts', method: 'GET', path: 'sys/mounts/auth/approle/tune' },
    { id: 'auth-tune-via-mounts', method: 'POST', path: 'sys/mounts/auth/jwt/tune', body: { description: 'ci tokens' } },
    { id: 'auth-list-after', method: 'GET', path: 'sys/auth' },

    // --- policies
    { id: 'policy-write', method: 'PUT', path: 'sys/policies/acl/app', body: { policy: APP_POLICY } },
    { id: 'policy-write-other', method: 'PUT', path: 'sys/policies/acl/other', body: { policy: OTHER_POLICY } },
    { id: 'policy-read', method: 'GET', path: 'sys/policies/acl/app' },
    { id: 'policy-read-missing', method: 'GET', path: 'sys/policies/acl/nothing-here' },
    { id: 'policy-write-bad-hcl', method: 'PUT', path: 'sys/policies/acl/broken', body: { policy: 'path "x" { capabilities = ' } },
    { id: 'policy-write-empty', method: 'PUT', path: 'sys/policies/acl/broken', body: {} },
    { id: 'policy-write-mixed-case', method: 'PUT', path: 'sys/policies/acl/MixedCase', body: { policy: 'path "tvm/*" { capabilities = ["read"] }' } },
    { id: 'policy-read-lower-case', method: 'GET', path: 'sys/policies/acl/mixedcase' },
    { id: 'policy-list-method', method: 'LIST', path: 'sys/policies/acl' },
    // Vault reads `list` with Go's strconv.ParseBool (hvac sends True); an empty value is no list, anything else a 400.
    ...['true', 'True', '1', 't', 'yes', 'false', ''].map((v) => ({ id: `policy-list-query-${v || 'empty'}`, method: 'GET', path: `sys/policies/acl?list=${v}` })),
    { id: 'policy-list-query-FALSE', method: 'GET', path: 'sys/policies/acl/app?list=FALSE' },
    { id: 'policy-list-trailing-slash', method: 'LIST', path: 'sys/policies/acl/' },
    { id: 'policy-legacy-list', method: 'GET', path: 'sys/policy' },
    { id: 'policy-legacy-read', method: 'GET', path: 'sys/policy/app' },
    { id: 'policy-legacy-write', method: 'PUT', path: 'sys/policy/legacy', body: { rules: 'path "tvm/jwks" { capabilities = ["read"] }' } },
    { id: 'policy-delete', method: 'DELETE', path: 'sys/policies/acl/legacy' },
    { id: 'policy-delete-again', method: 'DELETE', path: 'sys/policies/acl/legacy' },
    { id: 'policy-read-root', method: 'GET', path: 'sys/policies/acl/root' },
    { id: 'policy-delete-root', method: 'DELETE', path: 'sys/policies/acl/root' },
    { id: 'policy-write-root', method: 'PUT', path: 'sys/policies/acl/root', body: { policy: 'path "*" { capabilities = ["read"] }' } },
    { id: 'policy-read-default', method: 'GET', path: 'sys/policies/acl/default' },

    // --- tokens
    {
      id: 'token-create',
      method: 'POST',
      path: 'auth/token/create',
      body: { policies: ['app'], ttl: '1h', display_name: 'app', meta: { team: 'orders' } },
      keep: keepAuth('app'),
    },
    { id: 'token-create-other', method: 'POST', path: 'auth/token/create', body: { policies: ['other'], ttl: '1h' }, keep: keepAuth('other') },
    { id: 'token-create-orphan', method: 'POST', path: 'auth/token/create-orphan', body: { policies: ['app'], ttl: '30m' }, keep: keepAuth('orphan') },
    { id: 'token-create-child-not-subset', method: 'POST', path: 'auth/token/create', body: { policies: ['other'] }, token: (c) => c.v.app },
    { id: 'token-create-bad-ttl', method: 'POST', path: 'auth/token/create', body: { ttl: 'forever' } },
    { id: 'token-create-orphan-denied', method: 'POST', path: 'auth/token/create-orphan', body: {}, token: (c) => c.v.app },
    { id: 'token-create-root-as-app', method: 'POST', path: 'auth/token/create', body: { policies: ['root'] }, token: (c) => c.v.app },
    { id: 'token-lookup-self', method: 'GET', path: 'auth/token/lookup-self', token: (c) => c.v.app },
    { id: 'token-lookup-self-root', method: 'GET', path: 'auth/token/lookup-self' },
    { id: 'token-lookup', method: 'POST', path: 'auth/token/lookup', body: (c: Ctx) => ({ token: c.v.orphan }) },
    { id: 'token-lookup-unknown', method: 'POST', path: 'auth/token/lookup', body: { token: 'not-a-token' } },
    { id: 'token-lookup-missing-field', method: 'POST', path: 'auth/token/lookup', body: {} },
    { id: 'token-lookup-accessor', method: 'POST', path: 'auth/token/lookup-accessor', body: (c: Ctx) => ({ accessor: c.v['app-accessor'] }) },
    { id: 'token-lookup-accessor-unknown', method: 'POST', path: 'auth/token/lookup-accessor', body: { accessor: 'not-an-accessor' } },
    { id: 'token-renew-self', method: 'POST', path: 'auth/token/renew-self', body: { increment: '45m' }, token: (c) => c.v.orphan },
    { id: 'token-renew', method: 'POST', path: 'auth/token/renew', body: (c: Ctx) => ({ token: c.v.app, increment: 1800 }) },
    { id: 'token-renew-past-max', method: 'POST', path: 'auth/token/renew-self', body: { increment: '1000h' }, token: (c) => c.v.orphan },
    { id: 'token-renew-unknown', method: 'POST', path: 'auth/token/renew', body: { token: 'not-a-token' } },
    { id: 'token-accessors-list', method: 'LIST', path: 'auth/token/accessors' },
    { id: 'token-accessors-denied', method: 'LIST', path: 'auth/token/accessors', token: (c) => c.v.app },
    { id: 'token-unknown-path', method: 'GET', path: 'auth/token/nothing-here' },
    { id: 'token-no-token', method: 'GET', path: 'auth/token/lookup-self', token: null },
    { id: 'token-bad-token', method: 'GET', path: 'auth/token/lookup-self', token: 'not-a-token' },

    // --- capabilities
    {
      id: 'capabilities-self',
      method: 'POST',
      path: 'sys/capabilities-self',
      body: { paths: ['tvm/creds/demo', 'tvm/roles/demo', 'sys/mounts'] },
      token: (c) => c.v.app,
    },
    { id: 'capabilities-self-one', method: 'POST', path: 'sys/capabilities-self', body: { path: 'tvm/creds/demo' }, token: (c) => c.v.app },
    { id: 'capabilities-self-root', method: 'POST', path: 'sys/capabilities-self', body: { paths: ['anything/at/all'] } },
    { id: 'capabilities-token', method: 'POST', path: 'sys/capabilities', body: (c: Ctx) => ({ token: c.v.other, paths: ['tvm/creds/demo', 'sys/leases/renew'] }) },
    {
      id: 'capabilities-accessor',
      method: 'POST',
      path: 'sys/capabilities-accessor',
      body: (c: Ctx) => ({ accessor: c.v['app-accessor'], paths: ['tvm/roles/demo'] }),
    },
    { id: 'capabilities-no-paths', method: 'POST', path: 'sys/capabilities-self', body: {}, token: (c) => c.v.app },

    // --- the tvm mount
    { id: 'tvm-config-write', method: 'POST', path: 'tvm/config', body: { default_ttl: '15m', max_ttl: '1h' } },
    { id: 'tvm-config-read', method: 'GET', path: 'tvm/config' },
    { id: 'tvm-config-bad', method: 'POST', path: 'tvm/config', body: { signing_algorithm: 'none' } },
    { id: 'tvm-role-write', method: 'POST', path: 'tvm/roles/demo', body: DEMO_ROLE },
    { id: 'tvm-role-write-second', method: 'POST', path: 'tvm/roles/orders-api', body: { read: ['db://orders/*'], audiences: ['orders-api'] } },
    { id: 'tvm-role-write-quota', method: 'POST', path: 'tvm/roles/single', body: { read: ['db://orders/*'], max_active_leases: 1 } },
    { id: 'tvm-creds-quota-first', method: 'GET', path: 'tvm/creds/single' },
    { id: 'tvm-creds-quota-second', method: 'GET', path: 'tvm/creds/single' },
    { id: 'tvm-role-read', method: 'GET', path: 'tvm/roles/demo' },
    { id: 'tvm-role-read-missing', method: 'GET', path: 'tvm/roles/nothing-here' },
    { id: 'tvm-role-write-bad', method: 'POST', path: 'tvm/roles/bad', body: { read: ['orders'] } },
    { id: 'tvm-role-write-unknown-field', method: 'POST', path: 'tvm/roles/bad', body: { read: ['db://x/*'], colour: 'blue' } },
    { id: 'tvm-roles-list', method: 'LIST', path: 'tvm/roles' },
    { id: 'tvm-roles-list-query', method: 'GET', path: 'tvm/roles?list=true' },
    { id: 'tvm-roles-list-trailing-slash', method: 'GET', path: 'tvm/roles/?list=true' },
    { id: 'tvm-roles-read-trailing-slash', method: 'GET', path: 'tvm/roles/' },
    { id: 'tvm-role-double-slash', method: 'GET', path: 'tvm/roles//demo' },
    { id: 'tvm-role-patch', method: 'PATCH', path: 'tvm/roles/demo', body: { ttl: '10m' } },
    {
      id: 'tvm-role-patch-merge',
      method: 'PATCH',
      path: 'tvm/roles/demo',
      body: { ttl: '10m' },
      headers: { 'Content-Type': 'application/merge-patch+json' },
    },
    { id: 'tvm-role-delete', method: 'DELETE', path: 'tvm/roles/orders-api' },
    { id: 'tvm-creds', method: 'GET', path: 'tvm/creds/demo', token: (c) => c.v.app, keep: (c, a) => { keep(c, 'lease1', top(a).lease_id); keep(c, 'jti1', data(a).jti); } },
    {
      id: 'tvm-creds-narrowed',
      method: 'POST',
      path: 'tvm/creds/demo',
      body: { ttl: '5m', read: ['db://orders/42'] },
      token: (c) => c.v.app,
      keep: (c, a) => { keep(c, 'lease2', top(a).lease_id); keep(c, 'tvm-token2', data(a).token); },
    },
    { id: 'tvm-creds-widened', method: 'POST', path: 'tvm/creds/demo', body: { read: ['db://**'] }, token: (c) => c.v.app },
    { id: 'tvm-creds-denied', method: 'GET', path: 'tvm/creds/orders-api', token: (c) => c.v.app },
    { id: 'tvm-creds-missing-role', method: 'GET', path: 'tvm/creds/nothing-here' },
    { id: 'tvm-creds-head', method: 'HEAD', path: 'tvm/creds/demo', token: (c) => c.v.app },
    { id: 'tvm-creds-delete', method: 'DELETE', path: 'tvm/creds/demo' },
    { id: 'tvm-jwks', method: 'GET', path: 'tvm/jwks', token: null },
    { id: 'tvm-jwks-write', method: 'POST', path: 'tvm/jwks', body: {} },
    { id: 'tvm-well-known-jwks', method: 'GET', path: 'tvm/.well-known/jwks.json', token: null },
    { id: 'tvm-well-known-openid', method: 'GET', path: 'tvm/.well-known/openid-configuration', token: null },
    { id: 'tvm-introspect', method: 'POST', path: 'tvm/introspect', body: (c: Ctx) => ({ token: c.v['tvm-token2'] }) },
    { id: 'tvm-introspect-garbage', method: 'POST', path: 'tvm/introspect', body: { token: 'garbage' } },
    { id: 'tvm-keys-rotate', method: 'POST', path: 'tvm/keys/rotate', body: {} },
    { id: 'tvm-unknown-path', method: 'GET', path: 'tvm/nothing-here' },
    { id: 'tvm-no-token', method: 'GET', path: 'tvm/roles/demo', token: null },

    // --- leases
    { id: 'lease-lookup', method: 'POST', path: 'sys/leases/lookup', body: (c: Ctx) => ({ lease_id: c.v.lease1 }) },
    { id: 'lease-lookup-as-holder', method: 'PUT', path: 'sys/leases/lookup', body: (c: Ctx) => ({ lease_id: c.v.lease1 }), token: (c) => c.v.app },
    { id: 'lease-lookup-unknown', method: 'POST', path: 'sys/leases/lookup', body: { lease_id: 'tvm/creds/demo/nothing' } },
    { id: 'lease-lookup-missing-field', method: 'POST', path: 'sys/leases/lookup', body: {} },
    { id: 'lease-list', method: 'LIST', path: 'sys/leases/lookup/tvm/creds/demo' },
    { id: 'lease-list-parent', method: 'LIST', path: 'sys/leases/lookup/tvm/creds/' },
    { id: 'lease-list-query', method: 'GET', path: 'sys/leases/lookup/tvm/?list=true' },
    { id: 'lease-list-empty', method: 'LIST', path: 'sys/leases/lookup/nothing/' },
    { id: 'lease-renew', method: 'POST', path: 'sys/leases/renew', body: (c: Ctx) => ({ lease_id: c.v.lease1, increment: '10m' }), token: (c) => c.v.app },
    { id: 'lease-renew-past-max', method: 'POST', path: 'sys/leases/renew', body: (c: Ctx) => ({ lease_id: c.v.lease1, increment: '10h' }), token: (c) => c.v.app },
    { id: 'lease-renew-fetch', method: 'POST', path: 'tvm/creds/demo', body: (c: Ctx) => ({ jti: c.v.jti1 }), token: (c) => c.v.app },
    { id: 'lease-renew-fetch-other', method: 'POST', path: 'tvm/creds/demo', body: (c: Ctx) => ({ jti: c.v.jti1 }), token: (c) => c.v.other },
    { id: 'lease-renew-by-other', method: 'POST', path: 'sys/leases/renew', body: (c: Ctx) => ({ lease_id: c.v.lease1 }), token: (c) => c.v.other },
    { id: 'lease-renew-in-path', method: 'PUT', path: (c) => `sys/leases/renew/${c.v.lease2}`, body: {} },
    { id: 'lease-renew-unknown', method: 'POST', path: 'sys/leases/renew', body: { lease_id: 'tvm/creds/demo/nothing' } },
    { id: 'lease-revoke', method: 'POST', path: 'sys/leases/revoke', body: (c: Ctx) => ({ lease_id: c.v.lease2 }) },
    { id: 'lease-revoke-again', method: 'POST', path: 'sys/leases/revoke', body: (c: Ctx) => ({ lease_id: c.v.lease2 }) },
    { id: 'lease-lookup-revoked', method: 'POST', path: 'sys/leases/lookup', body: (c: Ctx) => ({ lease_id: c.v.lease2 }) },
    { id: 'tvm-revocations', method: 'GET', path: 'tvm/revocations', token: null },
    { id: 'tvm-introspect-revoked', method: 'POST', path: 'tvm/introspect', body: (c: Ctx) => ({ token: c.v['tvm-token2'] }) },
    { id: 'lease-legacy-renew', method: 'PUT', path: 'sys/renew', body: (c: Ctx) => ({ lease_id: c.v.lease1 }) },
    { id: 'lease-legacy-revoke', method: 'PUT', path: (c) => `sys/revoke/${c.v.lease1}`, body: {} },
    { id: 'lease-legacy-revoke-prefix', method: 'PUT', path: 'sys/revoke-prefix/tvm/creds/single', body: {} },
    { id: 'lease-revoke-prefix', method: 'POST', path: 'sys/leases/revoke-prefix/tvm/creds/demo', body: {} },
    { id: 'lease-list-after-prefix', method: 'LIST', path: 'sys/leases/lookup/tvm/creds/demo/' },

    // --- AppRole
    {
      id: 'approle-role-write',
      method: 'POST',
      path: 'auth/approle/role/orders',
      body: { token_policies: ['app'], token_ttl: '1h', token_max_ttl: '4h', secret_id_ttl: '10m' },
    },
    { id: 'approle-role-write-bad', method: 'POST', path: 'auth/approle/role/broken', body: { token_ttl: 'later' } },
    { id: 'approle-role-read', method: 'GET', path: 'auth/approle/role/orders' },
    { id: 'approle-role-read-missing', method: 'GET', path: 'auth/approle/role/nothing-here' },
    { id: 'approle-role-list', method: 'LIST', path: 'auth/approle/role' },
    { id: 'approle-role-id', method: 'GET', path: 'auth/approle/role/orders/role-id', keep: (c, a) => keep(c, 'role-id', data(a).role_id) },
    {
      id: 'approle-secret-id',
      method: 'POST',
      path: 'auth/approle/role/orders/secret-id',
      body: { metadata: '{"host":"a"}' },
      keep: (c, a) => { keep(c, 'secret-id', data(a).secret_id); keep(c, 'secret-id-accessor', data(a).secret_id_accessor); },
    },
    {
      id: 'approle-custom-secret-id',
      method: 'POST',
      path: 'auth/approle/role/orders/custom-secret-id',
      body: { secret_id: 'a-custom-secret-id-for-the-suite' },
      keep: (c, a) => { keep(c, 'custom-secret-id', data(a).secret_id); keep(c, 'custom-accessor', data(a).secret_id_accessor); },
    },
    { id: 'approle-secret-id-list', method: 'LIST', path: 'auth/approle/role/orders/secret-id' },
    { id: 'approle-secret-id-lookup', method: 'POST', path: 'auth/approle/role/orders/secret-id/lookup', body: (c: Ctx) => ({ secret_id: c.v['secret-id'] }) },
    { id: 'approle-secret-id-lookup-unknown', method: 'POST', path: 'auth/approle/role/orders/secret-id/lookup', body: { secret_id: 'nothing' } },
    {
      id: 'approle-accessor-lookup',
      method: 'POST',
      path: 'auth/approle/role/orders/secret-id-accessor/lookup',
      body: (c: Ctx) => ({ secret_id_accessor: c.v['custom-accessor'] }),
    },
    {
      id: 'approle-login',
      method: 'POST',
      path: 'auth/approle/login',
      body: (c: Ctx) => ({ role_id: c.v['role-id'], secret_id: c.v['secret-id'] }),
      token: null,
      keep: (c, a) => { keepAuth('approle-token')(c, a); keep(c, 'approle-entity', auth(a).entity_id); },
    },
    { id: 'approle-login-wrong-secret', method: 'POST', path: 'auth/approle/login', body: (c: Ctx) => ({ role_id: c.v['role-id'], secret_id: 'wrong' }), token: null },
    { id: 'locked-users', method: 'GET', path: 'sys/locked-users' },
    {
      id: 'locked-users-unlock',
      method: 'POST',
      path: (c) => `sys/locked-users/${c.v['approle-mount-accessor']}/unlock/${c.v['role-id']}`,
      body: {},
    },
    { id: 'approle-login-missing-role-id', method: 'POST', path: 'auth/approle/login', body: { secret_id: 'x' }, token: null },
    { id: 'approle-token-lookup-self', method: 'GET', path: 'auth/token/lookup-self', token: (c) => c.v['approle-token'] },
    { id: 'approle-token-creds', method: 'GET', path: 'tvm/creds/demo', token: (c) => c.v['approle-token'] },
    { id: 'identity-entity-read', method: 'GET', path: (c) => `identity/entity/id/${c.v['approle-entity']}` },
    { id: 'identity-entity-missing', method: 'GET', path: 'identity/entity/id/00000000-0000-0000-0000-000000000000' },
    { id: 'identity-entity-list', method: 'LIST', path: 'identity/entity/id' },
    { id: 'approle-secret-id-destroy', method: 'POST', path: 'auth/approle/role/orders/secret-id/destroy', body: (c: Ctx) => ({ secret_id: c.v['secret-id'] }) },
    {
      id: 'approle-accessor-destroy',
      method: 'POST',
      path: 'auth/approle/role/orders/secret-id-accessor/destroy',
      body: (c: Ctx) => ({ secret_id_accessor: c.v['custom-accessor'] }),
    },
    { id: 'approle-login-destroyed', method: 'POST', path: 'auth/approle/login', body: (c: Ctx) => ({ role_id: c.v['role-id'], secret_id: c.v['custom-secret-id'] }), token: null },
    { id: 'approle-role-write-long-ttl', method: 'POST', path: 'auth/approle/role/long', body: { token_policies: ['default'], token_ttl: '3h', token_max_ttl: '4h' } },
    { id: 'approle-long-role-id', method: 'GET', path: 'auth/approle/role/long/role-id', keep: (c, a) => keep(c, 'long-role-id', data(a).role_id) },
    {
      id: 'approle-long-secret-id',
      method: 'PUT',
      path: 'auth/approle/role/long/secret-id',
      body: {},
      keep: (c, a) => keep(c, 'long-secret-id', data(a).secret_id),
    },
    {
      id: 'approle-login-capped-ttl',
      method: 'POST',
      path: 'auth/approle/login',
      body: (c: Ctx) => ({ role_id: c.v['long-role-id'], secret_id: c.v['long-secret-id'] }),
      token: null,
      keep: (c, a) => keep(c, 'long-token', auth(a).client_token),
    },
    { id: 'approle-role-delete', method: 'DELETE', path: 'auth/approle/role/orders' },
    { id: 'approle-unknown-path', method: 'GET', path: 'auth/approle/nothing-here' },

    // --- JWT
    { id: 'jwt-config', method: 'POST', path: 'auth/jwt/config', body: (c: Ctx) => ({ jwt_validation_pubkeys: [c.jwt.publicPem], bound_issuer: JWT_ISSUER }) },
    { id: 'jwt-config-read', method: 'GET', path: 'auth/jwt/config' },
    { id: 'jwt-config-bad-key', method: 'POST', path: 'auth/jwt/config', body: { jwt_validation_pubkeys: ['not a key'] } },
    {
      id: 'jwt-role-write',
      method: 'POST',
      path: 'auth/jwt/role/ci',
      body: { role_type: 'jwt', user_claim: 'sub', bound_audiences: ['vault'], token_policies: ['app'], token_ttl: '1h' },
    },
    {
      id: 'jwt-role-write-long-max-ttl',
      method: 'POST',
      path: 'auth/jwt/role/long',
      body: { role_type: 'jwt', user_claim: 'sub', bound_subject: 'repo:orders', token_max_ttl: '800h' },
    },
    { id: 'jwt-role-read', method: 'GET', path: 'auth/jwt/role/ci' },
    { id: 'jwt-role-list', method: 'LIST', path: 'auth/jwt/role' },
    { id: 'jwt-role-write-no-audience', method: 'POST', path: 'auth/jwt/role/loose', body: { role_type: 'jwt', user_claim: 'sub' } },
    {
      id: 'jwt-login',
      method: 'POST',
      path: 'auth/jwt/login',
      body: async (c: Ctx) => ({ role: 'ci', jwt: await signJwt(c.jwt, { aud: 'vault', sub: 'repo:orders' }) }),
      token: null,
      keep: keepAuth('jwt-token'),
    },
    {
      id: 'jwt-login-wrong-audience',
      method: 'POST',
      path: 'auth/jwt/login',
      body: async (c: Ctx) => ({ role: 'ci', jwt: await signJwt(c.jwt, { aud: 'elsewhere', sub: 'repo:orders' }) }),
      token: null,
    },
    {
      id: 'jwt-login-expired',
      method: 'POST',
      path: 'auth/jwt/login',
      body: async (c: Ctx) => ({
        role: 'ci',
        jwt: await signJwt(c.jwt, { aud: 'vault', sub: 'repo:orders', age: 3600 }),
      }),
      token: null,
    },
    { id: 'jwt-login-unknown-role', method: 'POST', path: 'auth/jwt/login', body: { role: 'nothing-here', jwt: 'x.y.z' }, token: null },
    { id: 'jwt-token-creds', method: 'GET', path: 'tvm/creds/demo', token: (c) => c.v['jwt-token'] },

    // --- response wrapping
    {
      id: 'wrap-token-create',
      method: 'POST',
      path: 'auth/token/create',
      body: { policies: ['app'], ttl: '10m' },
      headers: { 'X-Vault-Wrap-TTL': '5m' },
      keep: (c, a) => { keep(c, 'wrapping-token', wrapInfo(a).token); keep(c, 'wrapping-accessor', wrapInfo(a).accessor); },
    },
    { id: 'wrap-lookup', method: 'POST', path: 'sys/wrapping/lookup', body: (c: Ctx) => ({ token: c.v['wrapping-token'] }), token: null },
    { id: 'wrap-lookup-unknown', method: 'POST', path: 'sys/wrapping/lookup', body: { token: 'not-a-token' }, token: null },
    { id: 'wrap-unwrap', method: 'POST', path: 'sys/wrapping/unwrap', body: {}, token: (c) => c.v['wrapping-token'] },
    { id: 'wrap-unwrap-again', method: 'POST', path: 'sys/wrapping/unwrap', body: {}, token: (c) => c.v['wrapping-token'] },
    {
      id: 'wrap-creds',
      method: 'GET',
      path: 'tvm/creds/demo',
      token: (c) => c.v.app,
      headers: { 'X-Vault-Wrap-TTL': '120' },
      keep: (c, a) => keep(c, 'wrapping-token2', wrapInfo(a).token),
    },
    { id: 'wrap-unwrap-in-body', method: 'POST', path: 'sys/wrapping/unwrap', body: (c: Ctx) => ({ token: c.v['wrapping-token2'] }) },
    { id: 'wrap-wrap', method: 'POST', path: 'sys/wrapping/wrap', body: { hello: 'world' }, headers: { 'X-Vault-Wrap-TTL': '1m' } },
    { id: 'wrap-wrap-without-ttl', method: 'POST', path: 'sys/wrapping/wrap', body: { hello: 'world' } },
    { id: 'wrap-bad-ttl', method: 'GET', path: 'tvm/roles/demo', headers: { 'X-Vault-Wrap-TTL': 'soon' } },

    // --- the UI's mount listing
    { id: 'ui-mounts-no-token', method: 'GET', path: 'sys/internal/ui/mounts', token: null },
    { id: 'ui-mounts', method: 'GET', path: 'sys/internal/ui/mounts' },
    { id: 'ui-mounts-as-app', method: 'GET', path: 'sys/internal/ui/mounts', token: (c) => c.v.app },
    { id: 'ui-mount', method: 'GET', path: 'sys/internal/ui/mounts/tvm' },
    { id: 'ui-mount-deep', method: 'GET', path: 'sys/internal/ui/mounts/tvm/creds/demo', token: (c) => c.v.app },
    { id: 'ui-mount-missing', method: 'GET', path: 'sys/internal/ui/mounts/nothing-here' },
    { id: 'ui-mount-missing-deep', method: 'GET', path: 'sys/internal/ui/mounts/nothing-here/a/b/c' },

    // --- unrouted paths, methods, bad input
    { id: 'unknown-sys-path', method: 'GET', path: 'sys/nothing-here' },
    { id: 'unknown-top-path', method: 'GET', path: 'nothing-here/at/all' },
    { id: 'unknown-top-path-denied', method: 'GET', path: 'nothing-here/at/all', token: (c) => c.v.app },
    { id: 'bad-json', method: 'POST', path: 'tvm/roles/demo', body: '{"read": [' },
    { id: 'json-not-object', method: 'POST', path: 'tvm/roles/demo', body: '["read"]' },
    { id: 'method-unknown', method: 'OPTIONS', path: 'sys/mounts' },
    { id: 'sys-mounts-put-list', method: 'LIST', path: 'sys/mounts' },
    { id: 'sys-health-post', method: 'POST', path: 'sys/health', body: {} },

    // --- revocation of tokens, and disabling auth methods
    { id: 'token-revoke-accessor', method: 'POST', path: 'auth/token/revoke-accessor', body: (c: Ctx) => ({ accessor: c.v['other-accessor'] }) },
    { id: 'token-revoked-lookup', method: 'GET', path: 'auth/token/lookup-self', token: (c) => c.v.other },
    { id: 'token-revoke', method: 'POST', path: 'auth/token/revoke', body: (c: Ctx) => ({ token: c.v.orphan }) },
    { id: 'token-revoke-unknown', method: 'POST', path: 'auth/token/revoke', body: { token: 'not-a-token' } },
    { id: 'token-revoke-self', method: 'POST', path: 'auth/token/revoke-self', body: {}, token: (c) => c.v.app },
    { id: 'token-after-revoke-self', method: 'GET', path: 'auth/token/lookup-self', token: (c) => c.v.app },
    { id: 'auth-disable', method: 'DELETE', path: 'sys/auth/jwt' },
    { id: 'auth-disable-again', method: 'DELETE', path: 'sys/auth/jwt' },
    { id: 'auth-disabled-token', method: 'GET', path: 'auth/token/lookup-self', token: (c) => c.v['jwt-token'] },
  ];
  const seen = new Set<string>();
  for (const s of steps) {
    if (seen.has(s.id)) throw new Error(`duplicate step id ${s.id}`);
    seen.add(s.id);
  }
  return steps;
}

/** What a step sends, resolved against a target's context. */
export interface Sent {
  method: string;
  path: string;
  body?: string;
  headers: Record<string, string>;
}

async function resolve<T>(v: Dyn<T> | ((c: Ctx) => Promise<T>), c: Ctx): Promise<T> {
  return typeof v === 'function' ? await (v as (c: Ctx) => T | Promise<T>)(c) : v;
}

export async function prepare(step: Step, c: Ctx): Promise<Sent> {
  const headers: Record<string, string> = { ...step.headers };
  const token = step.token === undefined ? c.target.rootToken : await resolve(step.token, c);
  if (token !== null) headers['X-Vault-Token'] = token;
  const body = step.body === undefined ? undefined : await resolve(step.body as Dyn<unknown>, c);
  if (body !== undefined) headers['Content-Type'] ??= 'application/json';
  return {
    method: step.method,
    path: await resolve(step.path, c),
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    headers,
  };
}

/** Sends one request (fetch sends any method token, LIST included). */
export async function send(address: string, sent: Sent): Promise<Answer> {
  const res = await fetch(`${address}/v1/${sent.path}`, {
    method: sent.method,
    headers: sent.headers,
    ...(sent.body === undefined ? {} : { body: sent.body }),
  });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  let body: unknown = text;
  if (text.trim() !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: res.status, contentType, body };
}

/** Runs the scenario against one target; one answer per step. */
export async function runScenario(steps: Step[], c: Ctx): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const step of steps) {
    const sent = await prepare(step, c);
    const answer = await send(c.target.address, sent);
    answers.push(answer);
    if (step.keep) {
      try {
        step.keep(c, answer);
      } catch (err) {
        throw new Error(`step ${step.id} on ${c.target.name}: ${(err as Error).message}; answer ${JSON.stringify(answer).slice(0, 500)}`);
      }
    }
  }
  return answers;
}
