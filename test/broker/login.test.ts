// The broker's own Vault login by AppRole and by JWT: it starts, vends and
// renews for a workload, keeps its own short-lived token renewed, logs in
// again when that token reaches its max ttl, and the workload's lease outlives
// the broker token it was issued under (re-fetched before that token dies),
// also when that token belonged to a broker process that was killed.

import type { KeyObject } from 'node:crypto';
import { exportSPKI, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, startBroker, type BrokerConfig, type RunningBroker } from '../../src/broker/index.ts';
import { api, captureLog, leaseAlive, sleep, startDevVault, tempDir, waitFor, type DevVault } from './helpers.ts';
import { keyPair } from '../keys.ts';

/** What the broker needs: issue on its roles, renew, revoke, look up and list leases. */
const BROKER_POLICY = `
path "tvm/creds/*" { capabilities = ["read", "update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "sys/leases/lookup" { capabilities = ["update"] }
path "sys/leases/lookup/tvm/creds/*" { capabilities = ["list", "sudo"] }
`;

/** The broker's own token: renewed every ~4s, dead after 12s unless it logs in again (at ~8s, when a renewal is capped). */
const SELF_TTL = { token_ttl: '6s', token_max_ttl: '12s' };

let vault: DevVault;
const dir = tempDir();
let signer: { key: KeyObject; pem: string };
const ISSUER = 'https://ci.example.test';

beforeAll(async () => {
  vault = await startDevVault();
  // Renewed every ~1.3s: more often than the broker's token gives notice of its end.
  await vault.conn.write('tvm/roles/brisk', { read: ['db://orders/*'], ttl: '2s', max_ttl: '60s' });
  // Renewed every 20s: its renewal would come long after the broker token it was issued under died.
  await vault.conn.write('tvm/roles/slow', { read: ['db://orders/*'], ttl: '30s', max_ttl: '1h' });
  await vault.conn.write('sys/policies/acl/tvm-broker', { policy: BROKER_POLICY });

  await vault.conn.write('sys/auth/approle', { type: 'approle' });
  await vault.conn.write('auth/approle/role/tvm-broker', { token_policies: ['tvm-broker'], ...SELF_TTL });

  const { publicKey, privateKey } = keyPair('ES256');
  signer = { key: privateKey, pem: await exportSPKI(publicKey) };
  await vault.conn.write('sys/auth/jwt', { type: 'jwt' });
  await vault.conn.write('auth/jwt/config', { jwt_validation_pubkeys: [signer.pem], bound_issuer: ISSUER });
  await vault.conn.write('auth/jwt/role/tvm-broker', {
    role_type: 'jwt',
    bound_audiences: ['vault'],
    user_claim: 'sub',
    token_policies: ['tvm-broker'],
    ...SELF_TTL,
  });
});

afterAll(async () => {
  await vault?.close();
  dir.remove();
});

function config(name: string, auth: Record<string, unknown>, roles = ['brisk']): BrokerConfig {
  return parseConfig(
    {
      vault: { address: vault.address, auth, timeout: '2s' },
      store: { sqlite: { path: `${dir.path}/${name}.db` } },
      listener: { address: '127.0.0.1:0' },
      roles,
      renewal: { backoff_min: '200ms', backoff_max: '1s', replace_grace: '300ms', expiry_margin: '100ms' },
      loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: '5s' },
      revocation: { max_attempts: 3 },
    },
    process.cwd(),
    {},
  );
}

const REFETCHED = 'the broker login that obtained it ends: re-fetched under the current login; old lease revoked after grace';

/** Log lines (parsed) with the given message. */
const withMsg = (lines: string[], msg: string) => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

/**
 * Registers a workload, takes a `brisk` token (ttl 2s) and keeps asking for it
 * for 14s: longer than the broker's first token lives (max ttl 12s). The lease
 * the workload holds stays alive in Vault all along.
 */
