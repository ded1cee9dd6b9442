// The README's "Protect a resource server": its Express example, taken from the
// README itself, runs with plain node against the `tvm/pep` bundle (no tsx, no
// other tvm code), and every answer the README shows is what it answers.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../../src/server/index.ts';
import { createDpopProver, generateDpopKey } from '../../src/pep/index.ts';

const root = join(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## Protect a resource server'), readme.indexOf('## The dev server'));

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server;
let example: ChildProcess;
let base: string;
const stdout: string[] = [];

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': server.rootToken, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

beforeAll(async () => {
  // The package entry: built as `npm install` builds it.
  execFileSync(process.execPath, [join(root, 'scripts/build-pep.mjs')], { stdio: 'pipe' });
  const code = /```js\n(\/\/ server\.mjs\n[\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error('the README has no server.mjs example');
  // Inside the package, so `tvm/pep` resolves to the package's own entry.
  const dir = join(root, '.cache/pep-readme');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'server.mjs'), code);

  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  await api('POST', 'tvm/roles/orders', { read: ['db://orders/*'], audiences: ['orders-api'] });
  example = spawn(process.execPath, [join(dir, 'server.mjs')], {
    env: { PATH: process.env.PATH, TVM_ISSUER: `${server.address}/v1/tvm`, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buffer = '';
    example.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        stdout.push(line);
        const m = /^orders-api listening on port (\d+)$/.exec(line);
        if (m) resolve(Number(m[1]));
      }
    });
    example.once('exit', (code) => reject(new Error(`the example exited with ${code}`)));
    setTimeout(() => reject(new Error('the example did not start')), 15_000);
  });
  base = `http://127.0.0.1:${port}`;
}, 60_000);

afterAll(async () => {
  example?.kill();
  await server?.close();
});

describe("the README's Express resource server", () => {
  it('answers what the README shows: allow, insufficient scope, no token, and a revocation within a second', async () => {
    const creds = await api('GET', 'tvm/creds/orders');
    const token = creds.data.token as string;
    const auth = { authorization: `Bearer ${token}` };

    const read = await fetch(`${base}/orders/42`, { headers: auth });
    expect(read.status).toBe(200);
    const readBody = await read.text();
    expect(readBody).toBe('{"id":"42","reader":"root"}');
    expect(section).toContain(readBody);

    const write = await fetch(`${base}/orders/42`, { method: 'PUT', headers: auth });
    expect(write.status).toBe(403);
    const writeBody = await write.text();
    expect(JSON.parse(writeBody).code).toBe('ERR_SCOPE');
    expect(section).toContain(writeBody);
    expect(section).toContain(`www-authenticate: ${write.headers.get('www-authenticate')}`);

    const none = await fetch(`${base}/orders/42`);
    expect(none.status).toBe(401);
    expect(section).toContain(`www-authenticate: ${none.headers.get('www-authenticate')}`);

    await api('PUT', 'sys/leases/revoke', { lease_id: creds.lease_id });
    const revokedAt = performance.now();
    let after: Response;
    for (;;) {
      after = await fetch(`${base}/orders/42`, { headers: auth });
      if (after.status !== 200 || performance.now() - revokedAt > 5000) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(performance.now() - revokedAt).toBeLessThan(1000);
    expect(after.status).toBe(401);
    const afterBody = await after.text();
    expect(JSON.parse(afterBody).code).toBe('ERR_TOKEN_REVOKED');
    expect(section).toContain(afterBody);

    // The usage events on the example's stdout: one per decision, never the token.
    const events = stdout.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(events.map((e) => e.decision)).toEqual(expect.arrayContaining(['allow', 'deny']));
    expect(events.find((e) => e.code === 'ERR_SCOPE')).toMatchObject({ op: 'write', resource: 'db://orders/42', role: 'orders', jti: creds.data.jti });
    expect(stdout.join('\n')).not.toContain(token);
    const shown = /^(\{"time".*"decision":"allow".*\})$/m.exec(section)?.[1];
    expect(shown, 'the README shows an allow event').toBeDefined();
    expect(Object.keys(JSON.parse(shown!)).sort()).toEqual(Object.keys(events.find((e) => e.decision === 'allow')).sort());
  });

  it("a bound token needs the README's three-line DPoP client", async () => {
    await api('POST', 'tvm/roles/bound', { read: ['db://orders/*'], audiences: ['orders-api'], binding: 'dpop' });
    const prover = createDpopProver(generateDpopKey());
    const token = (await api('PUT', 'tvm/creds/bound', { dpop_jwk: prover.publicJwk })).data.token as string;
    const url = `${base}/orders/7`;
    const bare = await fetch(url, { headers: { authorization: `DPoP ${token}` } });
    expect(bare.status).toBe(401);
    expect((await bare.json()).code).toBe('ERR_BINDING');
    const proven = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: prover.proof({ method: 'GET', url, accessToken: token }) } });
    expect(proven.status).toBe(200);
  });
});
