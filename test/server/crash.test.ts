// Crash consistency of a persistent server (hardening issue, items 8-10): the
// process SIGKILLs itself at a fault-injection point just before a lease and
// the engine's records are committed, then starts again on the same storage.
// Nothing the client was not told about is left behind: no active-lease record
// without its lease (the quota), no revocation acknowledged twice or half
// (the list's versions); and leases that expired while it was down are gone
// before it answers its first request.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, exited, killAll, killHard, startProcess, writeConfig, type ServerProcess } from './fixtures/server-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-crash-'));
let config: string;
let root: string;

afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

beforeAll(async () => {
  config = await writeConfig(dir);
  const first = await startProcess(config);
  root = first.rootToken;
  expect((await call(first.address, root, 'POST', 'tvm/roles/capped', { read: ['db://c/*'], ttl: '30m', max_ttl: '1h', max_active_leases: 2 })).status).toBe(204);
  expect((await call(first.address, root, 'POST', 'tvm/roles/long', { read: ['db://l/*'], ttl: '30m', max_ttl: '1h' })).status).toBe(204);
  await killHard(first.child);
}, 60_000);

/** Starts the server so that it dies at `point`, sends `request`, and waits for the death. */
async function crashDuring(point: string, request: (s: ServerProcess) => Promise<{ status: number }>): Promise<void> {
  const s = await startProcess(config, point);
  const answer = await request(s);
  expect(answer.status, 'the request must not be answered: the server died before its commit').toBe(0);
  await exited(s.child);
  expect(s.child.signalCode).toBe('SIGKILL');
}

describe('a server killed between an engine write and its lease', () => {
  it('leaves no phantom active-lease record: after three crashed issues the quota of two is whole', async () => {
    for (let i = 0; i < 3; i++) {
      await crashDuring('register:before-commit', (s) => call(s.address, root, 'GET', 'tvm/creds/capped'));
    }
    const s = await startProcess(config);
    try {
      expect((await call(s.address, root, 'LIST', 'sys/leases/lookup/tvm/creds/capped/')).status).toBe(404);
      const one = await call(s.address, root, 'GET', 'tvm/creds/capped');
      const two = await call(s.address, root, 'GET', 'tvm/creds/capped');
      expect([one.status, two.status]).toEqual([200, 200]);
      const three = await call(s.address, root, 'GET', 'tvm/creds/capped');
      expect(three.status).toBe(429);
      expect(three.body.errors![0]).toContain('has 2 active leases');
      for (const r of [one, two]) expect((await call(s.address, root, 'PUT', 'sys/leases/revoke', { lease_id: r.body.lease_id })).status).toBe(204);
    } finally {
      await killHard(s.child);
    }
  }, 60_000);

  it('a revocation that crashed before its commit is not half done, and the list never hands out a version twice', async () => {
    let s = await startProcess(config);
    const a = await call(s.address, root, 'GET', 'tvm/creds/long');
    const b = await call(s.address, root, 'GET', 'tvm/creds/long');
    const before = (await call(s.address, '', 'GET', 'tvm/revocations')).body.data as { version: number };
    await killHard(s.child);

    await crashDuring('revoke:before-commit', (p) => call(p.address, root, 'PUT', 'sys/leases/revoke', { lease_id: a.body.lease_id }));

    s = await startProcess(config);
    try {
      // Not acknowledged, not done: the lease is live and its jti unlisted.
      expect((await call(s.address, root, 'PUT', 'sys/leases/lookup', { lease_id: a.body.lease_id })).status).toBe(200);
      const intro = await call(s.address, root, 'POST', 'tvm/introspect', { token: a.body.data!.token });
      expect(intro.body.data!.active).toBe(true);
      expect((await call(s.address, '', 'GET', 'tvm/revocations')).body.data).toMatchObject({ version: before.version });
      // Revoked now, then another: consecutive, distinct versions, each jti once.
      for (const r of [a, b]) expect((await call(s.address, root, 'PUT', 'sys/leases/revoke', { lease_id: r.body.lease_id })).status).toBe(204);
      const list = (await call(s.address, '', 'GET', 'tvm/revocations')).body.data as { version: number; revoked: Array<{ jti: string }> };
      expect(list.version).toBe(before.version + 2);
      const since = (await call(s.address, '', 'GET', `tvm/revocations?since=${before.version + 1}`)).body.data as { revoked: Array<{ jti: string }> };
      expect(since.revoked.map((e) => e.jti)).toEqual([b.body.data!.jti]);
      expect(list.revoked.filter((e) => e.jti === a.body.data!.jti)).toHaveLength(1);
    } finally {
      await killHard(s.child);
    }
  }, 60_000);

  it('a renewal that crashed before its commit leaves the lease as it was', async () => {
    let s = await startProcess(config);
    const a = await call(s.address, root, 'GET', 'tvm/creds/long');
    const before = await call(s.address, root, 'PUT', 'sys/leases/lookup', { lease_id: a.body.lease_id });
    await killHard(s.child);
    await crashDuring('renew:before-commit', (p) => call(p.address, root, 'PUT', 'sys/leases/renew', { lease_id: a.body.lease_id, increment: '50m' }));
    s = await startProcess(config);
    try {
      const after = await call(s.address, root, 'PUT', 'sys/leases/lookup', { lease_id: a.body.lease_id });
      expect(after.body.data!.expire_time).toBe(before.body.data!.expire_time);
      expect(after.body.data!.last_renewal).toBeNull();
      // Nothing to fetch: no renewal happened.
      expect((await call(s.address, root, 'POST', 'tvm/creds/long', { jti: a.body.data!.jti })).status).toBe(400);
      expect((await call(s.address, root, 'PUT', 'sys/leases/revoke', { lease_id: a.body.lease_id })).status).toBe(204);
    } finally {
      await killHard(s.child);
    }
  }, 60_000);
});

describe('leases that expired while the server was down', () => {
  it('are revoked before the server answers: not listed, not looked up, their tokens inactive', async () => {
    let s = await startProcess(config);
    const n = 200;
    const issued: Array<{ lease: string; token: string }> = [];
    for (let i = 0; i < n; i++) {
      const c = await call(s.address, root, 'GET', 'tvm/creds/long');
      // A token valid for an hour under a lease cut to 1 s: only the lease's revocation ends the token.
      expect((await call(s.address, root, 'PUT', 'sys/leases/renew', { lease_id: c.body.lease_id, increment: '1s' })).status).toBe(200);
      issued.push({ lease: c.body.lease_id!, token: c.body.data!.token as string });
    }
    await killHard(s.child);
    await new Promise((r) => setTimeout(r, 1500));
    s = await startProcess(config);
    try {
      // The first request after start.
      expect((await call(s.address, root, 'LIST', 'sys/leases/lookup/tvm/creds/long/')).status).toBe(404);
      expect((await call(s.address, root, 'PUT', 'sys/leases/lookup', { lease_id: issued[n - 1].lease })).status).toBe(400);
      for (const { token } of [issued[0], issued[n - 1]]) {
        expect((await call(s.address, root, 'POST', 'tvm/introspect', { token })).body.data).toEqual({ active: false });
      }
      const list = (await call(s.address, '', 'GET', 'tvm/revocations')).body.data as { revoked: Array<{ jti: string }> };
      expect(list.revoked.length).toBeGreaterThanOrEqual(n);
    } finally {
      await killHard(s.child);
    }
  }, 120_000);
});
