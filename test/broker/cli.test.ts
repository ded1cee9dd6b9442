// `tvm broker status | leases | revoke | run` in-process through main(), against
// a running broker on the dev server: what is printed on stdout, the one
// stderr line and the exit code of each failure.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { closedPort, expectOneErrorLine, run } from '../cli/helpers.ts';
import { api, captureLog, leaseAlive, startDevVault, tempDir, testConfig, waitFor, type DevVault } from './helpers.ts';

let vault: DevVault;
let broker: RunningBroker;
let base: string;
const dir = tempDir();

beforeAll(async () => {
  vault = await startDevVault();
  broker = await startBroker(testConfig(vault, { sqlite: { path: `${dir.path}/broker.db` } }), { log: captureLog().log });
  base = broker.url as string;
});

afterAll(async () => {
  await broker?.stop();
  await vault?.close();
  dir.remove();
});

async function workload(name = 'orders'): Promise<string> {
  const r = await api(base, 'POST', '/v1/workloads', { name, heartbeat_interval: '60s' });
  return r.body.id as string;
}

async function token(w: string, role = 'long'): Promise<Record<string, string>> {
  const r = await api<Record<string, string>>(base, 'POST', '/v1/tokens', { workload: w, role });
  expect(r.status, r.text).toBe(200);
  return r.body;
}

