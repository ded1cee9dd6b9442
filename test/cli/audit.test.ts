// tvm audit verify and search over real audit files: the dev server's device
// and a PEP's audit sink, joined on the jti into one story; verify passes the
// untouched files and names the line of an edit.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditSink, createVerifier } from '../../src/pep/index.ts';
import { startServer } from '../../src/server/index.ts';
import { run } from './helpers.ts';
import { keyPair } from '../keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-audit-cli-'));
const serverLog = join(dir, 'server.log');
const pepLog = join(dir, 'pep.log');
let server: Awaited<ReturnType<typeof startServer>>;
let serverKey = '';
let pepKey = '';
let jti = '';
let lease = '';

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const r = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': server.rootToken, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

beforeAll(async () => {
  server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  await api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: serverLog } });
  serverKey = (await api('GET', 'sys/audit')).data['file/'].checkpoint_public_key;
  await api('POST', 'tvm/roles/orders', { read: ['db://orders/*'], audiences: ['orders-api'] });
  const sink = createAuditSink({ filePath: pepLog, signingKey: keyPair('EdDSA').privateKey });
  pepKey = sink.publicKey;
  const verifier = createVerifier({ issuer: `${server.address}/v1/tvm`, audience: 'orders-api', sink });
  const creds = await api('GET', 'tvm/creds/orders');
  jti = creds.data.jti;
  lease = creds.lease_id;
  const token = creds.data.token as string;
  await verifier.authorize(token, { op: 'read', resource: 'db://orders/1', remoteAddr: '10.0.0.7' });
  await verifier.authorize(token, { op: 'write', resource: 'db://orders/1', remoteAddr: '10.0.0.7' });
  await api('PUT', 'sys/leases/renew', { lease_id: lease });
  await api('PUT', 'sys/leases/revoke', { lease_id: lease });
  await api('GET', 'tvm/creds/orders'); // another token: not in this story
  verifier.close();
  sink.close();
  await api('DELETE', 'sys/audit/file');
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('tvm audit', () => {
  it("tells one token's story across the server's and the PEP's files, by jti or by lease", async () => {
    const byJti = await run(['audit', 'search', serverLog, pepLog, '--jti', jti]);
    expect(byJti.code).toBe(0);
    const whats = byJti.stdout.trim().split('\n').map((l) => l.split(/\s+/)[1]);
    expect(whats).toEqual(['issued', 'used', 'denied', 'renewed', 'revoked']);
    expect(byJti.stdout).toContain('write db://orders/1 ERR_SCOPE from 10.0.0.7');
    const byLease = await run(['audit', 'search', serverLog, pepLog, '--lease', lease, '--format', 'json']);
    const story = JSON.parse(byLease.stdout) as Array<{ what: string; jti: string }>;
    expect(story.map((e) => e.what)).toEqual(whats);
    expect(new Set(story.map((e) => e.jti))).toEqual(new Set([jti]));
    const byRole = await run(['audit', 'search', serverLog, pepLog, '--role', 'orders', '--format', 'json']);
    expect(new Set((JSON.parse(byRole.stdout) as Array<{ jti: string }>).map((e) => e.jti)).size).toBe(2);
    expect((await run(['audit', 'search', serverLog])).code).toBe(2);
    expect((await run(['audit', 'search', serverLog, '--jti', jti, '--since', 'yesterday-ish'])).stderr).toContain('--since');
    expect((await run(['audit', 'verify', serverLog, '--key', serverKey, '--at', 'later'])).code).toBe(2);
    expect((await run(['audit', 'verify', serverLog, '--key', 'not a key at all, just words'])).code).toBe(2);
    expect((await run(['audit', 'search', join(dir, 'missing.log'), '--jti', jti])).stderr).toContain('ENOENT');
  });

  it('verifies both files with their pinned keys, and names the line of an edit', async () => {
    const ok = await run(['audit', 'verify', serverLog, '--key', serverKey]);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.stdout).toMatch(/^ok: \d+ lines, \d+ checkpoints, pinned key\n/);
    expect((await run(['audit', 'verify', pepLog, '--key', pepKey])).code).toBe(0);
    expect((await run(['audit', 'verify', pepLog, '--key', serverKey])).code).toBe(1);
    // Unpinned only when asked for: a file names its own key, and a rewriter can name another.
    expect((await run(['audit', 'verify', pepLog])).code).toBe(2);
    const trusted = await run(['audit', 'verify', pepLog, '--trust-file-key']);
    expect(trusted.code).toBe(0);
    expect(trusted.stdout).toContain("checked with the file's own key");
    const lines = readFileSync(serverLog, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"revoked"') || l.includes('sys/leases/revoke'));
    lines[i] = lines[i].replace('sys/leases/revoke', 'sys/leases/lookup');
    const edited = join(dir, 'edited.log');
    writeFileSync(edited, lines.join('\n'));
    const bad = await run(['audit', 'verify', edited, '--key', serverKey]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`tvm: ${edited}: line ${i + 2} does not follow line ${i + 1} (its prev is not that line's hash): line ${i + 1} was edited, or lines were removed or reordered\n`);
  });
});
