// tvm plugin register: the printed vault lines, and --apply through the Vault
// API (against a small stand-in that records what Vault would receive).

import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerPluginCommands } from '../../src/cli/commands/plugin.ts';
import { commandContext } from '../../src/cli/context.ts';
import { applyRegistration, planRegistration, PluginRegisterError } from '../../src/plugin/register.ts';

function pluginFile(content = '#!/usr/bin/env node\nconsole.error("hi")\n'): { path: string; sha: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'tvm-reg-')), 'tvm-plugin');
  writeFileSync(path, content, { mode: 0o755 });
  return { path, sha: createHash('sha256').update(content).digest('hex') };
}

async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string }> {
  let stdout = '';
  const io = {
    stdout: (t: string) => void (stdout += t),
    stderr: () => undefined,
    env,
    onSignal: () => () => undefined,
    exit: () => undefined,
  };
  const program = new Command('tvm').exitOverride();
  registerPluginCommands(program, commandContext(io));
  await program.parseAsync(['node', 'tvm', ...args]);
  return { stdout };
}

describe('planRegistration', () => {
  it('prints the exact vault lines with the file sha256 and its name as the command', () => {
    const { path, sha } = pluginFile();
    const plan = planRegistration({ pluginPath: path });
    expect(plan.lines).toEqual([`vault plugin register -sha256=${sha} -command=tvm-plugin secret tvm`, 'vault secrets enable -path=tvm tvm']);
  });

  it('adds VAULT_API_ADDR as -env and honours another mount path', () => {
    const { path, sha } = pluginFile();
    const plan = planRegistration({ pluginPath: path, mount: 'tokens/', apiAddr: 'https://vault.example.com:8200/' });
    expect(plan.lines).toEqual([
      `vault plugin register -sha256=${sha} -command=tvm-plugin -env=VAULT_API_ADDR=https://vault.example.com:8200 secret tvm`,
      'vault secrets enable -path=tokens tvm',
    ]);
  });

  it('names the build step when the file is missing', () => {
    expect(() => planRegistration({ pluginPath: '/nonexistent/tvm-plugin' })).toThrow(PluginRegisterError);
    expect(() => planRegistration({ pluginPath: '/nonexistent/tvm-plugin' })).toThrow(/npm run build:plugin/);
  });
});

describe('tvm plugin register', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** A stand-in for Vault's sys API; records each call. */
  async function fakeVault(mounts: Record<string, unknown>) {
    const calls: Array<{ method: string; path: string; body: unknown; token: string | undefined }> = [];
    server = createServer(async (req: IncomingMessage, res) => {
      let text = '';
      for await (const chunk of req) text += chunk;
      const path = (req.url ?? '').replace(/^\/v1\//, '').replace(/\?.*$/, '');
      calls.push({ method: req.method ?? '', path, body: text ? JSON.parse(text) : undefined, token: req.headers['x-vault-token'] as string });
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET' && path === 'sys/mounts') {
        res.end(JSON.stringify({ ...mounts, request_id: 'r', lease_id: '', renewable: false, lease_duration: 0, data: mounts, warnings: null, wrap_info: null, auth: null }));
        return;
      }
      res.statusCode = 204;
      res.end();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const addr = server.address() as { port: number };
    return { calls, env: { VAULT_ADDR: `http://127.0.0.1:${addr.port}`, VAULT_TOKEN: 'root-token' } };
  }

  it('prints the two lines', async () => {
    const { path, sha } = pluginFile();
    const { stdout } = await runCli(['plugin', 'register', '--plugin', path]);
    expect(stdout).toBe(`vault plugin register -sha256=${sha} -command=tvm-plugin secret tvm\nvault secrets enable -path=tvm tvm\n`);
  });

  it('--apply registers in the catalog and enables the mount through the Vault API', async () => {
    const { path, sha } = pluginFile();
    const vault = await fakeVault({ 'secret/': { type: 'kv' } });
    const { stdout } = await runCli(['plugin', 'register', '--plugin', path, '--apply', '--api-addr', 'https://v.example:8200'], vault.env);
    expect(vault.calls).toEqual([
      {
        method: 'POST',
        path: 'sys/plugins/catalog/secret/tvm',
        body: { sha256: sha, command: 'tvm-plugin', env: ['VAULT_API_ADDR=https://v.example:8200'] },
        token: 'root-token',
      },
      { method: 'GET', path: 'sys/mounts', body: undefined, token: 'root-token' },
      { method: 'POST', path: 'sys/mounts/tvm', body: { type: 'tvm' }, token: 'root-token' },
    ]);
    expect(stdout).toContain('enabled tvm at tvm/');
  });

  it('--apply reloads the plugin when the mount already runs tvm', async () => {
    const { path } = pluginFile();
    const vault = await fakeVault({ 'tvm/': { type: 'tvm' } });
    const { stdout } = await runCli(['plugin', 'register', '--plugin', path, '--apply'], vault.env);
    expect(vault.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'POST sys/plugins/catalog/secret/tvm',
      'GET sys/mounts',
      'POST sys/plugins/reload/backend',
    ]);
    expect(stdout).toContain('reloaded the tvm plugin behind tvm/');
  });

  it('refuses to take over a mount of another type', async () => {
    const { path } = pluginFile();
    const writes: string[] = [];
    const vault = {
      read: async () => ({ data: { 'tvm/': { type: 'kv' } } }),
      write: async (p: string) => void writes.push(p),
    };
    await expect(applyRegistration(vault, planRegistration({ pluginPath: path }))).rejects.toThrow(/already a mount of type kv/);
    expect(writes).toEqual(['sys/plugins/catalog/secret/tvm']);
  });
});
