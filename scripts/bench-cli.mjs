#!/usr/bin/env node
// How long the `tvm` command takes as a whole process, as a user's shell runs
// it: `tvm --help`, and `tvm creds demo` against a local dev server (started
// here, in its own process). Each is run --runs times (default 20) after one
// warm-up run; prints the median and the max wall time. Beside them, in the same
// run, the same read by OpenBao's `bao` CLI (the vault CLI's fork, a Go binary)
// when scripts/real-parts has installed it, and a bare `node -e 0` (the floor
// any Node CLI pays). Runs bin/tvm.js, so it measures the compiled CLI when
// dist/cli is fresh (npm install builds it) and says which one ran.
//   node scripts/bench-cli.mjs [--runs 20]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin/tvm.js');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '20' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('usage: node scripts/bench-cli.mjs [--runs N]');
  process.exit(2);
}

function newestUnder(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestUnder(p) : statSync(p).mtimeMs);
  }
  return newest;
}
const built = join(root, 'dist/cli/main.js');
const compiled = existsSync(built) && statSync(built).mtimeMs >= newestUnder(join(root, 'src'));

/** Runs argv `runs` times (plus one warm-up); wall times in ms. Fails loudly if a run fails. */
function time(argv, env) {
  const once = () => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { env, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
    return ms;
  };
  once();
  return Array.from({ length: runs }, once);
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};

async function freePort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

const port = await freePort();
const server = spawn(process.execPath, [bin, 'server', '-dev', '-dev-listen-address', `127.0.0.1:${port}`, '-dev-root-token-id', 'bench-cli'], {
  stdio: ['ignore', 'pipe', 'ignore'],
});
const addr = await new Promise((resolveAddr, reject) => {
  createInterface({ input: server.stdout }).on('line', (line) => {
    const m = /^tvm dev server listening on (\S+)$/.exec(line);
    if (m) resolveAddr(m[1]);
  });
  server.once('exit', (code) => reject(new Error(`dev server exited (${code})`)));
});

const env = { PATH: process.env.PATH, HOME: process.env.HOME, VAULT_ADDR: addr, VAULT_TOKEN: 'bench-cli' };
const rows = [];
const row = (what, target, xs) => {
  const { median, max } = stats(xs);
  rows.push({ what, median, max, target });
};
try {
  row('node -e 0 (the floor)', '', time([process.execPath, '-e', '0'], env));
  row('tvm --help', '< 150 ms', time([process.execPath, bin, '--help'], env));
  row('tvm creds demo', '< 250 ms', time([process.execPath, bin, 'creds', 'demo'], env));
  const real = join(root, '.cache/real');
  const baoDir = existsSync(real) ? readdirSync(real).find((d) => d.startsWith('openbao-') && existsSync(join(real, d, 'bin/bao'))) : undefined;
  const bao = baoDir ? join(real, baoDir, 'bin/bao') : '';
  if (bao) {
    const version = execFileSync(bao, ['version'], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
    row(`bao read tvm/creds/demo (${version})`, 'peer', time([bao, 'read', 'tvm/creds/demo'], env));
  } else {
    rows.push({ what: 'bao read tvm/creds/demo', skipped: 'no .cache/real/openbao-*/bin/bao (scripts/real-parts installs it)' });
  }
} finally {
  server.kill('SIGTERM');
}

console.log(`CLI wall time, whole processes, ${runs} runs each after one warm-up; ${compiled ? 'compiled CLI (dist/cli)' : 'TypeScript sources through tsx (dist/cli missing or older than src/)'}; node ${process.version}`);
console.log(`${'command'.padEnd(48)} ${'median'.padStart(9)} ${'max'.padStart(9)}  target`);
for (const r of rows) {
  if (r.skipped) console.log(`${r.what.padEnd(48)} skipped: ${r.skipped}`);
  else console.log(`${r.what.padEnd(48)} ${`${r.median.toFixed(0)} ms`.padStart(9)} ${`${r.max.toFixed(0)} ms`.padStart(9)}  ${r.target}`);
}
const tvmCreds = rows.find((r) => r.what === 'tvm creds demo');
const baoRow = rows.find((r) => r.what.startsWith('bao read') && !r.skipped);
if (tvmCreds && baoRow) console.log(`tvm creds / bao read (median): ${(tvmCreds.median / baoRow.median).toFixed(2)}x`);
