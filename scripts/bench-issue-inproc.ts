// CPU per token of each server's request handler alone, in one process, with
// no TCP: each handler is called with node's own IncomingMessage and
// ServerResponse over a socket that discards what is written, 50 requests in
// flight, and the process's CPU time (every thread, GC included) is divided
// by the tokens issued; the best of 7 trials of N tokens is kept. On a shared
// machine this is the figure that moves least: no load generator competes
// for the machine and no other process's network traffic is in it.
//
//   taskset -c 1 node --import tsx scripts/bench-issue-inproc.ts [tvm|peer|both] [N=4000]
//
// tvm: the dev server's handler (creds/bench with a policy-bound token, as
// bench-issue calls it); peer: oidc-provider's (bench-peer-oidc.ts's config,
// client_credentials with basic auth).

import http, { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';

const [which = 'both', nText = '4000'] = process.argv.slice(2);
const N = Number(nText);
const CONCURRENCY = 50;
const TRIALS = 7;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The request handler a server module installs: caught as its server starts listening. */
async function captureHandler<T>(start: () => Promise<T>): Promise<{ handler: Handler; value: T }> {
  let handler: Handler | undefined;
  const listen = http.Server.prototype.listen;
  http.Server.prototype.listen = function (this: http.Server, ...args: unknown[]) {
    const server = this;
    setImmediate(() => {
      handler = (req, res) => server.emit('request', req, res);
    });
    return (listen as (...a: unknown[]) => http.Server).apply(this, args);
  } as typeof listen;
  try {
    const value = await start();
    await new Promise((r) => setTimeout(r, 50));
    return { handler: handler!, value };
  } finally {
    http.Server.prototype.listen = listen;
  }
}

function call(handler: Handler, method: string, url: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = new IncomingMessage(new Socket());
    req.method = method;
    req.url = url;
    req.headers = headers;
    if (body !== undefined) req.push(body);
    req.push(null);
    const res = new ServerResponse(req);
    const sink = new Writable({
      write(_chunk, _enc, cb) {
        cb();
      },
      writev(_chunks, cb) {
        cb();
      },
    });
    res.assignSocket(sink as unknown as Socket);
    res.on('finish', () => resolve(res.statusCode));
    handler(req, res);
  });
}

async function measure(name: string, one: () => Promise<number>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const status = await one();
    if (status !== 200) throw new Error(`${name}: status ${status}`);
  }
  const trials: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    const c0 = process.cpuUsage();
    let left = N;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (left-- > 0) await one();
      }),
    );
    const c = process.cpuUsage(c0);
    trials.push((c.user + c.system) / N);
  }
  trials.sort((a, b) => a - b);
  console.log(`${name.padEnd(14)} ${trials[0].toFixed(1).padStart(6)} µs CPU per token (best of ${TRIALS} x ${N}; median ${trials[3].toFixed(1)})`);
}

if (which === 'tvm' || which === 'both') {
  const { startServer } = await import('../src/server/index.ts');
  const { handler, value: server } = await captureHandler(() =>
    startServer({ dev: true, listenAddress: '127.0.0.1:0', rootTokenId: 'bench-root', quiet: true }),
  );
  const root = { 'x-vault-token': 'bench-root', 'content-type': 'application/json', host: 'x' };
  const json = (o: unknown) => JSON.stringify(o);
  const setup = async (method: string, url: string, body: unknown): Promise<void> => {
    const res = await fetch(`${server.address}${url}`, { method, headers: root, body: json(body) });
    if (res.status >= 300) throw new Error(`${url}: ${res.status}`);
  };
  await setup('POST', '/v1/tvm/roles/bench', { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '15m', max_ttl: '1h' });
  await setup('PUT', '/v1/sys/policies/acl/bench', { policy: 'path "tvm/creds/bench" {\n  capabilities = ["read", "update"]\n}\n' });
  const created = (await (await fetch(`${server.address}/v1/auth/token/create`, { method: 'POST', headers: root, body: json({ policies: ['bench'], ttl: '1h' }) })).json()) as {
    auth: { client_token: string };
  };
  const headers = { 'x-vault-token': created.auth.client_token, host: 'x' };
  await measure('tvm dev', () => call(handler, 'GET', '/v1/tvm/creds/bench', headers));
  await server.close();
}

if (which === 'peer' || which === 'both') {
  const { handler, value: peer } = await captureHandler(async () => {
    const { spawnPeerInProcess } = await import('./bench-peer-oidc.ts');
    return spawnPeerInProcess();
  });
  const body = peer.body;
  const headers = {
    authorization: peer.authorization,
    'content-type': 'application/x-www-form-urlencoded',
    'content-length': String(Buffer.byteLength(body)),
    host: 'x',
  };
  await measure('oidc-provider', () => call(handler, 'POST', '/token', headers, body));
  await peer.close();
}
process.exit(0);
