// The real-server benchmark behind scripts/bench-real. See that file for usage.
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { generateCertificate } from '../src/plugin/tls.ts';
import { MAGIC } from '../test/plugin/support.ts';
import { jsPlugin, openbaoUnavailable, registerPlugin, seaPlugin, startBaoDev } from '../test/real/openbao.ts';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    concurrency: { type: 'string', default: '32' },
    n: { type: 'string', default: '2000' },
    starts: { type: 'string', default: '10' },
  },
});
const durationS = Number(values.duration);
const concurrency = Number(values.concurrency);
const n = Number(values.n);
const starts = Number(values.starts);
const ROLE = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '15m', max_ttl: '1h' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function call(agent: Agent, url: URL, token: string, method: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { 'X-Vault-Token': token, 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** creds/s with p50/p99 over `seconds` at the benchmark's concurrency (after a 2 s warm-up). */
async function issueRate(address: string, token: string, path: string): Promise<string> {
  const run = async (seconds: number, record: boolean) => {
    const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    const url = new URL(`${address}/v1/${path}`);
    const latencies: number[] = [];
    let errors = 0;
    const end = performance.now() + seconds * 1000;
    const worker = async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const res = await call(agent, url, token, 'GET');
        if (res.status !== 200) errors++;
        else if (record) latencies.push(performance.now() - t0);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedS = (performance.now() - t0) / 1000;
    agent.destroy();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
    return { rate: latencies.length / elapsedS, p50: pct(50), p99: pct(99), count: latencies.length, errors };
  };
  await run(2, false);
  const r = await run(durationS, true);
  return `${Math.round(r.rate)} creds/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (${r.count} tokens, ${r.errors} errors)`;
}

/** Mean µs per sequential GET of `path` (one connection, after 200 warm-up reads). */
async function meanReadUs(address: string, token: string, path: string): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(`${address}/v1/${path}`);
  for (let i = 0; i < 200; i++) await call(agent, url, token, 'GET');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = await call(agent, url, token, 'GET');
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body.slice(0, 200)}`);
  }
  agent.destroy();
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}

/** Spawn to handshake line on stdout, as go-plugin waits for it (ms, `starts` times). */
async function startup(plugin: string): Promise<number[]> {
  const cert = (await generateCertificate()).certPem;
  const times: number[] = [];
  for (let i = 0; i < starts; i++) {
    const t0 = process.hrtime.bigint();
    const child = spawn(plugin, [], { env: { PATH: process.env.PATH, ...MAGIC, PLUGIN_PROTOCOL_VERSIONS: '5', PLUGIN_CLIENT_CERT: cert }, stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  return times;
}

async function devServer(): Promise<{ child: ChildProcess; address: string; rootToken: string }> {
  const port = 18200 + Math.floor(Math.random() * 1000);
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench-server.ts', 'dev', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`dev server exited with ${code}`)));
  });
  return { child, ...(JSON.parse(line) as { address: string; rootToken: string }) };
}

const why = openbaoUnavailable();
if (why) {
  console.error(`bench-real needs OpenBao: ${why}`);
  process.exit(2);
}
console.log(`tvm real-server benchmark: ${durationS}s per run at concurrency ${concurrency}; ${n} sequential reads; ${starts} starts; node ${process.version}`);

const dev = await devServer();
try {
  const agent = new Agent({ keepAlive: true });
  await call(agent, new URL(`${dev.address}/v1/tvm/roles/bench`), dev.rootToken, 'POST', JSON.stringify(ROLE));
  agent.destroy();
  console.log(`dev server (its own process)         ${await issueRate(dev.address, dev.rootToken, 'tvm/creds/bench')}`);
} finally {
  dev.child.kill('SIGTERM');
  await new Promise((r) => dev.child.once('exit', r));
}

const bao = await startBaoDev();
try {
  await registerPlugin(bao);
  await bao.api('POST', 'tvm/roles/bench', ROLE);
  console.log(`OpenBao 2.7.2 + plugin (JS file)     ${await issueRate(bao.address, bao.rootToken, 'tvm/creds/bench')}`);
  // The per-request cost of the plugin: a storage-backed read through it, against the same read of a built-in engine.
  await bao.api('POST', 'secret/data/bench', { data: { k: 'v' } });
  const kv = await meanReadUs(bao.address, bao.rootToken, 'secret/data/bench');
  const role = await meanReadUs(bao.address, bao.rootToken, 'tvm/roles/bench');
  console.log(`sequential read, built-in KV v2      ${kv.toFixed(0)} µs/op`);
  console.log(`sequential read, tvm/roles (plugin)  ${role.toFixed(0)} µs/op  (the plugin adds ${(role - kv).toFixed(0)} µs)`);
  const creds = await meanReadUs(bao.address, bao.rootToken, 'tvm/creds/bench');
  console.log(`sequential creds (sign + lease)      ${creds.toFixed(0)} µs/op`);
  await bao.cli(['lease', 'revoke', '-sync', '-prefix', 'tvm/creds/bench']);
} finally {
  await bao.stop();
}

for (const [label, file] of [['JS file', await jsPlugin()], ['single executable', await seaPlugin()]] as const) {
  const t = await startup(file);
  console.log(`plugin start to handshake, ${label.padEnd(17)} ${median(t).toFixed(1)} ms median of ${starts} (min ${Math.min(...t).toFixed(1)}, max ${Math.max(...t).toFixed(1)})`);
}
