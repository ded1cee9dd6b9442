// The plugin benchmark behind scripts/bench-plugin. See that file for usage.
//
// The direct engine call and the call through the Go host are measured in
// alternating rounds (each a sequential run of --n creds reads), so that load
// from elsewhere on the machine falls on both alike; each figure is the median
// over the rounds. The plugin's CPU time per read is read from /proc where
// there is one, and the storage calls per read from the host's counters.
// --profile <dir> runs the plugin under node --cpu-prof for the measured
// session and prints the top entries by self time, mapped to source files.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createTvmBackend } from '../src/engine/index.ts';
import { generateCertificate } from '../src/plugin/tls.ts';
import { MapStorage } from '../test/engine/helpers.ts';
import { buildGoHost, buildPlugin, goHostUnavailable, HostSession, MAGIC } from '../test/plugin/support.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '5' },
    starts: { type: 'string', default: '10' },
    profile: { type: 'string' },
    plugin: { type: 'string' },
    top: { type: 'string', default: '5' },
  },
});
const n = Number(values.n);
const rounds = Number(values.rounds);
const starts = Number(values.starts);
const ROLE = { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m', max_ttl: '1h' };
/** The targets. */
const TARGET_OVERHEAD_US = 300;
const TARGET_STARTUP_MS = 150;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

async function directBackend(): Promise<() => Promise<number>> {
  const storage = new MapStorage();
  const backend = createTvmBackend({ apiAddr: 'http://127.0.0.1:8200' });
  await backend.initialize(storage);
  const base = { storage, mountPoint: 'tvm/', caller: { displayName: 'bench' } };
  await backend.handleRequest({ ...base, operation: 'update', path: 'roles/bench', data: ROLE });
  const read = () => backend.handleRequest({ ...base, operation: 'read', path: 'creds/bench', data: {} });
  for (let i = 0; i < 200; i++) await read();
  return async () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await read();
    return Number(process.hrtime.bigint() - t0) / 1e3 / n;
  };
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

/** user+system CPU of a process in ms (Linux), or null. */
function cpuMs(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // clock ticks at USER_HZ 100
  } catch {
    return null;
  }
}

