// The plugin benchmark behind scripts/bench-plugin. See that file for usage.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createTvmBackend } from '../src/engine/index.ts';
import { generateCertificate } from '../src/plugin/tls.ts';
import { MapStorage } from '../test/engine/helpers.ts';
import { buildGoHost, buildPlugin, goHostUnavailable, HostSession, MAGIC } from '../test/plugin/support.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '2000' }, starts: { type: 'string', default: '10' } } });
const n = Number(values.n);
const starts = Number(values.starts);
const ROLE = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', max_ttl: '1h' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function direct(): Promise<number> {
  const storage = new MapStorage();
  const backend = createTvmBackend({ apiAddr: 'http://127.0.0.1:8200' });
  await backend.initialize(storage);
  const base = { storage, mountPoint: 'tvm/', caller: { displayName: 'bench' } };
  await backend.handleRequest({ ...base, operation: 'update', path: 'roles/bench', data: ROLE });
  const read = () => backend.handleRequest({ ...base, operation: 'read', path: 'creds/bench', data: {} });
  for (let i = 0; i < 200; i++) await read();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await read();
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

async function startupAlone(plugin: string): Promise<number[]> {
  const cert = (await generateCertificate()).certPem;
  const times: number[] = [];
  for (let i = 0; i < starts; i++) {
    const t0 = process.hrtime.bigint();
    const child = spawn(plugin, [], {
      env: { PATH: process.env.PATH, ...MAGIC, PLUGIN_PROTOCOL_VERSIONS: '5', PLUGIN_CLIENT_CERT: cert },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  return times;
}

const directUs = await direct();
console.log(`direct engine call, creds read:       ${directUs.toFixed(0)} µs/op (n=${n}, sequential)`);

const plugin = await buildPlugin();
const alone = await startupAlone(plugin);
console.log(`plugin start-up to handshake line:   ${fmt(median(alone))} median of ${starts} (min ${fmt(Math.min(...alone))}, max ${fmt(Math.max(...alone))})`);

const unavailable = await goHostUnavailable();
if (unavailable) {
  console.log(`through the Go host: skipped (${unavailable})`);
  process.exit(0);
}
const hostBin = await buildGoHost();
const launches: Array<{ startup: number; setup: number }> = [];
for (let i = 0; i < Math.min(starts, 5); i++) {
  const s = await HostSession.start(hostBin, plugin);
  launches.push({ startup: Number(s.ready.startup_ns) / 1e6, setup: Number(s.ready.setup_ns) / 1e6 });
  await s.close();
}
console.log(
  `go-plugin launch (exec, handshake, mTLS dial):  ${fmt(median(launches.map((l) => l.startup)))} median; ` +
    `ready to serve (+Setup over the broker, Initialize): ${fmt(median(launches.map((l) => l.setup)))} median`,
);

const host = await HostSession.start(hostBin, plugin);
await host.send({ cmd: 'request', operation: 'update', path: 'roles/bench', data: ROLE });
await host.send({ cmd: 'bench', operation: 'read', path: 'creds/bench', n: 200 });
const r = await host.send({ cmd: 'bench', operation: 'read', path: 'creds/bench', n });
if (r.grpc_error) throw new Error(r.grpc_error);
const viaUs = Number(BigInt(r.total_ns as string) / BigInt(n)) / 1e3;
await host.close();
console.log(`through the Go host, creds read:     ${viaUs.toFixed(0)} µs/op (n=${n}, sequential; timed in Go around HandleRequest)`);
console.log(`plugin transport overhead:           ${(viaUs - directUs).toFixed(0)} µs/op (${(viaUs / directUs).toFixed(1)}x the direct call)`);
