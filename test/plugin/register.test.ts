// tvm plugin register: the printed vault lines, and --apply through the Vault
// API, against a Vault under test: the stand-in below, which answers the sys
// paths register uses as Vault does and refuses what Vault refuses. The --apply
// tests read the result back through the API (the catalog entry, the mount
// table), so a real server can be plugged in: add a factory returning a
// VaultUnderTest (address and root token of a dev OpenBao/Vault whose
// plugin_directory holds the file) to VAULTS; `calls` is the stand-in's alone.

import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

  it('passes the api address as the plugin\'s --api-addr argument (-args: Vault and OpenBao alike) and honours another mount path', () => {
    const { path, sha } = pluginFile();
    const plan = planRegistration({ pluginPath: path, mount: 'tokens/', apiAddr: 'https://vault.example.com:8200/' });
    expect(plan.lines).toEqual([
      `vault plugin register -sha256=${sha} -command=tvm-plugin -args=--api-addr=https://vault.example.com:8200 secret tvm`,
      'vault secrets enable -path=tokens tvm',
    ]);
  });

  it('names the build step when the file is missing', () => {
    expect(() => planRegistration({ pluginPath: '/nonexistent/tvm-plugin' })).toThrow(PluginRegisterError);
    expect(() => planRegistration({ pluginPath: '/nonexistent/tvm-plugin' })).toThrow(/npm run build:plugin/);
  });
});

interface Call {
  method: string;
  path: string;
  body: unknown;
  token: string | undefined;
}

/** A Vault the --apply tests run against; `calls` only where the server can show them. */
interface VaultUnderTest {
  env: { VAULT_ADDR: string; VAULT_TOKEN: string };
  calls?: Call[];
  close(): Promise<void>;
}

interface Answer {
  status: number;
  body?: Record<string, unknown>;
}

const BUILTIN_SECRET_ENGINES = ['kv', 'transit', 'pki', 'database', 'cubbyhole', 'totp', 'ssh'];
const CATALOG_FIELDS = ['sha256', 'sha_256', 'command', 'args', 'env', 'version', 'name', 'type'];
const MOUNT_FIELDS = ['type', 'description', 'config', 'options', 'local', 'seal_wrap', 'external_entropy_access', 'plugin_version', 'path'];

/** Vault's field errors and routing errors, as its HTTP layer words them. */
const routingError = (status: number, message: string): Answer => ({ status, body: { errors: [`1 error occurred:\n\t* ${message}\n\n`] } });
const fieldError = (message: string): Answer => ({ status: 400, body: { errors: [message] } });
const ok = (data: unknown, warnings: string[] = []): Answer => ({
  status: 200,
  body: { request_id: 'r', lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings: warnings.length ? warnings : null, auth: null },
});

/** A TypeStringSlice field: a list of strings, or one comma-separated string; anything else does not convert. */
function stringSlice(body: Record<string, unknown>, field: string): string[] | Answer {
  const v = body[field];
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v === '' ? [] : v.split(',');
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return routingError(400, `error converting input ${JSON.stringify(v)} for field "${field}": expected a list of strings`);
}

function ignored(body: Record<string, unknown>, known: string[]): string[] {
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  return unknown.length ? [`Endpoint ignored these unrecognized parameters: [${unknown.join(' ')}]`] : [];
}

/**
 * A stand-in for Vault's sys API, strict where register depends on it:
 *   PUT|POST sys/plugins/catalog/<type>/<name>  sha256 (hex) and command required, command a file name in the
 *                                               plugin directory, args/env lists of strings; 204 (200 with a
 *                                               warning for unknown fields); GET answers the entry, 404 when none
 *   GET sys/mounts                              the mount table; PUT|POST sys/mounts/<path> type required, a
 *                                               builtin engine or a catalog entry; 400 when the path is taken
 *   PUT|POST sys/plugins/reload/backend         exactly one of plugin, mounts
 *   anything else 404 unsupported path (405 for another method on a known path); 403 without the root token.
 */