/** The plugin process the host started (its only child), or undefined. */
function pluginPid(hostPid: number | undefined): number | undefined {
  if (!hostPid) return undefined;
  try {
    for (const task of readdirSync(`/proc/${hostPid}/task`)) {
      const kids = readFileSync(`/proc/${hostPid}/task/${task}/children`, 'utf8').trim();
      if (kids) return Number(kids.split(/\s+/)[0]);
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** A wrapper that runs the bundled plugin under node --cpu-prof (not allowed in NODE_OPTIONS). */
function profiledPlugin(plugin: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const wrapper = join(mkdtempSync(join(tmpdir(), 'tvm-plugin-prof-')), 'tvm-plugin');
  writeFileSync(wrapper, `#!/bin/sh\nexec "${process.execPath}" --cpu-prof --cpu-prof-dir="${dir}" "${plugin}" "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

interface CpuProfile {
  startTime: number;
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/**
 * The top entries by self time within [fromUs, toUs] (the monotonic clock V8's profile and
 * process.hrtime share); functions of the bundle are named by the source file esbuild marked them with.
 */
function topEntries(profileFile: string, bundle: string, count: number, fromUs: number, toUs: number): { entries: string[]; packages: string } {
  const profile = JSON.parse(readFileSync(profileFile, 'utf8')) as CpuProfile;
  const marks: Array<[number, string]> = [];
  readFileSync(bundle, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      // ESM modules follow a `// <path>` line, CommonJS ones open with `"<path>"(exports, module) {`
      // (the path relative to where it was built from).
      const m = /^\s*(?:\/\/ |")(?:[^"\s]*?\/)?((?:node_modules|src)\/[^"\s]+)(?:"\(.*)?$/.exec(line);
      if (m) marks.push([i + 1, m[1]]);
    });
  const sourceOf = (line: number): string => {
    let found = '?';
    for (const [at, file] of marks) if (at <= line) found = file;
    return found;
  };
  const self = new Map<number, number>();
  let total = 0;
  const idle = new Set(profile.nodes.filter((node) => node.callFrame.functionName === '(idle)').map((node) => node.id));
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (idle.has(id) || at < fromUs || at > toUs) return;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const byEntry = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const node of profile.nodes) {
    const t = self.get(node.id);
    if (!t) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url === '' ? '' : url.includes(bundle.split('/').pop()!) ? sourceOf(lineNumber + 1) : url.replace(/^file:\/\//, '');
    const key = `${functionName || '(anonymous)'}  ${where}`.trim();
    byEntry.set(key, (byEntry.get(key) ?? 0) + t);
    const pkg = where === '' ? functionName : /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ?? where.replace(/^(node:internal\/[^/]+).*$/, '$1').replace(/^(src\/[^/]+)\/.*$/, '$1');
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + t);
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1)}%`;
  return {
    entries: [...byEntry]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([key, t]) => `${pct(t).padStart(6)}  ${key}`),
    packages: [...byPackage]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([pkg, t]) => `${pkg} ${pct(t)}`)
      .join(', '),
  };
}

const direct = await directBackend();
// --plugin: a bundle built elsewhere (another revision, to compare in the same conditions).
const plugin = values.plugin ? resolve(values.plugin) : await buildPlugin();
const alone = await startupAlone(plugin);
const startupMs = median(alone);
console.log(`plugin start-up to handshake line (JS file): ${fmt(startupMs)} median of ${starts} (min ${fmt(Math.min(...alone))}, max ${fmt(Math.max(...alone))})`);

const unavailable = await goHostUnavailable();
if (unavailable) {
  console.log(`direct engine call, creds read: ${(await direct()).toFixed(0)} µs/op`);
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
  `go-plugin launch (exec, handshake, mTLS dial): ${fmt(median(launches.map((l) => l.startup)))} median; ` +
    `ready to serve (+Setup over the broker, Initialize): ${fmt(median(launches.map((l) => l.setup)))} median`,
);

const profileDir = values.profile ? resolve(values.profile) : undefined;
const host = await HostSession.start(hostBin, profileDir ? profiledPlugin(plugin, profileDir) : plugin);
const hostPid = (host as unknown as { child: { pid?: number } }).child.pid;
const pid = pluginPid(hostPid);
await host.send({ cmd: 'request', operation: 'update', path: 'roles/bench', data: ROLE });
await host.send({ cmd: 'bench', operation: 'read', path: 'creds/bench', n: 500 });
const callsBefore = (await host.send({ cmd: 'storage' })).calls as Record<string, number>;
const directUs: number[] = [];
const viaUs: number[] = [];
const pluginCpuUs: number[] = [];
const measuredFromUs = Number(process.hrtime.bigint() / 1000n);
for (let r = 0; r < rounds; r++) {
  directUs.push(await direct());
  const cpu0 = cpuMs(pid);
  const reply = await host.send({ cmd: 'bench', operation: 'read', path: 'creds/bench', n });
  if (reply.grpc_error) throw new Error(String(reply.grpc_error));
  const cpu1 = cpuMs(pid);
  viaUs.push(Number(BigInt(reply.total_ns as string) / BigInt(n)) / 1e3);
  if (cpu0 !== null && cpu1 !== null) pluginCpuUs.push(((cpu1 - cpu0) * 1000) / n);
}
const measuredToUs = Number(process.hrtime.bigint() / 1000n);
const callsAfter = (await host.send({ cmd: 'storage' })).calls as Record<string, number>;
await host.close();

const perRead = Object.keys(callsAfter)
  .map((op) => `${op} ${((callsAfter[op] - (callsBefore[op] ?? 0)) / (rounds * n)).toFixed(2)}`)
  .join(', ');
const d = median(directUs);
const v = median(viaUs);
const all = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
console.log(`direct engine call, creds read:             ${d.toFixed(0)} µs/op (median of ${rounds} rounds of n=${n}, sequential: ${all(directUs)})`);
console.log(`through the Go host, creds read:            ${v.toFixed(0)} µs/op (timed in Go around HandleRequest: ${all(viaUs)})`);
if (pluginCpuUs.length) console.log(`plugin process CPU per creds read:          ${median(pluginCpuUs).toFixed(0)} µs (user+sys, all its threads)`);
console.log(`storage calls per creds read (host counts): ${perRead || 'none'}`);
console.log(`plugin transport overhead:                  ${(v - d).toFixed(0)} µs/op over the direct call (${(v / d).toFixed(2)}x it)`);
console.log(
  `targets: overhead <= ${TARGET_OVERHEAD_US} µs: ${verdict(v - d <= TARGET_OVERHEAD_US)}; ` +
    `start-up < ${TARGET_STARTUP_MS} ms: ${verdict(startupMs < TARGET_STARTUP_MS)}`,
);

if (profileDir) {
  // The plugin writes its profile when it exits; the host has stopped it above.
  for (let i = 0; i < 50 && !readdirSync(profileDir).some((f) => f.endsWith('.cpuprofile')); i++) await new Promise((r) => setTimeout(r, 100));
  const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).sort();
  if (files.length === 0) console.log(`profile: none written to ${profileDir}`);
  else {
    const file = join(profileDir, files[files.length - 1]);
    console.log(`plugin profile ${file}: top ${values.top} by self time over the measured rounds (the direct calls' rounds included, when the plugin idles), % of the time not idle:`);
    const top = topEntries(file, plugin, Number(values.top), measuredFromUs, measuredToUs);
    for (const line of top.entries) console.log(`  ${line}`);
    console.log(`  by package or source folder: ${top.packages}`);
  }
}
