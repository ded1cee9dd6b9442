// One tvm scenario, written once, run on every transport a Vault client can
// meet: the engine called directly, the dev server over Vault's HTTP API, and
// the bundled plugin through the Go host (and so, through Vault). Each step is
// reduced to what a Vault client sees (status, error text, lease ttl, the data
// fields that matter), so transcripts from different transports compare equal.
//
// Nothing here knows a transport: paths are relative to the mount, and what
// legitimately differs between transports (the issuer address, the caller's
// identity, lease ids, fixtures already in the mount) is asked of the
// transport or normalised below, each in one named place. Reusable by any
// test that can offer a Transport (test/integration could, with node-vault).

import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';

/** The operations a Vault client issues against a mount. */
export type ClientOperation = 'read' | 'list' | 'update' | 'delete';

/** What a Vault client sees of one answer. */
export interface Answer {
  /** The HTTP status Vault answers with (200, 204, 400, 404, ...). */
  status: number;
  /** The error text (Vault's `errors`, joined); absent when Vault sends none. */
  error?: string;
  data?: Record<string, unknown>;
  lease?: { id: string; ttlS: number; renewable: boolean };
}

export interface Transport {
  name: string;
  /** The `iss` of the tokens this transport's engine signs (`<api_addr>/v1/<mount>`). */
  issuer: string;
  /** The mount the engine is at, with a trailing slash: lease ids start with it. */
  mount: string;
  /**
   * The `sub` the engine puts in a token issued to this transport's caller:
   * the caller's entity id, else its display name. Callers differ by transport
   * (the Go host's stand-in token, the dev server's root token).
   */
  subject: string;
  /** A request to `<mount><path>`. */
  request(operation: ClientOperation, path: string, data?: Record<string, unknown>): Promise<Answer>;
  /** The same request from another identity, one the ACL lets through as well (another entity, or another token). */
  requestAsOther(operation: ClientOperation, path: string, data?: Record<string, unknown>): Promise<Answer>;
  /** `sys/leases/renew` with an increment in seconds. */
  renew(leaseId: string, incrementS: number): Promise<Answer>;
  /** `sys/leases/revoke`. */
  revoke(leaseId: string): Promise<Answer>;
  /** The mount's storage keys, where the transport can see them (not over HTTP). */
  storageKeys?(): Promise<string[]>;
}

export interface ScenarioResult {
  /** What a client saw, step by step; equal across transports. */
  steps: unknown[];
  /** The mount's storage keys at the end, when the transport can see them. */
  storageKeys: string[] | null;
}

export interface ScenarioOptions {
  /** The role the scenario creates and deletes (default `orders`); must not exist before. */
  role?: string;
}

/** Pause that puts the renewed token's `iat` past the first one's. */
const RENEW_AFTER_MS = 1100;

