// The audit devices' cost: issuance with one file device against none (the
// same run of scripts/bench-issue, dev mode), the events per second one writer
// sustains (chained lines, a usage event each, with a request line's HMACs),
// and how many lines per second `tvm audit verify` checks.
//   scripts/bench-audit [--duration 5]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { newPrivateKey } from '../src/engine/jwk.ts';
import { AuditHasher } from '../src/audit/hash.ts';
import { verifyAuditFile } from '../src/audit/verify.ts';
import { AuditWriter } from '../src/audit/writer.ts';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' } } });
const durationS = Number(values.duration);

console.log(`tvm audit benchmark, node ${process.version}`);
console.log('-- issuance, one dev server in its own process, without and with one file device:');
process.stdout.write(execFileSync('scripts/bench-issue', ['--mode', 'dev', '--audit', 'both', '--duration', String(durationS)], { encoding: 'utf8' }));

const dir = mkdtempSync(join(tmpdir(), 'tvm-bench-audit-'));
try {
  const file = join(dir, 'audit.log');
  const writer = AuditWriter.open({ device: 'bench', filePath: file, signingKey: newPrivateKey('ed25519') });
  const hasher = new AuditHasher(Buffer.alloc(32, 7));
  const event = { decision: 'allow', jti: '4c1e4f5e-7a0b-4c35-9a4e-1f0d2b6a9c11', role: 'orders', sub: 'entity_1', op: 'read', resource: 'db://orders/42', remote_addr: '10.0.0.7', method: 'GET', url: 'https://orders.example/orders/42' };
  const request = { client_token: 'hvs.CAESIJ0example0token0value0here', path: 'tvm/creds/orders', data: { ttl: '5m', read: ['db://orders/42'] } };
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < durationS * 1000) {
    for (let i = 0; i < 100; i++) {
      writer.write({ type: 'usage', usage: event, request: hasher.hashValue(request) });
      if (++n % 60_000 === 0) writer.checkpoint();
    }
  }
  const writeS = (performance.now() - start) / 1000;
  writer.close();
  console.log(`-- writer: ${Math.round(n / writeS).toLocaleString('en')} events/s (${n.toLocaleString('en')} lines, ${(statSync(file).size / 1024 / 1024).toFixed(1)} MiB, one write(2) each, a usage event and an HMAC'd request per line)`);
  const content = readFileSync(file, 'utf8');
  const t0 = performance.now();
  const report = verifyAuditFile(content, { at: Date.now() });
  const verifyS = (performance.now() - t0) / 1000;
  if (!report.ok) throw new Error(`the bench file does not verify: ${JSON.stringify(report.failure)}`);
  console.log(`-- verify: ${Math.round(report.lines / verifyS).toLocaleString('en')} lines/s (${report.lines.toLocaleString('en')} lines, ${report.checkpoints} checkpoints, ${verifyS.toFixed(2)} s)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
