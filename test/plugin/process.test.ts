// The bundled plugin as a process, without a host: start-up refusals, the one
// stdout line, hclog JSON on stderr, SIGINT ignored, SIGTERM and a vanished
// parent both ending it with the socket removed.

import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateCertificate } from '../../src/plugin/tls.ts';
import { buildPlugin, MAGIC } from './support.ts';

let plugin = '';
let clientCertPem = '';
const HANDSHAKE = /^1\|5\|unix\|([^|]+)\|grpc\|([A-Za-z0-9+/]+)$/;

beforeAll(async () => {
  plugin = await buildPlugin();
  clientCertPem = (await generateCertificate()).certPem;
}, 60_000);

function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', ...extra };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

/** Starts the plugin like a host; resolves once the handshake line is out. */
async function startPlugin(socketDir: string) {
  const child = spawn(plugin, [], {
    env: baseEnv({ ...MAGIC, PLUGIN_PROTOCOL_VERSIONS: '3,4,5', PLUGIN_CLIENT_CERT: clientCertPem, PLUGIN_UNIX_SOCKET_DIR: socketDir }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no handshake: ${stderr}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, exited, out: () => stdout, err: () => stderr };
}

describe('the bundled plugin file', () => {
  it('is one executable file starting with a node shebang', () => {
    expect(readFileSync(plugin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(plugin).mode & 0o777).toBe(0o755);
  });

  it('refuses to run without the magic cookie: exit 1, one stderr line, nothing on stdout', () => {
    const r = spawnSync(plugin, [], { env: baseEnv({ PLUGIN_PROTOCOL_VERSIONS: '5' }), encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^tvm-plugin: this is a Vault plugin and is started by Vault/);
  });

  it('refuses to run when protocol 5 is not offered', () => {
    const r = spawnSync(plugin, [], {
      env: baseEnv({ ...MAGIC, PLUGIN_PROTOCOL_VERSIONS: '3,4', PLUGIN_CLIENT_CERT: clientCertPem }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('tvm speaks only version 5');
  });

  it('refuses to run without an AutoMTLS client certificate', () => {
    const r = spawnSync(plugin, [], { env: baseEnv({ ...MAGIC, PLUGIN_PROTOCOL_VERSIONS: '5' }), encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('PLUGIN_CLIENT_CERT');
  });

  it('prints exactly one handshake line, logs hclog JSON on stderr, ignores SIGINT, stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvm-sock-'));
    const p = await startPlugin(dir);
    const line = p.out();
    expect(line.endsWith('\n')).toBe(true);
    expect(line.split('\n')).toHaveLength(2);
    const m = HANDSHAKE.exec(line.trimEnd());
    expect(m, line).not.toBeNull();
    const [, socket, certB64] = m!;
    expect(socket.startsWith(`${dir}/`)).toBe(true);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(certB64).not.toMatch(/=$/);
    const cert = new X509Certificate(Buffer.from(certB64, 'base64'));
    expect(cert.subjectAltName).toBe('DNS:localhost');
    expect(cert.ca).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);

    p.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    expect(alive(p.child.pid!)).toBe(true);

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(p.out()).toBe(line);
    const logs = p.err().trimEnd().split('\n');
    expect(logs.length).toBeGreaterThanOrEqual(2);
    for (const l of logs) {
      const entry = JSON.parse(l) as Record<string, string>;
      expect(entry['@level']).toMatch(/^(trace|debug|info|warn|error)$/);
      expect(typeof entry['@message']).toBe('string');
      expect(entry['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
  }, 30_000);

  it('stops cleanly on a SIGTERM sent the moment the handshake line is read (exit 0, socket removed)', async () => {
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'tvm-sock-'));
      const p = await startPlugin(dir);
      p.child.kill('SIGTERM');
      const socket = HANDSHAKE.exec(p.out().trimEnd())![1];
      expect(await p.exited).toBe(0);
      expect(existsSync(socket)).toBe(false);
    }
  }, 30_000);

  it('exits when its parent process is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tvm-sock-'));
    // A shell starts the plugin in the background, prints its pid and exits at once.
    const env = baseEnv({ ...MAGIC, PLUGIN_PROTOCOL_VERSIONS: '5', PLUGIN_CLIENT_CERT: clientCertPem, PLUGIN_UNIX_SOCKET_DIR: dir });
    const r = spawnSync('sh', ['-c', `"$0" >/dev/null 2>&1 & echo $!; sleep 1.5`, plugin], { env, encoding: 'utf8' });
    const pid = Number(r.stdout.trim());
    expect(pid).toBeGreaterThan(0);
    expect(await waitFor(() => !alive(pid), 8000)).toBe(true);
  }, 20_000);
});
