// `tvm creds <role> --cloud <c>` in-process through main(), against a broker on
// the dev server with the provider double: env lines a shell can eval, the
// whole answer as JSON, the broker by URL or unix socket, the usage errors; and
// one real shell: when it exits, the broker revokes the lease and tears the grant down.

import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { exportLines } from '../../src/cli/commands/creds.ts';
import { expectOneErrorLine, run } from '../cli/helpers.ts';
import { createCloudDouble } from './fixtures/cloud-double.ts';
import { api, captureLog, startDevVault, tempDir, testConfig, waitFor, writeCloudRoles, type DevVault } from './helpers.ts';

let vault: DevVault;
let broker: RunningBroker;
let base: string;
const dir = tempDir();
const socket = `${dir.path}/broker.sock`;
const cloud = createCloudDouble({ control: { life: 60_000 } });

beforeAll(async () => {
  vault = await startDevVault();
  await writeCloudRoles(vault.conn);
  const config = testConfig(vault, { sqlite: { path: `${dir.path}/broker.db` } }, { roles: ['logs-long'], listener: { address: '127.0.0.1:0', socket } });
  broker = await startBroker(config, { log: captureLog().log, providers: { aws: cloud.provider } });
  base = broker.url as string;
});

afterAll(async () => {
  await broker?.stop();
  await vault?.close();
  dir.remove();
});

interface Answer {
  token: string;
  jti: string;
  workload: string;
  cloud_credential: { cloud: string; env: Record<string, string> };
}

