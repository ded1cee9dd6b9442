// The ceiling of scripts/bench-issue, measured on the core the servers run on:
//   sign <seconds>  prints {"rate": n}: ES256 signatures/s with node:crypto
//                   (a KeyObject, ieee-p1363), over a payload the size of a
//                   tvm token's header and claims;
//   http <host:port> a bare node:http server answering every request with a
//                   fixed JSON body the size of a creds answer; prints
//                   {"address": ...} once listening, stops on SIGTERM.

import { sign } from 'node:crypto';
import { createServer } from 'node:http';
import { newPrivateKey } from '../src/engine/jwk.ts';

const [what, arg] = process.argv.slice(2);

if (what === 'sign') {
  const seconds = Number(arg ?? '2');
  const privateKey = newPrivateKey('ec', { namedCurve: 'P-256' });
  const payload = Buffer.from('e'.repeat(560));
  // Warm up, then count.
  for (let i = 0; i < 2000; i++) sign('sha256', payload, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) sign('sha256', payload, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    n += 100;
  }
  process.stdout.write(`${JSON.stringify({ rate: n / ((performance.now() - t0) / 1000) })}\n`);
} else if (what === 'http') {
  const [host, port] = (arg ?? '127.0.0.1:0').split(':');
  const body = JSON.stringify({ data: { token: 'x'.repeat(700) }, pad: 'y'.repeat(500) });
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(port), host, () => {
    process.stdout.write(`${JSON.stringify({ address: `http://${host}:${port}` })}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
} else {
  process.stderr.write('usage: bench-issue-ceiling.ts sign <seconds> | http <host:port>\n');
  process.exit(2);
}
