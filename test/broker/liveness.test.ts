// Heartbeat liveness does not count the broker's own downtime: a workload whose
// heartbeats failed only because the broker was stopped, SIGKILLed or could not
// write its registry keeps a full heartbeat interval from the broker's return.
// A frozen clock for the rule, a real SIGKILLed broker process for the crash.

import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker, SqliteStore, createMetrics, type Store, type VaultGateway, type WorkloadRow } from '../../src/broker/index.ts';
import { api, captureLog, exited, leaseAlive, sleep, spawnCrashBroker, startDevVault, tempDir, waitFor, writeCrashConfig, type DevVault } from './helpers.ts';

const dir = tempDir();
const T0 = 1_700_000_000_000;
const INTERVAL = 10_000;
/** interval × (1 + the default tolerance 0.5). */
const DEAD_AFTER = 15_000;

/** Liveness never calls Vault; a gateway that says so if it is called. */
const noVault = new Proxy({} as VaultGateway, {
  get: (_t, name) => (name === 'mount' ? 'tvm' : () => Promise.reject(new Error(`Vault called (${String(name)}) in a liveness test`))),
});

/** A store whose workload calls fail while `down` (the registry unreachable). */
function flaky(store: Store): { store: Store; down: boolean } {
  const state = { down: false, store: store as Store };
  state.store = new Proxy(store, {
    get(target, name, receiver) {
      const v = Reflect.get(target, name, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (state.down && (name === 'heartbeat' || name === 'activeWorkloads')) return Promise.reject(new Error('connection refused'));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return state;
}

async function openStore(name: string): Promise<SqliteStore> {
  const store = new SqliteStore(`${dir.path}/${name}.db`);
  await store.migrate();
  return store;
}

/** A broker process as far as liveness goes: the registry, a clock, no Vault. */
function brokerAt(store: Store, clock: () => number): Broker {
  return new Broker({ store, vault: noVault, log: captureLog().log, metrics: createMetrics(), clock }, { replica: 'r' });
}

const stateOf = async (store: Store, w: WorkloadRow) => (await store.getWorkload(w.id))?.state;

/** A clock the test moves. */
const frozen = (at = T0) => {
  const c = { now: at, read: () => c.now };
  return c;
};

/** Still active when the clock reaches `deadline`, ended as heartbeat_missed one millisecond later. */
async function endsJustAfter(b: Broker, store: Store, w: WorkloadRow, clock: { now: number }, deadline: number): Promise<void> {
  clock.now = deadline;
  await b.checkTriggers();
  expect(await stateOf(store, w)).toBe('active');
  clock.now = deadline + 1;
  await b.checkTriggers();
  expect(await store.getWorkload(w.id)).toMatchObject({ state: 'ended', reason: 'heartbeat_missed' });
}

afterAll(() => dir.remove());

describe('heartbeat liveness across the broker\'s downtime (frozen clock)', () => {
  it('a broker that was down gives every heartbeat workload a full interval from its start', async () => {
    const store = await openStore('restart');
    const clock = frozen();
    const first = brokerAt(store, clock.read);
    const alive = await first.registerWorkload({ name: 'alive', heartbeatIntervalMs: INTERVAL });
    const dead = await first.registerWorkload({ name: 'dead', heartbeatIntervalMs: INTERVAL });
    clock.now += 8_000;
    await first.heartbeat(alive.id);
    await first.heartbeat(dead.id);
    // The broker dies (SIGKILL: nothing runs) and is back a minute later.
    clock.now += 60_000;
    const restartedAt = clock.now;
    const second = brokerAt(store, clock.read);
    await second.checkTriggers();
    expect(await stateOf(store, alive)).toBe('active');
    expect(await stateOf(store, dead)).toBe('active');
    // The live workload's next heartbeat lands within one interval of the broker's return.
    clock.now += INTERVAL - 1;
    await second.checkTriggers();
    await second.heartbeat(alive.id);
    // The silent one is dead once a full interval × 1.5 has passed since the broker came back, not before.
    await endsJustAfter(second, store, dead, clock, restartedAt + DEAD_AFTER);
    expect(await stateOf(store, alive)).toBe('active');
    await store.close();
  });

  it('a broker that runs on counts silence as before', async () => {
    const store = await openStore('steady');
    const clock = frozen();
    const b = brokerAt(store, clock.read);
    const w = await b.registerWorkload({ name: 'w', heartbeatIntervalMs: INTERVAL });
    await endsJustAfter(b, store, w, clock, T0 + DEAD_AFTER);
    await store.close();
  });

  it('heartbeats the registry could not record do not count against the workload', async () => {
    const real = await openStore('outage');
    const s = flaky(real);
    const clock = frozen();
    const b = brokerAt(s.store, clock.read);
    const w = await b.registerWorkload({ name: 'w', heartbeatIntervalMs: INTERVAL });
    clock.now += 5_000;
    s.down = true;
    // For a minute the workload's heartbeats fail (the broker answers 500), and so does the trigger check.
    for (let i = 0; i < 6; i++) {
      clock.now += INTERVAL;
      await expect(b.heartbeat(w.id)).rejects.toThrow(/connection refused/);
      await expect(b.checkTriggers()).rejects.toThrow(/connection refused/);
    }
    s.down = false;
    clock.now += 1_000;
    const backAt = clock.now;
    await b.checkTriggers();
    expect(await stateOf(real, w)).toBe('active');
    await endsJustAfter(b, real, w, clock, backAt + DEAD_AFTER);
    await real.close();
  });
});

describe('heartbeat liveness across a SIGKILL (real broker process)', () => {
  let vault: DevVault;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    vault = await startDevVault();
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await vault?.close();
  });

  it('a workload that heartbeats again once the broker is back keeps its workload and leases', async () => {
    const config = writeCrashConfig(dir.path, vault, 'killed', ['long']);
    const first = await spawnCrashBroker([config], children);
    // Two seconds: a heartbeat every half interval leaves a second of slack before 1.5 intervals of silence, so only
    // a stall of over a second (not a loaded machine's usual lateness) could end the workload that keeps beating.
    const interval = 2_000;
    const w = await api(first.url, 'POST', '/v1/workloads', { name: 'beats', heartbeat_interval: `${interval}ms` });
    const silent = await api(first.url, 'POST', '/v1/workloads', { name: 'silent', heartbeat_interval: `${interval}ms` });
    const t = await api<Record<string, string>>(first.url, 'POST', '/v1/tokens', { workload: w.body.id, role: 'long' });
    expect(t.status).toBe(200);
    expect((await api(first.url, 'POST', `/v1/workloads/${w.body.id}/heartbeat`)).status).toBe(200);
    first.child.kill('SIGKILL');
    await exited(first.child);
    // Down for twice an interval (past the 1.5 that ends a silent workload): every heartbeat the workload tries fails.
    await sleep(2 * interval);

    const spawnedAt = Date.now();
    const second = await spawnCrashBroker([config], children);
    const restartedAt = Date.now();
    // The workload's next heartbeat comes within one interval of the restart (here: half of one), then every half.
    await sleep(interval / 2);
    for (let i = 0; i < 3; i++) {
      const hb = await api(second.url, 'POST', `/v1/workloads/${w.body.id}/heartbeat`);
      expect(hb.status, hb.text).toBe(200);
      await sleep(interval / 2);
    }
    expect((await api(second.url, 'GET', `/v1/workloads/${w.body.id}`)).body).toMatchObject({ state: 'active', reason: null });
    expect(await leaseAlive(vault.conn, t.body.lease_id)).toBe(true);
    // The silent workload is ended after a full interval × 1.5 from the restart, not at it.
    const ended = await waitFor(async () => {
      const r = await api(second.url, 'GET', `/v1/workloads/${silent.body.id}`);
      return r.body.state === 'ended' ? r.body : null;
    }, 15_000, 'the silent workload ended');
    expect(ended?.reason).toBe('heartbeat_missed');
    // When it was ended, on the broker's clock: silence counts from when the restarted broker began serving, some
    // time between the spawn and its first line. So at least 1.5 intervals after the spawn, and far more than
    // the few hundred ms a slow pipe may add after the line (ending it at the restart would be ~0).
    const events = await api<{ events: Array<{ at: number | string; kind: string; workloadId: string | null }> }>(second.url, 'GET', '/v1/events?limit=1000');
    const endedEvent = events.body.events.find((e) => e.kind === 'workload_ended' && e.workloadId === silent.body.id);
    const endedAt = typeof endedEvent?.at === 'string' ? Date.parse(endedEvent.at) : (endedEvent?.at as number);
    expect(endedAt - spawnedAt).toBeGreaterThanOrEqual(interval * 1.5);
    expect(endedAt - restartedAt).toBeGreaterThanOrEqual(interval * 1.5 - 1_000);
    second.child.kill('SIGKILL');
    await exited(second.child);
  }, 60_000);
});