describe('tvm creds --cloud', () => {
  it('--format env prints export lines of the credential\'s variables that a shell can eval', async () => {
    const r = await run(['creds', 'logs-long', '--cloud', 'aws', '--format', 'env', '--broker', base]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split('=')[0])).toEqual(['export AWS_ACCESS_KEY_ID', 'export AWS_SECRET_ACCESS_KEY', 'export AWS_SESSION_TOKEN', 'export WEIRD']);
    expect(lines[0]).toMatch(/^export AWS_ACCESS_KEY_ID='ASIADOUBLE\d+'$/);
    expect(lines[3]).toBe(`export WEIRD='it'\\''s'`);
    const sh = spawnSync('sh', ['-c', `eval "$1"; printf '%s|%s' "$AWS_ACCESS_KEY_ID" "$WEIRD"`, 'sh', r.stdout], { encoding: 'utf8' });
    expect(sh.stdout).toBe(`${lines[0].slice("export AWS_ACCESS_KEY_ID='".length, -1)}|it's`);
  });

  it('registers a tvm-cli workload whose liveness is the invoking shell (the parent process)', async () => {
    const r = await run(['creds', 'logs-long', '--cloud', 'aws', '--format', 'json'], { TVM_BROKER_ADDR: base });
    expect(r.code).toBe(0);
    const a = JSON.parse(r.stdout) as Answer;
    expect(a.cloud_credential.cloud).toBe('aws');
    expect(a.token.split('.')).toHaveLength(3);
    const w = await api(base, 'GET', `/v1/workloads/${a.workload}`);
    expect(w.body).toMatchObject({ name: 'tvm-cli', pid: process.ppid, heartbeat_interval_ms: null, state: 'active' });
  });

  it('--workload uses a registered workload; a unix socket path as --broker', async () => {
    const w = await api(base, 'POST', '/v1/workloads', { name: 'ci-job', heartbeat_interval: '60s' });
    const first = await run(['creds', 'logs-long', '--cloud', 'aws', '--workload', String(w.body.id), '--broker', socket, '--format', 'json']);
    expect(first.code).toBe(0);
    const a = JSON.parse(first.stdout) as Answer & { cached: boolean };
    expect(a).toMatchObject({ workload: w.body.id, cached: false });
    // The same workload, role and cloud: the cached lease and its credential.
    const again = await run(['creds', 'logs-long', '--cloud', 'aws', '--workload', String(w.body.id), '--format', 'json'], { TVM_BROKER_ADDR: socket });
    expect(JSON.parse(again.stdout)).toMatchObject({ jti: a.jti, cached: true, cloud_credential: a.cloud_credential });
  });

  it('usage errors exit 2 with one line: no broker address, --broker without --cloud, an unknown cloud, a cloud the broker lacks', async () => {
    const none = await run(['creds', 'logs-long', '--cloud', 'aws']);
    expect(none.code).toBe(2);
    expect(expectOneErrorLine(none.stderr)).toBe('tvm: --cloud goes through the broker: give --broker <url or unix socket path> or set TVM_BROKER_ADDR');
    const stray = await run(['creds', 'logs-long', '--broker', base]);
    expect(stray.code).toBe(2);
    expect(expectOneErrorLine(stray.stderr)).toBe('tvm: --broker and --workload go with --cloud');
    const ibm = await run(['creds', 'logs-long', '--cloud', 'ibm', '--broker', base]);
    expect(ibm.code).toBe(2);
    expect(expectOneErrorLine(ibm.stderr)).toMatch(/option '--cloud <cloud>' argument 'ibm' is invalid/);
    const gcp = await run(['creds', 'logs-long', '--cloud', 'gcp', '--broker', base]);
    expect(gcp).toMatchObject({ code: 2, stdout: '' });
    expect(expectOneErrorLine(gcp.stderr)).toBe('tvm: broker: cloud: this broker has no cloud "gcp" block (configured: aws)');
    const gone = await run(['creds', 'logs-long', '--cloud', 'aws', '--broker', 'http://127.0.0.1:1']);
    expect(gone.code).toBe(1);
    expect(expectOneErrorLine(gone.stderr)).toBe('tvm: cannot reach the broker at http://127.0.0.1:1: connection refused');
  });

  it('--pid must be a process id: malformed and missing values are usage errors', async () => {
    for (const args of [['--pid', 'abc'], ['--pid', '-5'], ['--pid', '9'.repeat(400)], ['--pid']]) {
      const r = await run(['creds', 'logs-long', '--cloud', 'aws', '--broker', base, ...args], {});
      expect(r.code, args.join(' ')).toBe(2);
      expect(expectOneErrorLine(r.stderr).length).toBeLessThan(600);
    }
  });

  it('quotes every value, and skips names a shell could not export', () => {
    expect(exportLines({ A: "a'b", B: '$(rm -rf /)', 'not a name': 'x', C: '' })).toBe(`export A='a'\\''b'\nexport B='$(rm -rf /)'\nexport C=''\n`);
  });

  it('in a real shell: eval works, and when the shell exits the broker revokes the lease and tears the grant down', async () => {
    const before = new Set(Object.keys(cloud.state().objects));
    // Not spawnSync: the broker answering it runs in this process.
    const child = spawn('sh', ['-c', `eval "$(${process.execPath} bin/tvm.js creds logs-long --cloud aws --format env)" && printf '%s' "$AWS_ACCESS_KEY_ID"`], {
      env: { ...process.env, TVM_BROKER_ADDR: base },
    });
    const sh = { stdout: '', stderr: '', status: null as number | null };
    child.stdout.on('data', (c: Buffer) => (sh.stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (sh.stderr += c.toString()));
    sh.status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(sh.status, sh.stderr).toBe(0);
    expect(sh.stdout).toMatch(/^ASIADOUBLE\d+$/);
    const created = Object.keys(cloud.state().objects).filter((o) => !before.has(o));
    expect(created).toHaveLength(1);
    // The shell has exited: the broker's liveness check ends its workload, revokes the lease and tears the grant down.
    await waitFor(() => cloud.state().objects[created[0]] === undefined, 5_000, 'the teardown after the shell exited');
    const grantId = cloud.state().calls.find((c) => c.op === 'issue' && `tvm-${c.grantId}` === created[0])!.grantId;
    // The cloud object goes before the registry records it: wait for the row too.
    await waitFor(async () => (await broker.store.getGrant(grantId))?.state === 'done', 5_000, 'the grant to be done');
    expect(await broker.store.getGrant(grantId)).toMatchObject({ state: 'done', reason: 'process_exited' });
  });

  it('through npx in a script: the credential lives as long as the script\'s shell, not the launchers or the $( ) subshell', async () => {
    const before = new Set(Object.keys(cloud.state().objects));
    // The shell evals the credential, says so, then waits for stdin to close (the test holds it open).
    const child = spawn('bash', ['-c', `eval "$(npx --no-install tvm creds logs-long --cloud aws --format env)" && printf 'ready %s\\n' "$AWS_ACCESS_KEY_ID" && read -r _`], {
      env: { ...process.env, TVM_BROKER_ADDR: base },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    await waitFor(() => out.includes('ready ASIA'), 30_000, 'the shell to eval the credential');
    const created = Object.keys(cloud.state().objects).filter((o) => !before.has(o));
    expect(created, err).toHaveLength(1);
    const grantId = cloud.state().calls.find((c) => c.op === 'issue' && `tvm-${c.grantId}` === created[0])!.grantId;
    // tvm, npm exec, sh -c and the subshell are gone; the shell lives, and so does the grant.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await broker.store.getGrant(grantId)).toMatchObject({ state: 'active' });
    const workload = await broker.store.getWorkload((await broker.store.getLease((await broker.store.getGrant(grantId))!.leaseRowId))!.workloadId);
    expect(workload?.pid).toBe(child.pid);
    child.stdin.end();
    await new Promise((resolve) => child.once('close', resolve));
    await waitFor(() => cloud.state().objects[created[0]] === undefined, 5_000, 'the teardown after the shell exited');
    await waitFor(async () => (await broker.store.getGrant(grantId))?.state === 'done', 5_000, 'the grant to be done');
    expect(await broker.store.getGrant(grantId)).toMatchObject({ state: 'done', reason: 'process_exited' });
  }, 60_000);
});