/** Runs the scenario on one transport. */
export async function runScenario(t: Transport, options: ScenarioOptions = {}): Promise<ScenarioResult> {
  const role = options.role ?? 'orders';
  const steps: unknown[] = [];
  const step = (name: string, a: Answer, pick: (d: Record<string, unknown>) => unknown = () => undefined) =>
    steps.push({
      name,
      status: a.status,
      error: a.error,
      ttlS: a.lease?.ttlS,
      renewable: a.lease?.renewable,
      // Lease ids end in a random part (Vault's, the dev server's, the stand-ins'
      // counters); what a client may rely on is the path before it.
      leaseId: a.lease ? a.lease.id.replace(/\/[^/]+$/, '/<random>') : undefined,
      data: a.data ? pick(a.data) : undefined,
    });

  // Roles a transport already has (the dev server mounts tvm/ with a `demo`
  // role) are not the scenario's: listings below leave them out.
  const before = await t.request('list', 'roles/');
  const fixtures = new Set(before.status === 200 ? ((before.data?.keys as string[] | undefined) ?? []) : []);
  if (fixtures.has(role)) throw new Error(`${t.name}: role ${role} exists before the scenario`);

  step(
    'write role',
    await t.request('update', `roles/${role}`, {
      read: ['db://orders/*'],
      write: ['db://orders/outbox'],
      ttl: '5m',
      max_ttl: '1h',
      audiences: ['orders-api'],
    }),
  );
  step('read role', await t.request('read', `roles/${role}`), (d) => ({ read: d.read, write: d.write, audiences: d.audiences, ttl: d.ttl, max_ttl: d.max_ttl }));
  step('list roles', await t.request('list', 'roles/'), (d) => (d.keys as string[]).filter((k) => !fixtures.has(k)));
  step('bad ttl', await t.request('update', 'roles/bad', { read: ['db://x/*'], ttl: 'forever' }));
  step('unknown field', await t.request('update', 'roles/bad', { read: ['db://x/*'], colour: 'blue' }));
  step('no patterns', await t.request('update', 'roles/bad', { ttl: '5m' }));
  step('creds for a missing role', await t.request('read', 'creds/nope'));
  step('unsupported path', await t.request('read', 'no/such/path'));
  step('unsupported operation', await t.request('delete', `creds/${role}`));
  step('read config', await t.request('read', 'config'), (d) => d);
  step('bad signing algorithm', await t.request('update', 'config', { signing_algorithm: 'HS256' }));

  const creds = await t.request('read', `creds/${role}`);
  step('creds', creds, (d) => ({ token_type: d.token_type, scope: d.scope, role: d.role, keys: Object.keys(d).sort() }));
  if (!creds.lease || typeof creds.data?.token !== 'string') throw new Error(`${t.name}: creds answered ${JSON.stringify(creds)}`);
  const jwks = await t.request('read', 'jwks');
  const keySet = createLocalJWKSet(jwks.data as unknown as JSONWebKeySet);
  const first = await jwtVerify(creds.data.token, keySet, { issuer: t.issuer, audience: 'orders-api', typ: 'at+jwt' });
  steps.push({
    name: 'token claims',
    sub_is_caller: first.payload.sub === t.subject,
    client_id: first.payload.client_id,
    scope: first.payload.scope,
    life: first.payload.exp! - first.payload.iat!,
  });

  const narrow = await t.request('update', `creds/${role}`, { ttl: '1m', read: ['db://orders/items'] });
  step('down-scoped creds', narrow, (d) => ({ scope: d.scope, token_type: d.token_type }));
  step('wider than the role', await t.request('update', `creds/${role}`, { write: ['db://billing/*'] }));
  step('longer than the role', await t.request('update', `creds/${role}`, { ttl: '2h' }));

  await new Promise((r) => setTimeout(r, RENEW_AFTER_MS));
  const renew = await t.renew(creds.lease.id, 600);
  // A lease id is not a credential: the renewal answers no token; the lease's holder fetches it.
  step('renew +600s', renew, (d) => ({ jti_kept: d.jti === creds.data!.jti, token_answered: 'token' in d, token_fetch: d.token_fetch }));
  const renewed = await t.request('update', `creds/${role}`, { jti: creds.data.jti });
  step('fetch the renewed token', renewed, (d) => ({ jti_kept: d.jti === creds.data!.jti, has_token: typeof d.token === 'string' }));
  step('fetch it as another identity', await t.requestAsOther('update', `creds/${role}`, { jti: creds.data.jti }));
  const second = await jwtVerify(renewed.data!.token as string, keySet, { issuer: t.issuer, typ: 'at+jwt' });
  steps.push({ name: 'renewed token', later: second.payload.exp! > first.payload.exp!, same_jti: second.payload.jti === first.payload.jti });

  step('revoke', await t.revoke(creds.lease.id));
  // Vault's expiration manager forgets a revoked lease: revoking it again is a
  // no-op and renewing it is "lease not found"; neither reaches the engine.
  step('revoke again', await t.revoke(creds.lease.id));
  step('renew after revoke', await t.renew(creds.lease.id, 60));
  for (const [i, token] of [creds.data.token, renewed.data!.token].entries()) {
    step(`introspect ${i}`, await t.request('update', 'introspect', { token }), (d) => d);
  }
  step('introspect garbage', await t.request('update', 'introspect', { token: 'not-a-jwt' }), (d) => d);
  step('revocations', await t.request('read', 'revocations'), (d) => ({
    listed: (d.revoked as Array<{ jti: string }>).some((e) => e.jti === creds.data!.jti),
  }));
  step('introspect the narrow token', await t.request('update', 'introspect', { token: narrow.data!.token }), (d) => ({
    active: d.active,
    scope: d.scope,
    sub_is_caller: d.sub === t.subject,
  }));
  // A role that allows one live lease at a time: the engine's 429.
  const single = `${role}-single`;
  step('write single-lease role', await t.request('update', `roles/${single}`, { read: ['db://one/*'], ttl: '2m', max_active_leases: 1 }));
  const only = await t.request('read', `creds/${single}`);
  step('the one lease', only, (d) => ({ scope: d.scope }));
  step('a second lease', await t.request('read', `creds/${single}`));
  step('revoke the one lease', await t.revoke(only.lease!.id));
  const again = await t.request('read', `creds/${single}`);
  step('a lease once the slot is free', again, (d) => ({ scope: d.scope }));
  step('revoke it', await t.revoke(again.lease!.id));
  step('delete single-lease role', await t.request('delete', `roles/${single}`));

  const rotated = await t.request('update', 'keys/rotate');
  step('rotate keys', rotated, (d) => ({ alg: d.alg, kid: typeof d.kid === 'string' && d.kid !== '' }));
  step('jwks after rotation', await t.request('read', 'jwks'), (d) => ({
    kids: (d.keys as Array<{ kid: string }>).length,
    new_kid_published: (d.keys as Array<{ kid: string }>).some((k) => k.kid === rotated.data!.kid),
  }));

  step('delete role', await t.request('delete', `roles/${role}`));
  step('read deleted role', await t.request('read', `roles/${role}`));
  // The lease is still Vault's, so this renew reaches the engine, which refuses.
  step('renew after the role is gone', await t.renew(narrow.lease!.id, 60));
  step('revoke the narrow lease', await t.revoke(narrow.lease!.id));

  // Token ids are random (and some storage keys hold them): name them by their part in the scenario.
  const storageKeys = t.storageKeys ? await t.storageKeys() : null;
  let text = JSON.stringify({ steps, storageKeys });
  const jtis: Array<[string, unknown]> = [['<creds jti>', creds.data.jti], ['<narrow jti>', narrow.data!.jti], ['<single jti 1>', only.data!.jti], ['<single jti 2>', again.data!.jti]];
  for (const [label, value] of jtis) {
    text = text.split(String(value)).join(label);
  }
  const result = JSON.parse(text) as ScenarioResult;
  result.storageKeys?.sort();
  return result;
}