async function vendAndOutliveSelfToken(broker: RunningBroker, lines: string[], secrets: string[]): Promise<void> {
  const base = broker.url as string;
  const w = await api(base, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '30s' });
  expect(w.status).toBe(201);
  const first = await api<Record<string, string>>(base, 'POST', '/v1/tokens', { workload: w.body.id, role: 'brisk' });
  expect(first.status, first.text).toBe(200);
  const jti = first.body.jti;
  const tokens = new Set([first.body.token]);
  const end = Date.now() + 14_000;
  while (Date.now() < end) {
    await sleep(500);
    const now = await api<Record<string, string>>(base, 'GET', `/v1/tokens/${jti}`);
    expect(now.status, now.text).toBe(200);
    expect(await leaseAlive(vault.conn, now.body.lease_id)).toBe(true);
    tokens.add(now.body.token);
  }
  // Renewed (new tokens for the same jti, or a successor lease before the broker's token died).
  expect(tokens.size).toBeGreaterThan(1);
  const renewals = (await broker.store.listLeases(['active', 'revoking', 'revoked'], 100)).reduce((n, l) => n + l.renewals, 0);
  expect(renewals).toBeGreaterThanOrEqual(1);
  // Its own token: renewed, and re-obtained by login once renewal stopped extending it.
  expect(withMsg(lines, 'renewed own Vault token').length).toBeGreaterThanOrEqual(1);
  expect(withMsg(lines, 'logged in to Vault').length).toBeGreaterThanOrEqual(2);
  expect(withMsg(lines, 'logged in to Vault').slice(1).some((l) => l.why === 'max_ttl')).toBe(true);
  // Leases issued under the retired token were re-fetched under the new one before it died.
  expect(withMsg(lines, REFETCHED).length).toBeGreaterThanOrEqual(1);
  // Nothing failed against Vault: no 403 after the first token's expiry, no lease lost.
  expect(withMsg(lines, 'renewal failed; backing off')).toEqual([]);
  expect(withMsg(lines, 'Vault no longer knows the lease')).toEqual([]);
  const all = lines.join('\n');
  for (const t of [...tokens, ...secrets]) expect(all.includes(t)).toBe(false);
  for (const t of tokens) expect(all.includes(t.split('.')[2])).toBe(false);
}

/**
 * A broker killed (stopped without revoking: what SIGKILL leaves) and started again on the same
 * registry with a new login of the same identity. The killed process's token dies within its ttl
 * (6s) and Vault revokes what it obtained; the workload's jtis keep serving live leases all along.
 */
async function outliveKilledProcess(name: string, auth: () => Promise<Record<string, unknown>>, secrets: string[]): Promise<void> {
  const first = await startBroker(config(name, await auth(), ['brisk', 'slow']), { log: captureLog().log });
  const base1 = first.url as string;
  const w = await api(base1, 'POST', '/v1/workloads', { name: 'svc', heartbeat_interval: '60s' });
  const held: Array<Record<string, string>> = [];
  for (const role of ['brisk', 'slow']) {
    const t = await api<Record<string, string>>(base1, 'POST', '/v1/tokens', { workload: w.body.id, role });
    expect(t.status, t.text).toBe(200);
    held.push(t.body);
  }
  const firstLogin = (await first.store.getLeaseByJti(held[0].jti))?.loginId;
  expect(firstLogin).toBeTruthy();
  await first.stop({ force: true }); // no revocation at shutdown: the leases stay, as after SIGKILL
  const { log, lines } = captureLog();
  const second = await startBroker(config(name, await auth(), ['brisk', 'slow']), { log });
  try {
    const base2 = second.url as string;
    expect((await second.store.logins()).find((l) => l.id === firstLogin)?.final).toBe(true);
    // Past the first token's death (6s at most after its last renewal) and its sweep.
    const end = Date.now() + 9_000;
    const tokens = new Set<string>();
    while (Date.now() < end) {
      for (const h of held) {
        const now = await api<Record<string, string>>(base2, 'GET', `/v1/tokens/${h.jti}`);
        expect(now.status, now.text).toBe(200);
        expect(await leaseAlive(vault.conn, now.body.lease_id)).toBe(true);
        tokens.add(now.body.token);
      }
      await sleep(300);
    }
    for (const h of held) {
      expect(await leaseAlive(vault.conn, h.lease_id)).toBe(false);
      const old = await second.store.getLeaseByJti(h.jti);
      expect(old?.replacedBy).toBeTruthy();
      expect((await second.store.getLease(old!.replacedBy!))?.loginId).not.toBe(firstLogin);
    }
    expect(withMsg(lines, REFETCHED).length).toBeGreaterThanOrEqual(2);
    expect(withMsg(lines, 'Vault no longer knows the lease')).toEqual([]);
    const all = lines.join('\n');
    for (const t of [...tokens, ...secrets]) expect(all.includes(t)).toBe(false);
  } finally {
    await second.stop();
  }
}

