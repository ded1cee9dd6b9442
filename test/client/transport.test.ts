// The client's HTTP exchange follows a standby's redirect to the active node
// (OpenBao answers 307 when it cannot forward, right after a failover, say) with
// the same method, body and token, as Vault's own client does; and stops
// following after a few, answering the redirect as the failure it then is.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/connection.ts';
import { VaultRequestError } from '../../src/client/errors.ts';

interface Seen {
  method: string;
  url: string;
  token: string | undefined;
  body: string;
}

let active: Server;
let standby: Server;
let looping: Server;
const seen: Seen[] = [];
const addr = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
const read = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => resolve(text));
  });
const listen = (s: Server) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));

beforeAll(async () => {
  active = createServer(async (req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', token: req.headers['x-vault-token'] as string | undefined, body: await read(req) });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ lease_id: 'tvm/creds/r/1', lease_duration: 300, renewable: true, data: null }));
  });
  await listen(active);
  standby = createServer(async (req, res) => {
    await read(req);
    res.writeHead(307, { Location: `${addr(active)}${req.url}` }).end();
  });
  await listen(standby);
  looping = createServer(async (req, res) => {
    await read(req);
    res.writeHead(307, { Location: req.url ?? '/' }).end();
  });
  await listen(looping);
});
afterAll(async () => {
  for (const s of [active, standby, looping]) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

describe('redirects', () => {
  it('follows a standby\'s 307 to the active node with the same method, body and token', async () => {
    seen.length = 0;
    const conn = connect({ addr: addr(standby), token: 'hvs.secret', env: {} });
    const res = await conn.write('sys/leases/renew', { lease_id: 'tvm/creds/r/1', increment: '5m' });
    expect(res).toMatchObject({ lease_id: 'tvm/creds/r/1', lease_duration: 300 });
    expect(seen).toEqual([{ method: 'POST', url: '/v1/sys/leases/renew', token: 'hvs.secret', body: '{"lease_id":"tvm/creds/r/1","increment":"5m"}' }]);
    // A LIST keeps its query through the redirect.
    await conn.list('tvm/roles');
    expect(seen[1]).toMatchObject({ method: 'GET', url: '/v1/tvm/roles?list=true' });
  });

  it('stops after five, answering the redirect as a failed request', async () => {
    const conn = connect({ addr: addr(looping), token: 't', env: {} });
    const err = await conn.read('sys/health').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultRequestError);
    expect((err as VaultRequestError).status).toBe(307);
  });
});
