// Hostile input never reaches a 500 (hardening issue, item 3): generated
// requests (methods, paths of every route family with generated segments,
// query strings, headers, JSON and non-JSON bodies, deep nesting, oversized
// bodies) thrown at a dev server. Properties: every answer is a 2xx or 4xx,
// the server stays up, a refused request (4xx) writes nothing to storage, and
// no error answer or log line holds a token the run knows.
//
// The run is reproducible: FUZZ_SEED (default below) and FUZZ_RUNS (requests
// per server, 8 servers) set it; the figures are printed at the end.
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import type { PhysicalStorage } from '../../src/server/types.ts';
import { recordingLogger } from './auth-helpers.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);
const SERVERS = 8;
/** Frozen: no lease or token expires during the run, so every write belongs to the request under way. */
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);

// --- the generated request ---------------------------------------------------

const NAMES = ['demo', 'admin', 'ADMIN', 'orders', 'x', 'tvm', 'approle', 'jwt', 'default', 'root', ''];

const TEMPLATES = [
  // sys
  'sys/health', 'sys/seal-status', 'sys/leader', 'sys/init', 'sys/internal/ui/mounts', 'sys/internal/ui/mounts/{}',
  'sys/mounts', 'sys/mounts/{}', 'sys/mounts/{}/tune', 'sys/auth', 'sys/auth/{}', 'sys/auth/{}/tune',
  'sys/locked-users', 'sys/locked-users/{}/unlock/{}', 'sys/policies/acl', 'sys/policies/acl/{}', 'sys/policy', 'sys/policy/{}',
  'sys/capabilities-self', 'sys/capabilities', 'sys/capabilities-accessor',
  'sys/leases/lookup', 'sys/leases/lookup/{}', 'sys/leases/renew', 'sys/leases/renew/{}', 'sys/leases/revoke', 'sys/leases/revoke/{}',
  'sys/leases/revoke-prefix/{}', 'sys/renew/{}', 'sys/revoke/{}', 'sys/wrapping/unwrap', 'sys/wrapping/lookup', 'sys/wrapping/wrap', 'sys/{}',
  'identity/entity/id', 'identity/entity/id/{}',
  // the token store
  'auth/token/create', 'auth/token/create-orphan', 'auth/token/lookup-self', 'auth/token/lookup', 'auth/token/lookup-accessor',
  'auth/token/renew', 'auth/token/renew-self', 'auth/token/revoke', 'auth/token/revoke-accessor', 'auth/token/accessors', 'auth/token/{}',
  // AppRole and JWT
  'auth/approle/role', 'auth/approle/role/{}', 'auth/approle/role/{}/role-id', 'auth/approle/role/{}/secret-id',
  'auth/approle/role/{}/custom-secret-id', 'auth/approle/role/{}/secret-id/lookup', 'auth/approle/role/{}/secret-id/destroy',
  'auth/approle/role/{}/secret-id-accessor/lookup', 'auth/approle/role/{}/secret-id-accessor/destroy', 'auth/approle/login', 'auth/approle/{}',
  'auth/jwt/config', 'auth/jwt/role', 'auth/jwt/role/{}', 'auth/jwt/login', 'auth/{}',
  // the tvm engine
  'tvm/config', 'tvm/roles', 'tvm/roles/{}', 'tvm/creds/{}', 'tvm/keys/rotate', 'tvm/jwks', 'tvm/.well-known/jwks.json',
  'tvm/.well-known/openid-configuration', 'tvm/revocations', 'tvm/introspect', 'tvm/{}',
  '{}', '{}/{}',
];

const FIELDS = [
  'read', 'write', 'ttl', 'max_ttl', 'policy', 'policies', 'type', 'config', 'token', 'lease_id', 'increment', 'jti', 'role_id',
  'secret_id', 'role', 'jwt', 'audience', 'audiences', 'id', 'paths', 'path', 'description', 'options', 'token_policies', 'bound_cidrs',
  'extra_claims', 'max_active_leases', 'iam', 'cloud', 'user_lockout_config', 'signing_algorithm', 'since', 'meta', 'num_uses',
  'no_parent', 'display_name', 'rules', 'accessor', 'mount_accessor', 'default_lease_ttl', 'max_lease_ttl', 'user_claim',
  'bound_audiences', 'role_type', 'jwks_url', 'jwt_validation_pubkeys', 'issuer', 'secret_id_ttl', 'token_ttl', 'period',
  'explicit_max_ttl', 'renewable', 'plugin_name', 'local', 'list', 'help', 'url_lease_id', 'token_type', 'cidr_list', 'metadata',
];