describe('the broker logs in to Vault', () => {
  it('by AppRole: vends, renews, keeps its own token renewed and logs in again at max ttl', async () => {
    const roleId = ((await vault.conn.read('auth/approle/role/tvm-broker/role-id'))?.data as { role_id: string }).role_id;
    const secretId = ((await vault.conn.write('auth/approle/role/tvm-broker/secret-id', {}))?.data as { secret_id: string }).secret_id;
    const { log, lines } = captureLog();
    const broker = await startBroker(config('approle', { approle: { role_id: roleId, secret_id: secretId } }), { log });
    try {
      const login = withMsg(lines, 'logged in to Vault');
      expect(login).toHaveLength(1);
      expect(login[0]).toMatchObject({ method: 'approle', ttl_s: 6, renewable: true });
      await vendAndOutliveSelfToken(broker, lines, [secretId]);
    } finally {
      await broker.stop();
    }
  }, 30_000);

  it('by JWT: vends, renews, keeps its own token renewed and logs in again at max ttl', async () => {
    const jwt = await new SignJWT({ iss: ISSUER, sub: 'tvm-broker@ci', aud: ['vault'] })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(signer.key);
    const { log, lines } = captureLog();
    const broker = await startBroker(config('jwt', { jwt: { role: 'tvm-broker', jwt } }), { log });
    try {
      expect(withMsg(lines, 'logged in to Vault')[0]).toMatchObject({ method: 'jwt', ttl_s: 6, renewable: true });
      await vendAndOutliveSelfToken(broker, lines, [jwt]);
    } finally {
      await broker.stop();
    }
  }, 30_000);

  it('by AppRole, killed and restarted: the leases its killed process obtained are re-fetched before that token dies', async () => {
    const roleId = ((await vault.conn.read('auth/approle/role/tvm-broker/role-id'))?.data as { role_id: string }).role_id;
    const secretIds: string[] = [];
    const auth = async () => {
      const secretId = ((await vault.conn.write('auth/approle/role/tvm-broker/secret-id', {}))?.data as { secret_id: string }).secret_id;
      secretIds.push(secretId);
      return { approle: { role_id: roleId, secret_id: secretId } };
    };
    await outliveKilledProcess('approle-restart', auth, secretIds);
  }, 30_000);

  it('by JWT, killed and restarted: the leases its killed process obtained are re-fetched before that token dies', async () => {
    const jwts: string[] = [];
    const auth = async () => {
      const jwt = await new SignJWT({ iss: ISSUER, sub: 'tvm-broker@ci', aud: ['vault'] }).setProtectedHeader({ alg: 'ES256' }).setIssuedAt().setExpirationTime('10m').sign(signer.key);
      jwts.push(jwt);
      return { jwt: { role: 'tvm-broker', jwt } };
    };
    await outliveKilledProcess('jwt-restart', auth, jwts);
  }, 30_000);

  it('refuses to start with a login Vault rejects, naming the method and not the secret', async () => {
    const { log } = captureLog();
    const err = await startBroker(config('bad', { approle: { role_id: 'no-such-role', secret_id: 'sekrit-value-123' } }), { log }).then(
      () => new Error('started'),
      (e: unknown) => e as Error,
    );
    expect(err.message).toMatch(/^Vault login \(approle\): /);
    expect(err.message).not.toContain('sekrit-value-123');
  });

  it('reads the JWT again from its file at each login (a projected token that rotates)', async () => {
    const sign = () =>
      new SignJWT({ iss: ISSUER, sub: 'tvm-broker@ci', aud: ['vault'] }).setProtectedHeader({ alg: 'ES256' }).setIssuedAt().setExpirationTime('10m').sign(signer.key);
    const { writeFileSync } = await import('node:fs');
    const file = `${dir.path}/broker.jwt`;
    writeFileSync(file, `${await sign()}\n`);
    const { log, lines } = captureLog();
    const broker = await startBroker(config('jwtfile', { jwt: { role: 'tvm-broker', jwt_file: file } }), { log });
    try {
      // The first JWT is replaced by a garbage one: the next login must fail (it was read again), then recover.
      writeFileSync(file, 'not-a-jwt\n');
      await waitFor(() => withMsg(lines, 'Vault login failed; retrying').length > 0, 15_000, 'a failed re-login with the bad file');
      writeFileSync(file, `${await sign()}\n`);
      await waitFor(() => withMsg(lines, 'logged in to Vault').length >= 2, 8_000, 'a re-login with the good file');
    } finally {
      await broker.stop();
    }
  }, 30_000);
});
