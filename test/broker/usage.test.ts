// Usage events posted to the broker (POST /v1/usage) feed its anomaly rules
// (rule blocks in its config): a probing token's lease is revoked through the
// broker's own path, and bad input is refused naming the field.
import { afterAll, describe, expect, it } from 'vitest';
import { startBroker } from '../../src/broker/index.ts';
import { parseConfig } from '../../src/broker/config.ts';
import { api, captureLog, startDevVault, tempDir, testConfig, waitFor } from './helpers.ts';

const dir = tempDir();
afterAll(() => dir.remove());

describe('usage events and the broker rules', () => {
  it('revokes the lease of a token that probes beyond its scope, and shows it', async () => {
    const vault = await startDevVault();
    const broker = await startBroker(
      testConfig(vault, { sqlite: { path: `${dir.path}/u.db` } }, { rule: [{ probe: { kind: 'scope_denials', action: 'revoke_token', threshold: 2, window: '1m' } }] }),
      { log: captureLog().log },
    );
    try {
      const base = broker.url as string;
      const w = await api(base, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '60s' });
      const t = await api<{ jti: string }>(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'long' });
      const event = (over: Record<string, string>) => ({ time: new Date().toISOString(), decision: 'deny', code: 'ERR_SCOPE', jti: t.body.jti, role: 'long', op: 'write', resource: 'db://payments/1', remote_addr: '10.0.0.9', ...over });
      expect((await api(base, 'POST', '/v1/usage', { events: [event({})] })).body).toEqual({ accepted: 1 });
      expect((await broker.store.getLeaseByJti(t.body.jti))?.state).toBe('active');
      await api(base, 'POST', '/v1/usage', { events: [event({ resource: 'db://payments/2' })] });
      await broker.broker.anomaliesSettled();
      await waitFor(async () => (await broker.store.getLeaseByJti(t.body.jti))?.state === 'revoked' || null, 5_000, 'the lease revoked');
      expect((await broker.store.getLeaseByJti(t.body.jti))?.reason).toBe('anomaly_rule');
      expect(broker.broker.usage.firings(t.body.jti)[0]).toMatchObject({ rule: 'probe', outcome: expect.stringContaining('token revoked') });
      expect(broker.broker.usage.lastUse(t.body.jti)).toMatchObject({ resource: 'db://payments/2', remote_addr: '10.0.0.9' });

      for (const [body, field] of [
        [{ events: 'x' }, 'events'],
        [{ events: [{ decision: 'maybe', op: 'read' }] }, 'events[0].decision'],
        [{ events: [{ decision: 'allow', op: 'read', token: 'eyJ' }] }, 'events[0].token'],
        [{ events: [{ decision: 'allow', op: 'delete' }] }, 'events[0].op'],
        [{ events: Array.from({ length: 1001 }, () => ({ decision: 'allow', op: 'read' })) }, 'events'],
      ] as const) {
        const r = await api(base, 'POST', '/v1/usage', body);
        expect(r.status).toBe(400);
        expect(r.text).toContain(field);
      }
    } finally {
      await broker.stop();
      await vault.close();
    }
  }, 20_000);

  it('refuses a bad rule block at start, naming it', () => {
    const bad = (rule: unknown) => () => parseConfig({ vault: { address: 'http://127.0.0.1:1', auth: { token: { token: 't' } } }, rule }, process.cwd(), {});
    expect(bad([{ probe: { kind: 'nope', action: 'alert' } }])).toThrow('rule "probe".kind must be one of');
    expect(bad([{ probe: { kind: 'scope_denials', action: 'explode' } }])).toThrow('rule "probe".action must be one of');
    expect(bad([{ probe: { kind: 'scope_denials', action: 'alert', window: 'soon' } }])).toThrow(/rule "probe"\.window/);
  });
});

describe("the README's rule and audit blocks", () => {
  it('load as the broker config reads them', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const { loadConfig } = await import('../../src/broker/config.ts');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const i = readme.indexOf('```hcl\nrule "probe" {');
    expect(i).toBeGreaterThan(0);
    const block = readme.slice(i + 7, readme.indexOf('```', i + 7));
    const file = `${dir.path}/readme-rules.hcl`;
    writeFileSync(file, `vault {\n  address = "http://127.0.0.1:8200"\n  auth "token" {\n    token = "x"\n  }\n}\n${block}`);
    const config = await loadConfig(file, {});
    expect(config.rules.map((r) => r.kind).sort()).toEqual(['after_revocation', 'dpop_replay', 'foreign_address', 'rate_spike', 'scope_denials']);
    expect(config.audit).toMatchObject({ filePath: '/var/log/tvm/broker-audit.log', checkpointIntervalMs: 60_000 });
  });
});