async function standInVault(options: { mounts?: Record<string, { type: string }>; pluginDirectory?: string[] } = {}): Promise<VaultUnderTest> {
  const token = 'root-token';
  const calls: Call[] = [];
  const catalog = new Map<string, { name: string; type: string; sha256: string; command: string; args: string[]; env: string[]; builtin: false; version: string }>();
  const mounts = new Map<string, { type: string }>(Object.entries({ 'secret/': { type: 'kv' }, 'sys/': { type: 'system' }, ...(options.mounts ?? {}) }));
  const pluginDirectory = new Set(options.pluginDirectory ?? ['tvm-plugin']);

  const answer = (method: string, path: string, body: Record<string, unknown>): Answer => {
    const write = method === 'PUT' || method === 'POST';
    let m = /^sys\/plugins\/catalog\/(secret|auth|database)\/([\w.-]+)$/.exec(path);
    if (m) {
      const [, type, name] = m;
      if (method === 'GET') {
        const entry = catalog.get(`${type}/${name}`);
        return entry ? ok(entry) : { status: 404, body: { errors: [] } };
      }
      if (!write) return routingError(405, 'unsupported operation');
      const sha256 = typeof body.sha256 === 'string' && body.sha256 !== '' ? body.sha256 : body.sha_256;
      if (typeof sha256 !== 'string' || sha256 === '') return fieldError('missing SHA-256 value');
      if (typeof body.command !== 'string' || body.command.trim() === '') return fieldError('missing command value');
      const args = stringSlice(body, 'args');
      if (!Array.isArray(args)) return args;
      const env = stringSlice(body, 'env');
      if (!Array.isArray(env)) return env;
      const parts = body.command.split(' ');
      if (parts.length > 1 && args.length > 0) return fieldError('must not specify args in command and args field');
      if (!/^([0-9a-fA-F]{2})*$/.test(sha256)) return fieldError('Could not decode SHA-256 value from Hex');
      if (env.some((e) => !e.includes('='))) return routingError(400, 'env entries must be KEY=value');
      const command = parts[0];
      if (command.includes('/') || command.includes('..')) return routingError(500, 'cannot execute files outside of configured plugin directory');
      if (!pluginDirectory.has(command)) return routingError(500, `error while validating the command path: stat ${command}: no such file or directory`);
      catalog.set(`${type}/${name}`, { name, type, sha256: sha256.toLowerCase(), command, args: parts.length > 1 ? parts.slice(1) : args, env, builtin: false, version: '' });
      const warnings = ignored(body, CATALOG_FIELDS);
      return warnings.length ? ok(null, warnings) : { status: 204 };
    }
    if (path === 'sys/mounts') {
      if (method !== 'GET') return routingError(405, 'unsupported operation');
      const table = Object.fromEntries(mounts);
      return { status: 200, body: { ...table, ...ok(table).body } };
    }
    m = /^sys\/mounts\/(.+)$/.exec(path);
    if (m) {
      if (!write) return routingError(405, 'unsupported operation');
      const mountPath = `${m[1].replace(/\/+$/, '')}/`;
      const type = body.type;
      if (typeof type !== 'string' || type === '') return fieldError('backend type must be specified as a string');
      if (!BUILTIN_SECRET_ENGINES.includes(type) && !catalog.has(`secret/${type}`)) return fieldError(`plugin not found in the catalog: ${type}`);
      if (mounts.has(mountPath)) return fieldError(`path is already in use at ${mountPath}`);
      mounts.set(mountPath, { type });
      const warnings = ignored(body, MOUNT_FIELDS);
      return warnings.length ? ok(null, warnings) : { status: 204 };
    }
    if (path === 'sys/plugins/reload/backend') {
      if (!write) return routingError(405, 'unsupported operation');
      const hasPlugin = typeof body.plugin === 'string' && body.plugin !== '';
      const hasMounts = Array.isArray(body.mounts) && body.mounts.length > 0;
      if (hasPlugin === hasMounts) return fieldError(hasPlugin ? 'plugin and mounts cannot be set at the same time' : 'plugin or mounts must be provided');
      return ok({ reload_id: 'reload-1' });
    }
    return routingError(404, 'unsupported path');
  };

  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const method = req.method ?? '';
    const path = (req.url ?? '').replace(/^\/v1\//, '').replace(/\?.*$/, '');
    const given = req.headers['x-vault-token'] as string | undefined;
    let body: unknown;
    let reply: Answer;
    try {
      body = text === '' ? undefined : JSON.parse(text);
      calls.push({ method, path, body, token: given });
      if (given !== token) reply = { status: 403, body: { errors: ['permission denied'] } };
      else if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) reply = routingError(400, 'error parsing JSON');
      else reply = answer(method, path, (body ?? {}) as Record<string, unknown>);
    } catch {
      calls.push({ method, path, body: text, token: given });
      reply = routingError(400, 'error parsing JSON');
    }
    res.statusCode = reply.status;
    if (reply.body === undefined) {
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(reply.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    env: { VAULT_ADDR: `http://127.0.0.1:${port}`, VAULT_TOKEN: token },
    calls,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** One raw request to the Vault under test with its root token. */
async function vaultRequest(vault: VaultUnderTest, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${vault.env.VAULT_ADDR}/v1/${path}`, {
    method,
    headers: { 'x-vault-token': vault.env.VAULT_TOKEN, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Vaults to run the --apply tests against; a real server's factory goes here too. */
const VAULTS: Array<[string, () => Promise<VaultUnderTest>]> = [['the stand-in', () => standInVault()]];

it('prints the two lines', async () => {
  const { path, sha } = pluginFile();
  const { stdout } = await runCli(['plugin', 'register', '--plugin', path]);
  expect(stdout).toBe(`vault plugin register -sha256=${sha} -command=tvm-plugin secret tvm\nvault secrets enable -path=tvm tvm\n`);
});

describe.each(VAULTS)('tvm plugin register --apply against %s', (_name, start) => {
  let vault: VaultUnderTest;
  beforeEach(async () => {
    vault = await start();
  });
  afterEach(() => vault.close());

  const catalogEntry = async () => (await vaultRequest(vault, 'GET', 'sys/plugins/catalog/secret/tvm')).body.data as Record<string, unknown> | undefined;
  const mountType = async (mount: string) => {
    const table = (await vaultRequest(vault, 'GET', 'sys/mounts')).body.data as Record<string, { type: string }>;
    return table[`${mount}/`]?.type;
  };

  it('registers in the catalog and enables the mount: the entry and the mount read back', async () => {
    const { path, sha } = pluginFile();
    const { stdout } = await runCli(['plugin', 'register', '--plugin', path, '--apply', '--api-addr', 'https://v.example:8200'], vault.env);
    expect(stdout).toContain('enabled tvm at tvm/');
    expect(await catalogEntry()).toMatchObject({ sha256: sha, command: 'tvm-plugin', args: ['--api-addr=https://v.example:8200'], env: [] });
    expect(await mountType('tvm')).toBe('tvm');
    if (vault.calls) {
      expect(vault.calls).toEqual([
        { method: 'POST', path: 'sys/plugins/catalog/secret/tvm', body: { sha256: sha, command: 'tvm-plugin', args: ['--api-addr=https://v.example:8200'] }, token: 'root-token' },
        { method: 'GET', path: 'sys/mounts', body: undefined, token: 'root-token' },
        { method: 'POST', path: 'sys/mounts/tvm', body: { type: 'tvm' }, token: 'root-token' },
        { method: 'GET', path: 'sys/plugins/catalog/secret/tvm', body: undefined, token: 'root-token' },
        { method: 'GET', path: 'sys/mounts', body: undefined, token: 'root-token' },
      ]);
    }
  });

  it('a second --apply re-registers and reloads the plugin behind the mount that already runs tvm', async () => {
    const first = pluginFile();
    await runCli(['plugin', 'register', '--plugin', first.path, '--apply', '--mount', 'tokens'], vault.env);
    const second = pluginFile('#!/usr/bin/env node\nconsole.error("v2")\n');
    const { stdout } = await runCli(['plugin', 'register', '--plugin', second.path, '--apply', '--mount', 'tokens'], vault.env);
    expect(stdout).toContain('reloaded the tvm plugin behind tokens/');
    expect(await catalogEntry()).toMatchObject({ sha256: second.sha, command: 'tvm-plugin' });
    expect(await mountType('tokens')).toBe('tvm');
    if (vault.calls) {
      expect(vault.calls.slice(3, 6).map((c) => `${c.method} ${c.path}`)).toEqual(['POST sys/plugins/catalog/secret/tvm', 'GET sys/mounts', 'POST sys/plugins/reload/backend']);
      expect(vault.calls[5].body).toEqual({ plugin: 'tvm' });
    }
  });

  it('refuses to take over a mount of another type, and leaves it as it was', async () => {
    expect((await vaultRequest(vault, 'POST', 'sys/mounts/tvm', { type: 'kv' })).status).toBe(204);
    const { path } = pluginFile();
    const vaultWriter = connectTo(vault);
    await expect(applyRegistration(vaultWriter, planRegistration({ pluginPath: path }))).rejects.toThrow(/already a mount of type kv/);
    // The catalog entry was written, the mount table read, and nothing else (no mount, no reload).
    if (vault.calls) expect(vault.calls.slice(1).map((c) => `${c.method} ${c.path}`)).toEqual(['POST sys/plugins/catalog/secret/tvm', 'GET sys/mounts']);
    expect(await mountType('tvm')).toBe('kv');
  });
});

/** The library's Vault connection to the Vault under test (what the CLI uses). */
function connectTo(vault: VaultUnderTest) {
  return commandContext({ stdout: () => undefined, stderr: () => undefined, env: vault.env, onSignal: () => () => undefined, exit: () => undefined }).connect({});
}

describe('the stand-in answers as Vault does (so a wrong request fails the tests above)', () => {
  let vault: VaultUnderTest;
  beforeEach(async () => {
    vault = await standInVault();
  });
  afterEach(() => vault.close());
  const sha = 'ab'.repeat(32);
  const catalog = (body: unknown, method = 'POST', path = 'sys/plugins/catalog/secret/tvm') => vaultRequest(vault, method, path, body);

  it('catalog: sha256 and command required, sha256 hex, args/env lists of strings, command a file in the plugin directory: 400 (500 for a path)', async () => {
    expect(await catalog({ command: 'tvm-plugin' })).toEqual({ status: 400, body: { errors: ['missing SHA-256 value'] } });
    expect(await catalog({ sha256: sha })).toEqual({ status: 400, body: { errors: ['missing command value'] } });
    expect(await catalog({ sha256: 'not-hex', command: 'tvm-plugin' })).toEqual({ status: 400, body: { errors: ['Could not decode SHA-256 value from Hex'] } });
    expect((await catalog({ sha256: sha, command: 'tvm-plugin', env: 5 })).status).toBe(400);
    expect((await catalog({ sha256: sha, command: 'tvm-plugin', env: [{ VAULT_API_ADDR: 'x' }] })).status).toBe(400);
    expect((await catalog({ sha256: sha, command: 'tvm-plugin', args: { a: 1 } })).status).toBe(400);
    expect(await catalog({ sha256: sha, command: 'tvm-plugin -x', args: ['-y'] })).toEqual({ status: 400, body: { errors: ['must not specify args in command and args field'] } });
    expect((await catalog({ sha256: sha, command: '../../bin/sh' })).status).toBe(500);
    expect((await catalog({ sha256: sha, command: 'other-plugin' })).status).toBe(500);
    expect((await vaultRequest(vault, 'GET', 'sys/plugins/catalog/secret/tvm')).status).toBe(404);
    expect((await catalog({ sha256: sha, command: 'tvm-plugin', env: ['A=1'] })).status).toBe(204);
    expect((await vaultRequest(vault, 'GET', 'sys/plugins/catalog/secret/tvm')).body.data).toMatchObject({ sha256: sha, command: 'tvm-plugin', args: [], env: ['A=1'] });
    // A misspelt field is not an error in Vault: a 200 with a warning, and the field is not stored.
    const misspelt = await catalog({ sha256: sha, command: 'tvm-plugin', enviroment: ['A=1'] });
    expect(misspelt.status).toBe(200);
    expect(misspelt.body.warnings).toEqual(['Endpoint ignored these unrecognized parameters: [enviroment]']);
  });

  it('mounts: a type, known to Vault or in the catalog, on a free path: 400 otherwise', async () => {
    expect(await vaultRequest(vault, 'POST', 'sys/mounts/tvm', {})).toEqual({ status: 400, body: { errors: ['backend type must be specified as a string'] } });
    expect(await vaultRequest(vault, 'POST', 'sys/mounts/tvm', { type: 'tvm' })).toEqual({ status: 400, body: { errors: ['plugin not found in the catalog: tvm'] } });
    expect((await catalog({ sha256: sha, command: 'tvm-plugin' })).status).toBe(204);
    expect((await vaultRequest(vault, 'POST', 'sys/mounts/tvm', { type: 'tvm' })).status).toBe(204);
    expect(await vaultRequest(vault, 'POST', 'sys/mounts/tvm', { type: 'tvm' })).toEqual({ status: 400, body: { errors: ['path is already in use at tvm/'] } });
  });

  it('reload: exactly one of plugin and mounts', async () => {
    expect((await vaultRequest(vault, 'POST', 'sys/plugins/reload/backend', {})).status).toBe(400);
    expect((await vaultRequest(vault, 'POST', 'sys/plugins/reload/backend', { plugin: 'tvm', mounts: ['tvm/'] })).status).toBe(400);
    expect((await vaultRequest(vault, 'POST', 'sys/plugins/reload/backend', { plugin: 'tvm' })).status).toBe(200);
  });

  it('other paths 404, other methods 405, no or another token 403', async () => {
    expect(await vaultRequest(vault, 'POST', 'sys/plugin/catalog/secret/tvm', { sha256: sha, command: 'tvm-plugin' })).toEqual({
      status: 404,
      body: { errors: ['1 error occurred:\n\t* unsupported path\n\n'] },
    });
    expect((await vaultRequest(vault, 'POST', 'sys/plugins/catalog/secrets/tvm', { sha256: sha, command: 'tvm-plugin' })).status).toBe(404);
    expect((await vaultRequest(vault, 'DELETE', 'sys/plugins/reload/backend')).status).toBe(405);
    const anonymous = await fetch(`${vault.env.VAULT_ADDR}/v1/sys/mounts`);
    expect(anonymous.status).toBe(403);
    expect((await vaultRequest({ ...vault, env: { ...vault.env, VAULT_TOKEN: 'wrong' } }, 'GET', 'sys/mounts')).status).toBe(403);
  });
});