const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }).map(encodeURIComponent) },
  { weight: 1, arbitrary: fc.constantFrom('%20admin', 'admin%20', '%00', '%zz', '..', '.', '', '/', '//', '%2F', 'a%2Fb', '*', '+', '%E2%80%AE') },
);

const path = fc
  .tuple(fc.constantFrom(...TEMPLATES), fc.array(segment, { minLength: 2, maxLength: 2 }), fc.constantFrom('', '', '', '/', '//'), fc.boolean())
  .map(([t, segs, tail, lead]) => {
    let i = 0;
    return `${lead ? '/' : ''}${t.replace(/\{\}/g, () => segs[i++ % segs.length])}${tail}`;
  });

const scalar = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('5m', '1h', '0', '-1', '99999999999999999999', 'db://orders/*', 'tvm', 'approle', 'true', 'hvs.x', 'default', '', ' '),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const value = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: fc.array(scalar, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);
const deep = fc.integer({ min: 100, max: 6000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`);

const body = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 10 })), value, { maxKeys: 5 }).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...FIELDS), deep).map(([k, d]) => `{"${k}": ${d}}`) },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom('{"token": hvs.x}', '{', 'null', '[]', '"x"', '{"a":1,"a":2}', '\u0000', '{"__proto__": {"x": 1}}') },
);

const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom('?list=true', '?help=1', '?list=True', '?since=1', '?list=t'),
  fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 6 })), fc.string({ maxLength: 10 }), { maxKeys: 3 }).map(
    (o) => `?${Object.entries(o).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`,
  ),
);

const printable = fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x21-\x7e]/g, ''));

interface Generated {
  method: string;
  path: string;
  query: string;
  body: string;
  token: 'root' | 'plain' | 'garbage' | 'none';
  garbageToken: string;
  wrapTtl: string | null;
  contentType: string | null;
}

/** Mostly absent: a header a client rarely sends. */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const method = fc.oneof(
  { weight: 4, arbitrary: fc.constant('GET') },
  { weight: 4, arbitrary: fc.constant('POST') },
  { weight: 2, arbitrary: fc.constant('PUT') },
  { weight: 2, arbitrary: fc.constant('LIST') },
  { weight: 1, arbitrary: fc.constant('DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('PATCH', 'HEAD', 'OPTIONS', 'LINK', 'PROPFIND') },
);

const generated: fc.Arbitrary<Generated> = fc.record({
  method,
  path,
  query,
  body,
  token: fc.constantFrom('root', 'root', 'root', 'root', 'plain', 'garbage', 'none'),
  garbageToken: printable,
  wrapTtl: rarely(fc.oneof(fc.constantFrom('5m', '0', '1ms', '-1s', 'forever', '10000h'), printable)),
  contentType: rarely(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data')),
});

// --- sending -------------------------------------------------------------------

interface Sent {
  status: number;
  text: string;
}

function send(address: string, g: Generated, tokens: { root: string; plain: string }): Promise<Sent> {
  const url = new URL(address);
  const headers: Record<string, string> = {};
  const token = g.token === 'root' ? tokens.root : g.token === 'plain' ? tokens.plain : g.token === 'garbage' ? g.garbageToken : '';
  if (token) headers['X-Vault-Token'] = token;
  if (g.wrapTtl !== null) headers['X-Vault-Wrap-TTL'] = g.wrapTtl;
  if (g.contentType !== null) headers['Content-Type'] = g.contentType;
  const payload = g.method === 'GET' || g.method === 'HEAD' ? '' : g.body;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method: g.method, path: `/v1/${g.path}${g.query}`, headers: { ...headers, 'Content-Length': Buffer.byteLength(payload) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Counts every write that reaches the physical storage. */
function counting(storage: PhysicalStorage, counter: { writes: number; keys: string[] }): PhysicalStorage {
  return {
    get persistent() {
      return storage.persistent;
    },
    get: (k) => storage.get(k),
    list: (p) => storage.list(p),
    put: (k, v) => {
      counter.writes++;
      counter.keys.push(k);
      return storage.put(k, v);
    },
    delete: (k) => {
      counter.writes++;
      counter.keys.push(k);
      return storage.delete(k);
    },
    batch: (ops) => {
      counter.writes += ops.length;
      for (const op of ops) counter.keys.push(op.key);
      return storage.batch(ops);
    },
    view(prefix) {
      // Views must write through this wrapper, so they are built on it.
      return {
        get: async (key) => {
          const v = await storage.get(prefix + key);
          return v === null ? null : { key, value: v };
        },
        put: (e) => this.put(prefix + e.key, e.value),
        delete: (key) => this.delete(prefix + key),
        list: (sub) => storage.list(prefix + sub),
      };
    },
    close: () => storage.close(),
  };
}

// --- the run -------------------------------------------------------------------

const servers: RunningServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
});

describe('fuzzing the dev server', () => {
  it(`answers ${SERVERS} x ${RUNS} generated requests with 2xx/4xx only, stays up, writes nothing on a refusal, echoes no token`, async () => {
    const totals = { requests: 0, byStatus: new Map<number, number>(), refusedWithWrites: [] as string[], fivexx: [] as string[], echoes: [] as string[] };
    for (let round = 0; round < SERVERS; round++) {
      const logs: string[] = [];
      const counter = { writes: 0, keys: [] as string[] };
      const server = await startServer({
        dev: true,
        listenAddress: '127.0.0.1:0',
        quiet: true,
        clock: () => NOW,
        logger: recordingLogger(logs),
        output: () => undefined,
        wrapStorage: (s) => counting(s, counter),
      });
      servers.push(server);
      const root = server.rootToken;
      const call = (method: string, p: string, b: unknown) =>
        send(server.address, { method, path: p, query: '', body: JSON.stringify(b), token: 'root', garbageToken: '', wrapTtl: null, contentType: null }, { root, plain: '' });
      // Something to find: mounts, roles, a plain token.
      await call('POST', 'sys/auth/approle', { type: 'approle' });
      await call('POST', 'sys/auth/jwt', { type: 'jwt' });
      await call('POST', 'auth/approle/role/demo', { token_policies: ['default'] });
      await call('POST', 'tvm/roles/orders', { read: ['db://orders/*'], max_active_leases: 3 });
      const plain = JSON.parse((await call('POST', 'auth/token/create', { policies: ['default'], ttl: '1h' })).text).auth.client_token as string;
      const known = [root, plain];

      await fc.assert(
        fc.asyncProperty(generated, async (g) => {
          const before = counter.writes;
          const keysBefore = counter.keys.length;
          const sent = await send(server.address, g, { root, plain });
          totals.requests++;
          totals.byStatus.set(sent.status, (totals.byStatus.get(sent.status) ?? 0) + 1);
          const what = `${g.method} ${g.path}${g.query} (${g.token}) ${g.body.slice(0, 120)}`;
          if (sent.status >= 500 || sent.status < 200) totals.fivexx.push(`${sent.status} ${what}: ${sent.text.slice(0, 200)}`);
          if (sent.status >= 400 && counter.writes !== before) {
            totals.refusedWithWrites.push(`${sent.status} ${what} wrote ${counter.keys.slice(keysBefore).join(', ')}`);
          }
          if (sent.status >= 400) {
            for (const t of known) if (sent.text.includes(t)) totals.echoes.push(`${sent.status} ${what}`);
          }
          // A token the request itself created (auth/token/create) is known from here on.
          const created = /"client_token":"([^"]+)"/.exec(sent.text);
          if (created && sent.status < 300) known.push(created[1]);
        }),
        { seed: SEED + round, numRuns: RUNS },
      );
      // Still up, still serving.
      expect((await send(server.address, { method: 'GET', path: 'sys/health', query: '', body: '', token: 'none', garbageToken: '', wrapTtl: null, contentType: null }, { root, plain })).status).toBe(200);
      for (const line of logs) for (const t of known) if (line.includes(t)) totals.echoes.push(`log: ${line.slice(0, 200)}`);
      expect(logs.filter((l) => l.includes('request failed'))).toEqual([]);
      await server.close();
    }
    const statuses = [...totals.byStatus.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`).join(' ');
    console.log(`fuzz: ${totals.requests} requests, seeds ${SEED}..${SEED + SERVERS - 1}, statuses ${statuses}`);
    expect(totals.fivexx).toEqual([]);
    expect(totals.refusedWithWrites).toEqual([]);
    expect(totals.echoes).toEqual([]);
  }, 600_000);
});
