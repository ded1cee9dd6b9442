// Hostile input never reaches a 500 in the broker's local API either
// (hardening issue, item 3): generated requests (raw request targets, methods,
// routes with generated ids, query strings, JSON and non-JSON bodies, deep
// nesting) at a broker in front of a dev server. Every answer is a 2xx or 4xx
// (a 502 only when Vault itself refused), the broker stays up, a refused
// request changes no workload or lease, and no error or log line holds a token
// the broker handed out. FUZZ_SEED and FUZZ_RUNS reproduce or widen a run.
import { connect as connectTcp } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { api, captureLog, startDevVault, tempDir, testConfig, type DevVault } from './helpers.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);

let vault: DevVault;
let broker: RunningBroker;
let port: number;
const dir = tempDir();
const logged = captureLog();
/** Ids and tokens the run knows, to aim at and to look for. */
const workloads: string[] = [];
const jtis: string[] = [];
const tokens: string[] = [];

beforeAll(async () => {
  vault = await startDevVault();
  broker = await startBroker(testConfig(vault, { sqlite: { path: `${dir.path}/broker.db` } }), { log: logged.log });
  port = Number(new URL(broker.url as string).port);
  for (const name of ['a', 'b']) {
    const w = await api(broker.url as string, 'POST', '/v1/workloads', { name, heartbeat_interval: '1h' });
    workloads.push(w.body.id as string);
    const t = await api(broker.url as string, 'POST', '/v1/tokens', { workload: w.body.id, role: 'long' });
    jtis.push(t.body.jti as string);
    tokens.push(t.body.token as string);
  }
});

afterAll(async () => {
  await broker?.stop();
  await vault?.close();
  dir.remove();
});

const id = fc.oneof(
  fc.constantFrom(...['x', '', '..', '%zz', '%00', '%2F', 'a%2Fb', '🙂', ' ', 'null']),
  fc.string({ maxLength: 16 }).map(encodeURIComponent),
  fc.constant('<workload>'),
  fc.constant('<jti>'),
);

const target = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(fc.constantFrom(
    '/v1/workloads', '/v1/workloads/{}', '/v1/workloads/{}/heartbeat', '/v1/tokens', '/v1/tokens/{}', '/v1/reports',
    '/v1/status', '/v1/leases', '/v1/events', '/metrics', '/v1/{}', '/{}', '/v1/workloads/{}/{}',
  ), id, fc.constantFrom('', '', '?state=active', '?state=x,active', '?limit=-1', '?limit=1e9', '?limit=abc', '?state=', '?%zz=1', '#x')).map(([t, i, q]) => `${t.replace(/\{\}/g, i)}${q}`) },
  // Request targets a client library would never send: absolute, asterisk, bad hosts.
  { weight: 1, arbitrary: fc.constantFrom('*', 'http://[', 'http://broker/v1/status', '//v1/status', '/v1/status?' + 'a'.repeat(4000), 'http://x:99999/', '/%') },
);

const scalar = fc.oneof(fc.string({ maxLength: 16 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('10s', '1h', '500ms', '0', '-1', 'long', 'short', 'aws', '<workload>', '<jti>'));
const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), scalar, { maxKeys: 3 }), fc.jsonValue({ maxDepth: 3 }));
const FIELDS = ['name', 'heartbeat_interval', 'pid', 'workload', 'role', 'ttl', 'read', 'write', 'audience', 'cloud', 'jti', 'reason'];
const deep = fc.integer({ min: 100, max: 30_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`);
const body = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })), value, { maxKeys: 5 }).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...FIELDS), deep).map(([k, d]) => `{"${k}": ${d}}`) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', '[]', 'null', `{"${'k'.repeat(20_000)}": 1}`, '{"ttl": {"a": [[[[1]]]]}}') },
);
const method = fc.constantFrom('GET', 'GET', 'POST', 'POST', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS');

/** Sends one raw HTTP/1.1 request (any request target) and reads the status and body. */
function raw(m: string, path: string, payload: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, text: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    // write, not end: a half-closed client connection may be dropped before the answer (Node's default).
    socket.write(`${m} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
  });
}

/** How many leases and workloads the registry holds, whatever their state (background work moves states, never these). */
async function counts(): Promise<string> {
  const s = await api(broker.url as string, 'GET', '/v1/status');
  const total = (m: unknown): number => Object.values((m ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
  return JSON.stringify([total(s.body.leases), total(s.body.workloads)]);
}

describe('fuzzing the broker API', () => {
  it(`answers ${RUNS} generated requests without a 500, stays up, changes nothing on a refusal, echoes no token`, async () => {
    const problems: string[] = [];
    const byStatus = new Map<number, number>();
    const fill = (s: string) => s.replace(/<workload>/g, () => workloads[0]).replace(/<jti>/g, () => jtis[0]);
    await fc.assert(
      fc.asyncProperty(method, target, body, async (m, t, b) => {
        const before = await counts();
        const path = fill(t);
        const sent = await raw(m, path, m === 'GET' || m === 'HEAD' ? '' : fill(b));
        byStatus.set(sent.status, (byStatus.get(sent.status) ?? 0) + 1);
        const what = `${m} ${path.slice(0, 100)} ${b.slice(0, 80)}`;
        if (sent.status === 0 || sent.status === 500) problems.push(`${sent.status} ${what}: ${sent.text.slice(0, 200)}`);
        if (sent.status >= 400) {
          if ((await counts()) !== before) problems.push(`${sent.status} changed the registry: ${what}`);
          for (const token of tokens) if (sent.text.includes(token)) problems.push(`${sent.status} echoed a token: ${what}`);
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`broker fuzz: ${RUNS} requests, seed ${SEED}, statuses ${[...byStatus].sort((x, y) => x[0] - y[0]).map(([s, n]) => `${s}:${n}`).join(' ')}`);
    expect((await api(broker.url as string, 'GET', '/v1/status')).status).toBe(200);
    for (const line of logged.lines) for (const token of tokens) if (line.includes(token)) problems.push(`log: ${line.slice(0, 120)}`);
    expect(logged.lines.filter((l) => l.includes('request failed'))).toEqual([]);
    expect(problems).toEqual([]);
  }, 300_000);
});
