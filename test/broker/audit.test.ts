// The broker's audit file: its actions (issue, renewals, revoke with its
// reason) chained and checkpointed through the same writer as the server's
// devices and the PEP's sink, joined to the token's story by `tvm audit search`.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/index.ts';
import { searchAudit } from '../../src/audit/search.ts';
import { verifyAuditFile } from '../../src/audit/verify.ts';
import { api, captureLog, startDevVault, tempDir, testConfig, waitFor } from './helpers.ts';
import { keyPair } from '../keys.ts';

const dir = tempDir();
afterAll(() => dir.remove());

describe('the broker audit file', () => {
  it('records issue, renewal and revocation with the jti and lease, and verifies', async () => {
    const vault = await startDevVault();
    const { privateKey, publicKey } = keyPair('EdDSA');
    const keyFile = `${dir.path}/audit.key`;
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const file = `${dir.path}/broker-audit.log`;
    const broker = await startBroker(
      testConfig(vault, { sqlite: { path: `${dir.path}/b.db` } }, { audit: { file_path: file, checkpoint_key_file: keyFile, checkpoint_interval: '1s' } }),
      { log: captureLog().log },
    );
    try {
      const w = await api(broker.url as string, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '60s' });
      const t = await api<{ jti: string; lease_id: string }>(broker.url as string, 'POST', '/v1/tokens', { workload: w.body.id, role: 'short' });
      expect(t.status).toBe(200);
      await waitFor(async () => ((await broker.store.getLeaseByJti(t.body.jti))?.renewals ?? 0) >= 1 || null, 8_000, 'a renewal');
      expect((await api(broker.url as string, 'DELETE', `/v1/tokens/${t.body.jti}`)).status).toBe(200);
      await waitFor(async () => (await broker.store.getLeaseByJti(t.body.jti))?.state === 'revoked' || null, 5_000, 'revoked');
    } finally {
      await broker.stop();
      await vault.close();
    }
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const actions = lines.filter((l) => l.type === 'broker').map((l) => l.broker.action);
    expect(actions).toEqual(expect.arrayContaining(['workload_registered', 'issued', 'renewed', 'revoke_requested', 'revoked']));
    const story = searchAudit([file], { jti: (lines.find((l) => l.broker?.action === 'issued')).broker.jti });
    expect(story.map((e) => e.what)).toEqual(expect.arrayContaining(['broker:issued', 'broker:renewed', 'broker:revoked']));
    expect(story.find((e) => e.what === 'broker:revoked')?.detail).toContain('explicit');
    expect(verifyAuditFile(readFileSync(file, 'utf8'), { key: publicKey.export({ type: 'spki', format: 'pem' }).toString() }).ok).toBe(true);
    // No token in the file: the broker records what happened, not the credential.
    expect(readFileSync(file, 'utf8')).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\./);
  }, 20_000);

  it('refuses a missing or wrong checkpoint key at start, naming the field', async () => {
    const vault = await startDevVault();
    try {
      const { privateKey } = keyPair('ES256');
      const ecKey = `${dir.path}/ec.key`;
      writeFileSync(ecKey, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const open = `${dir.path}/open.key`;
      writeFileSync(open, keyPair('EdDSA').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o644 });
      for (const [audit, says] of [
        [{ file_path: `${dir.path}/x.log`, checkpoint_key_file: `${dir.path}/missing.key` }, 'ENOENT'],
        [{ file_path: `${dir.path}/x.log`, checkpoint_key_file: ecKey }, 'Ed25519'],
        [{ file_path: `${dir.path}/x.log`, checkpoint_key_file: open }, 'chmod 600'],
      ] as const) {
        await expect(startBroker(testConfig(vault, { sqlite: { path: `${dir.path}/c.db` } }, { audit }), { log: captureLog().log })).rejects.toThrow(
          new RegExp(`audit.checkpoint_key_file .*${says}`),
        );
      }
    } finally {
      await vault.close();
    }
  });
});
