// Shared set-up for broker tests: a dev server with short-lived roles, a
// broker config pointing at it, and a tiny JSON client for the local API.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as connectTcp, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { connect, VaultRequestError, type VaultConnection } from '../../src/client/index.ts';
import { createLogger, parseConfig, type BrokerConfig, type Logger } from '../../src/broker/index.ts';
import { startServer } from '../../src/server/index.ts';

export interface DevVault {
  address: string;
  rootToken: string;
  conn: VaultConnection;
  close(): Promise<void>;
}

/** The dev server with roles `short` (ttl 3s, max_ttl 60s) and `capped` (ttl 2s, max_ttl 5s). */
export async function startDevVault(): Promise<DevVault> {
  const server = await startServer({ dev: true, listenAddress: '127.0.0.1:0', quiet: true });
  const conn = connect({ addr: server.address, token: server.rootToken, env: {} });
  await writeRoles(conn);
  return { address: server.address, rootToken: server.rootToken as string, conn, close: () => server.close() };
}

export async function writeRoles(conn: VaultConnection): Promise<void> {
  await conn.write('tvm/roles/short', { read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '3s', max_ttl: '60s' });
  await conn.write('tvm/roles/capped', { read: ['db://orders/*'], ttl: '2s', max_ttl: '5s' });
  await conn.write('tvm/roles/long', { read: ['db://orders/*'], ttl: '30m', max_ttl: '1h' });
}

export function tempDir(prefix = 'tvm-broker-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A broker config for tests: fast loop, short backoff, the given store. */
export function testConfig(vault: { address: string; rootToken: string }, store: Record<string, unknown>, extra: Record<string, unknown> = {}): BrokerConfig {
  return parseConfig(
    {
      vault: { address: vault.address, auth: { token: { token: vault.rootToken } }, timeout: '2s' },
      store,
      listener: { address: '127.0.0.1:0' },
      roles: ['short', 'capped', 'long'],
      renewal: { backoff_min: '200ms', backoff_max: '1s', replace_grace: '500ms', expiry_margin: '100ms' },
      loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: '5s' },
      anomaly: { window: '5s', baseline: '60s', multiple: 5, min_count: 10 },
      revocation: { max_attempts: 3 },
      ...extra,
    },
    process.cwd(),
    {},
  );
}

/** A logger writing JSON lines into an array (to assert what logs hold). */
export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: dest }), lines };
}

export interface ApiAnswer<T = Record<string, unknown>> {
  status: number;
  body: T;
  text: string;
}

/** One call to the broker's local API. `raw` sends the body as is. */
export function api<T = Record<string, unknown>>(base: string, method: string, path: string, body?: unknown, raw?: string): Promise<ApiAnswer<T>> {
  const url = new URL(path, base);
  const payload = raw ?? (body === undefined ? undefined : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers: payload ? { 'content-type': 'application/json' } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = null;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = null;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T, text });
        });
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * How late this process runs while a test waits: the worst event-loop delay since start. The broker and the dev
 * server share this process, so their timers and passes are late by as much; a bound on "on time" adds it
 * instead of guessing a margin that a loaded machine exceeds.
 */
export function loopLag(): { maxMs(): number; stop(): void } {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  return { maxMs: () => h.max / 1e6, stop: () => h.disable() };
}

/** Polls until `check` returns a truthy value or the time is up. */
export async function waitFor<T>(check: () => Promise<T> | T, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Whether Vault still holds the lease: false only for Vault's own answer for a lease it does not hold. */
export async function leaseAlive(conn: VaultConnection, leaseId: string): Promise<boolean> {
  try {
    await conn.write('sys/leases/lookup', { lease_id: leaseId });
    return true;
  } catch (err) {
    // 400 "invalid lease" and nothing else: a refused connection or a 500 is no proof the lease is gone.
    if (err instanceof VaultRequestError && err.status === 400 && err.errors.join('; ') === 'invalid lease') return false;
    throw err;
  }
}

export const AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/tvm-logs';

/**
 * Roles mapping a cloud (the engine validates `iam` with the cloud modules):
 * `logs` (ttl 3s: renewed often) and `logs-long` (ttl 20m), both max_ttl 1h, mapped to AWS;
 * `plain` maps no cloud.
 */
export async function writeCloudRoles(conn: VaultConnection): Promise<void> {
  const aws = { read: ['s3://logs/app/**'], audiences: ['sts.amazonaws.com'], max_ttl: '1h', iam: { aws: { role_arn: AWS_ROLE_ARN } } };
  await conn.write('tvm/roles/logs', { ...aws, ttl: '3s' });
  await conn.write('tvm/roles/logs-long', { ...aws, ttl: '20m' });
  await conn.write('tvm/roles/plain', { read: ['s3://logs/app/**'], ttl: '20m', max_ttl: '1h' });
}

/** A JSON config for a broker in a child process (crash tests): SQLite in `dir`, fast loop. */
export function writeCrashConfig(dir: string, vault: { address: string; rootToken: string }, name: string, roles: string[]): string {
  const path = `${dir}/${name}.json`;
  writeFileSync(
    path,
    JSON.stringify({
      vault: { address: vault.address, auth: { token: { token: vault.rootToken } }, timeout: '2s' },
      store: { sqlite: { path: `${dir}/${name}.db` } },
      listener: { address: '127.0.0.1:0' },
      roles,
      renewal: { backoff_min: '200ms', backoff_max: '1s' },
      loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: '5s' },
      log: { level: 'warn' },
    }),
  );
  return path;
}

export interface CrashBroker<R> {
  child: ChildProcess;
  url: string;
  reconciled: R;
}

/** Starts test/broker/fixtures/crash-broker.ts with these arguments; resolves once it listens. */
export async function spawnCrashBroker<R = { orphansRevoked: number; intentsClosed: number; grantsRolledBack: number }>(
  args: string[],
  children: ChildProcess[],
): Promise<CrashBroker<R>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/broker/fixtures/crash-broker.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    // The fixture's own line starts with {"url" (log lines go to stderr).
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => {
      if (l.startsWith('{"url"')) resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`broker exited (${code}): ${stderr}`)));
  });
  return { child, ...(JSON.parse(line) as { url: string; reconciled: R }) };
}

export const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

export interface VaultProxy {
  /** http://127.0.0.1:<port>: give this to the broker as its Vault address. */
  address: string;
  /** Vault becomes unreachable: connections are refused and open ones cut. */
  down(): Promise<void>;
  /** Reachable again, on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP proxy in front of a dev server, to take "Vault" down and up again without restarting it. */
export async function startVaultProxy(target: string): Promise<VaultProxy> {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = createNetServer((client) => {
    const upstream = connectTcp(Number(to.port), to.hostname);
    track(client);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listenOn = (port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  await listenOn(0);
  const port = (server.address() as AddressInfo).port;
  const down = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  return { address: `http://127.0.0.1:${port}`, down, up: () => listenOn(port), close: () => (server.listening ? down() : Promise.resolve()) };
}