describe('tvm broker status', () => {
  it('prints the replica, the store and the counts, as a table or JSON, with --broker or TVM_BROKER_ADDR', async () => {
    const w = await workload();
    await token(w);
    const table = await run(['broker', 'status', '--broker', base]);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(/^Key\s+Value\n---\s+-----\n/);
    expect(table.stdout).toMatch(/^replica\s+\S+$/m);
    expect(table.stdout).toMatch(/^store\s+sqlite$/m);
    expect(table.stdout).toMatch(/^leases\s+.*active/m);
    const json = await run(['broker', 'status', '--format', 'json'], { TVM_BROKER_ADDR: base });
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout) as { store: string; leases: Record<string, number>; workloads: Record<string, number> };
    expect(s.store).toBe('sqlite');
    expect(s.leases.active).toBeGreaterThanOrEqual(1);
    expect(s.workloads.active).toBeGreaterThanOrEqual(1);
  });

  it('a broker that is not there: exit 1 and one line naming the address', async () => {
    const port = await closedPort();
    const r = await run(['broker', 'status', '--broker', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(expectOneErrorLine(r.stderr)).toBe(`tvm: cannot reach the broker at http://127.0.0.1:${port}: connection refused`);
  });
});

describe('tvm broker leases', () => {
  it('lists live leases with their workload, role, state and expiry; --state filters; --format json', async () => {
    const w = await workload('lister');
    const t = await token(w, 'short');
    const r = await run(['broker', 'leases', '--broker', base]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header.split(/\s+/)).toEqual(['id', 'workload', 'role', 'state', 'expires_at', 'renewals', 'reason', 'cloud']);
    const row = await broker.store.getLeaseByJti(t.jti);
    const mine = rows.find((l) => l.startsWith(row!.id));
    expect(mine?.split(/\s+/)).toEqual([row!.id, w, 'short', 'active', expect.stringMatching(/^\d{4}-\d\d-\d\dT/), expect.stringMatching(/^\d+$/), '-', '-']);
    // No token in the listing, table or JSON.
    const json = await run(['broker', 'leases', '--broker', base, '--format', 'json', '--state', 'active', '--limit', '500']);
    expect(json.code).toBe(0);
    const leases = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(leases.find((l) => l.jti === t.jti)).toMatchObject({ workload: w, role: 'short', state: 'active', lease_id: t.lease_id });
    for (const out of [r.stdout, json.stdout]) expect(out.includes(t.token)).toBe(false);
    const none = await run(['broker', 'leases', '--broker', base, '--state', 'irrevocable']);
    expect(none).toMatchObject({ code: 0, stdout: 'id  workload  role  state  expires_at  renewals  reason  cloud\n' });
  });

  it('a bad --state or --limit: the broker\'s message on one line, exit 1', async () => {
    const bad = await run(['broker', 'leases', '--broker', base, '--state', 'zombie']);
    expect(bad.code).toBe(1);
    expect(expectOneErrorLine(bad.stderr)).toMatch(/^tvm: broker: state: "zombie" is not one of intent, active/);
    const lim = await run(['broker', 'leases', '--broker', base, '--limit', '0']);
    expect(expectOneErrorLine(lim.stderr)).toBe('tvm: broker: limit: must be an integer from 1 to 100000');
  });
});

describe('tvm broker revoke', () => {
  it('revokes a token by jti, by Vault lease id, and a whole workload with --workload', async () => {
    const w = await workload('revokee');
    const a = await token(w, 'long');
    const b = await token(w, 'short');
    const byJti = await run(['broker', 'revoke', a.jti, '--broker', base]);
    const rowA = await broker.store.getLeaseByJti(a.jti);
    expect(byJti).toMatchObject({ code: 0, stderr: '', stdout: `Success! Lease ${rowA!.id} is revoking\n` });
    await waitFor(async () => !(await leaseAlive(vault.conn, a.lease_id)), 3_000, 'the first lease revoked');
    // Again: the lease is already revoked, and says so.
    const again = await run(['broker', 'revoke', a.jti, '--broker', base]);
    expect(again.stdout).toBe(`Success! Lease ${rowA!.id} is revoked\n`);

    const c = await token(await workload('second'), 'long');
    const byLease = await run(['broker', 'revoke', c.lease_id], { TVM_BROKER_ADDR: base });
    expect(byLease.code).toBe(0);
    expect(byLease.stdout).toMatch(/^Success! Lease [0-9a-f-]{36} is revoking\n$/);
    await waitFor(async () => !(await leaseAlive(vault.conn, c.lease_id)), 3_000, 'the lease named by its Vault id revoked');

    const all = await run(['broker', 'revoke', '--workload', w, '--broker', base]);
    expect(all).toMatchObject({ code: 0, stdout: `Success! Workload ${w} ended; revoking 1 lease(s)\n` });
    await waitFor(async () => !(await leaseAlive(vault.conn, b.lease_id)), 3_000, 'the workload\'s lease revoked');
    expect((await api(base, 'GET', `/v1/workloads/${w}`)).body).toMatchObject({ state: 'ended', reason: 'workload_ended' });
  });

  it('unknown ids and a missing id: one stderr line, no stdout', async () => {
    const unknown = await run(['broker', 'revoke', 'no-such-jti', '--broker', base]);
    expect(unknown).toMatchObject({ code: 1, stdout: '' });
    expect(expectOneErrorLine(unknown.stderr)).toBe('tvm: broker: no lease with jti or id no-such-jti');
    const wl = await run(['broker', 'revoke', '--workload', 'no-such-workload', '--broker', base]);
    expect(expectOneErrorLine(wl.stderr)).toBe('tvm: broker: workload no-such-workload is not registered');
    const missing = await run(['broker', 'revoke', '--broker', base]);
    expect(missing.code).toBe(2);
    expect(expectOneErrorLine(missing.stderr)).toMatch(/^tvm: missing required argument 'id'/);
  });
});

describe('tvm broker run', () => {
  const bad = (name: string, text: string): string => {
    const path = `${dir.path}/${name}`;
    writeFileSync(path, text);
    return path;
  };

  const cases: Array<[string, string, string, RegExp]> = [
    ['no vault block', 'empty.hcl', 'listener { address = "127.0.0.1:0" }\n', /^tvm: broker config .*empty\.hcl: a vault \{ address = \.\.\. \} block is required$/],
    ['unknown auth method', 'kerberos.hcl', 'vault {\n  address = "http://127.0.0.1:1"\n  auth "kerberos" {}\n}\n', /: vault\.auth "kerberos" is not one of token, approle, jwt$/],
    ['a public listener', 'public.hcl', 'vault { address = "http://127.0.0.1:1" }\nlistener { address = "0.0.0.0:8300" }\n', /: listener\.address 0\.0\.0\.0:8300 must be a loopback address/],
    ['not HCL', 'garbage.hcl', 'vault {{{ nope\n', /garbage\.hcl is not valid HCL/],
    ['bad JSON', 'bad.json', '{"vault": ', /bad\.json is not valid JSON/],
    ['a bad duration', 'dur.hcl', 'vault { address = "http://127.0.0.1:1" }\nrenewal { backoff_min = "soon" }\n', /renewal\.backoff_min: "soon" is not a duration/],
  ];
  for (const [what, file, text, message] of cases) {
    it(`refuses a config with ${what}: exit 2, one stderr line, nothing started`, async () => {
      const r = await run(['broker', 'run', '--config', bad(file, text)]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(expectOneErrorLine(r.stderr)).toMatch(message);
    });
  }

  it('refuses a missing config file, and a missing --config', async () => {
    const r = await run(['broker', 'run', '--config', `${dir.path}/nope.hcl`]);
    expect(r.code).toBe(2);
    expect(expectOneErrorLine(r.stderr)).toMatch(/^tvm: broker config: cannot read .*nope\.hcl: ENOENT/);
    const none = await run(['broker', 'run']);
    expect(none.code).toBe(2);
    expect(expectOneErrorLine(none.stderr)).toMatch(/--config <file>/);
  });

  it('runs with a good config, serves the CLI, and stops on a signal (exit 0, stdout clean)', async () => {
    const path = bad(
      'good.hcl',
      `vault {\n  address = "${vault.address}"\n  auth "token" { token = "${vault.rootToken}" }\n}\nstore "sqlite" { path = "run.db" }\nlistener { address = "127.0.0.1:0" }\nlog {\n  level = "info"\n  destination = "logs/broker.log"\n}\nshutdown_timeout = "5s"\n`,
    );
    let signal: (s: string) => void = () => undefined;
    let stderr = '';
    let stdout = '';
    const { main } = await import('../../src/cli/main.ts');
    const done = main(['node', 'tvm', 'broker', 'run', '--config', path], {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
      env: {},
      readStdin: async () => '',
      onSignal: (h) => {
        signal = h;
        return () => undefined;
      },
      exit: () => undefined,
    });
    const url = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], 10_000, 'the listening line').then(String);
    const status = await run(['broker', 'status', '--broker', url, '--format', 'json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ store: 'sqlite', leases: {} });
    signal('SIGTERM');
    expect(await done).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toBe(`tvm broker: listening on ${url}\n`);
    // The configured destination (relative to the config file's folder) got the log lines.
    const logged = readFileSync(`${dir.path}/logs/broker.log`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(logged.map((l) => l.msg)).toEqual(expect.arrayContaining(['broker started', 'broker stopped']));
  });
});

describe('the daemon\'s logs', () => {
  const logOnce = (to: string | undefined) => {
    const opts = to === undefined ? '' : JSON.stringify({ to });
    const code = `import { createLogger } from './src/broker/index.ts'; createLogger(${opts}).info({ n: 1 }, 'hello');`;
    return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
  };

  it('go to stderr by default, so stdout stays clean', () => {
    const r = logOnce(undefined);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr.trim())).toMatchObject({ msg: 'hello', n: 1, svc: 'tvm-broker' });
  });

  it('go to stdout only when configured so', () => {
    const r = logOnce('stdout');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ msg: 'hello' });
  });
});
