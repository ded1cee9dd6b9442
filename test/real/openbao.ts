// Real OpenBao servers for the real-server suites: a dev server, or a
// config-file server (file or raft storage, auto-unsealed by a static seal),
// each on free loopback ports with its own plugin directory; the tvm plugin
// registered the production way (binary in plugin_directory, `plugin register
// -sha256`, `secrets enable`); the server's own CLI and its HTTP API.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildPlugin } from '../plugin/support.ts';
import { REPO, realPart } from './parts.ts';

const run = promisify(execFile);

/** The plugin's name in the catalog and its file in plugin_directory. */
export const PLUGIN_NAME = 'tvm';
export const PLUGIN_FILE = 'tvm-plugin';

export interface Answer {
  status: number;
  body: Record<string, unknown> & { data?: Record<string, unknown> | null; errors?: string[]; lease_id?: string; auth?: Record<string, unknown> | null };
  text: string;
}

export interface Bao {
  /** http://127.0.0.1:<port> */
  address: string;
  rootToken: string;
  pluginDir: string;
  /** The server's own log (stdout and stderr). */
  logPath: string;
  child: ChildProcess;
  /** Runs the bao CLI against this server (BAO_ADDR, BAO_TOKEN set; other BAO_/VAULT_ variables cleared). */
  cli(args: string[], options?: { token?: string; env?: Record<string, string> }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** One HTTP call (X-Vault-Token: the root token unless given; null for none). */
  api(method: string, path: string, body?: unknown, token?: string | null): Promise<Answer>;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Starts the same server again (config-file servers only), same ports and storage. */
  restart(): Promise<void>;
}

/** Why OpenBao cannot be run here, or '' when it can. */
export function openbaoUnavailable(): string {
  return realPart('openbao').reason;
}

export function baoBinary(): string {
  const part = realPart('openbao');
  if (!part.ok) throw new Error(part.reason);
  return part.path!;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(BAO|VAULT)_/.test(k)) env[k] = v;
  return env;
};

async function call(address: string, method: string, path: string, body: unknown, token: string | null): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token) headers['X-Vault-Token'] = token;
  const res = await fetch(`${address}/v1/${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: Answer['body'] = {};
  try {
    parsed = text ? (JSON.parse(text) as Answer['body']) : {};
  } catch {
    parsed = {};
  }
  return { status: res.status, body: parsed, text };
}

async function waitReady(address: string, child: ChildProcess, logPath: string, okStatuses: number[], timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`bao exited (${child.exitCode ?? child.signalCode}): ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    }
    try {
      const r = await fetch(`${address}/v1/sys/health`);
      if (okStatuses.includes(r.status)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`bao at ${address} not ready after ${timeoutMs} ms: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function handle(address: string, rootToken: string, pluginDir: string, logPath: string, start: () => ChildProcess, removeOnStop?: string): Bao {
  let child = start();
  const bao: Bao = {
    address,
    rootToken,
    pluginDir,
    logPath,
    get child() {
      return child;
    },
    async cli(args, options = {}) {
      const env = { ...baseEnv(), BAO_ADDR: address, BAO_TOKEN: options.token ?? bao.rootToken, ...options.env };
      try {
        const { stdout, stderr } = await run(baoBinary(), args, { env, timeout: 60_000, maxBuffer: 16 << 20 });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    },
    api: (method, path, body, token) => call(address, method, path, body, token === undefined ? bao.rootToken : token),
    async stop() {
      const c = child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      // A dev server's folder (plugins, log) goes with it; a config server's data stays for a restart.
      if (removeOnStop) rmSync(removeOnStop, { recursive: true, force: true });
    },
    async restart() {
      await bao.stop();
      child = start();
      await waitReady(address, child, logPath, [200, 429, 473]);
    },
  };
  return bao;
}

function spawnBao(args: string[], logPath: string, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(baoBinary(), args, { env: { ...baseEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (c: Buffer): void => {
    try {
      writeFileSync(logPath, c, { flag: 'a' });
    } catch {
      // The log's folder is gone (removed by a stop): nothing left to keep.
    }
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  return child;
}

/** `bao server -dev` on a free port, with a plugin directory (empty: the test registers what it needs). */
export async function startBaoDev(options: { rootToken?: string; env?: Record<string, string> } = {}): Promise<Bao> {
  const dir = mkdtempSync(join(tmpdir(), 'tvm-bao-dev-'));
  const pluginDir = join(dir, 'plugins');
  mkdirSync(pluginDir);
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const rootToken = options.rootToken ?? `root-${randomBytes(6).toString('hex')}`;
  const logPath = join(dir, 'bao.log');
  const args = ['server', '-dev', `-dev-root-token-id=${rootToken}`, `-dev-listen-address=127.0.0.1:${port}`, `-dev-plugin-dir=${pluginDir}`];
  const bao = handle(address, rootToken, pluginDir, logPath, () => spawnBao(args, logPath, options.env), dir);
  await waitReady(address, bao.child, logPath, [200]);
  return bao;
}

export interface ConfigServerOptions {
  /** Where the config, data, plugins and log go (created if missing). */
  dir: string;
  /** Raft's node id, and the API addresses of nodes to join (OpenBao 2.7 has no "file" storage). */
  nodeId?: string;
  retryJoin?: string[];
  /** Fixed ports (a restart keeps them); free ports when absent. */
  port?: number;
  clusterPort?: number;
  /** The static seal's key file, shared by the nodes of a cluster; created when absent. */
  sealKeyFile?: string;
  /** Plugin directory (shared by a cluster's nodes is fine); `<dir>/plugins` when absent. */
  pluginDir?: string;
}

/**
 * A config-file server (raft storage, auto-unsealed by a static seal).
 * Not initialised: call initBao on the first node; joined raft nodes unseal themselves.
 */
export async function startBaoConfig(options: ConfigServerOptions): Promise<Bao & { port: number; clusterPort: number; sealKeyFile: string }> {
  mkdirSync(options.dir, { recursive: true });
  const pluginDir = options.pluginDir ?? join(options.dir, 'plugins');
  mkdirSync(pluginDir, { recursive: true });
  const data = join(options.dir, 'data');
  mkdirSync(data, { recursive: true });
  const port = options.port ?? (await freePort());
  const clusterPort = options.clusterPort ?? (await freePort());
  const sealKeyFile = options.sealKeyFile ?? join(options.dir, 'seal.key');
  try {
    readFileSync(sealKeyFile);
  } catch {
    writeFileSync(sealKeyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  }
  const address = `http://127.0.0.1:${port}`;
  const storage = `storage "raft" {\n  path = "${data}"\n  node_id = "${options.nodeId ?? 'node-1'}"\n${(options.retryJoin ?? [])
    .map((a) => `  retry_join {\n    leader_api_addr = "${a}"\n  }\n`)
    .join('')}}`;
  const config = join(options.dir, 'bao.hcl');
  writeFileSync(
    config,
    `${storage}
listener "tcp" {
  address = "127.0.0.1:${port}"
  cluster_address = "127.0.0.1:${clusterPort}"
  tls_disable = true
}
seal "static" {
  current_key_id = "test-1"
  current_key = "file://${sealKeyFile}"
}
api_addr = "${address}"
cluster_addr = "https://127.0.0.1:${clusterPort}"
plugin_directory = "${pluginDir}"
`,
  );
  const logPath = join(options.dir, 'bao.log');
  const bao = handle(address, '', pluginDir, logPath, () => spawnBao(['server', `-config=${config}`], logPath));
  // 501: not initialised; 503: sealed; 429: standby; 473: performance standby; 200: active.
  await waitReady(address, bao.child, logPath, [200, 429, 473, 501, 503]);
  return Object.assign(bao, { port, clusterPort, sealKeyFile });
}

/** `operator init` (static seal: recovery keys), waits until the node is active; sets and returns the root token. */
export async function initBao(bao: Bao): Promise<string> {
  const r = await bao.cli(['operator', 'init', '-recovery-shares=1', '-recovery-threshold=1', '-format=json']);
  if (r.code !== 0) throw new Error(`bao operator init failed: ${r.stderr}`);
  const token = (JSON.parse(r.stdout) as { root_token: string }).root_token;
  bao.rootToken = token;
  const until = Date.now() + 30_000;
  while ((await fetch(`${bao.address}/v1/sys/health`)).status !== 200) {
    if (Date.now() > until) throw new Error(`bao at ${bao.address} not active after init`);
    await new Promise((res) => setTimeout(res, 200));
  }
  return token;
}

let pluginBuild: Promise<string> | undefined;
let seaBuild: Promise<string> | undefined;

/** The bundled JS plugin (built once per test process). */
export function jsPlugin(): Promise<string> {
  pluginBuild ??= buildPlugin();
  return pluginBuild;
}

/** The plugin as a single executable (Node's SEA: no Node.js needed on the server), built once per test process. */
export function seaPlugin(): Promise<string> {
  seaBuild ??= (async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'tvm-sea-build-')), 'tvm-plugin');
    await run(process.execPath, [join(REPO, 'scripts/build-plugin.mjs'), '--outfile', out, '--sea'], { cwd: REPO, maxBuffer: 16 << 20 });
    return `${out}-sea`;
  })();
  return seaBuild;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Registers the plugin the production way: its file copied into the server's
 * plugin_directory, `bao plugin register -sha256=... -command=tvm-plugin
 * -args=--api-addr=<address> secret tvm`, then `bao secrets enable -path=<mount> tvm`
 * (unless `enable: false`). Returns the sha256.
 */
export async function registerPlugin(
  bao: Bao,
  options: { file?: string; mount?: string; apiAddr?: string; enable?: boolean; version?: string; name?: string; command?: string } = {},
): Promise<string> {
  const file = options.file ?? (await jsPlugin());
  const name = options.name ?? PLUGIN_NAME;
  const command = options.command ?? PLUGIN_FILE;
  const target = join(bao.pluginDir, command);
  copyFileSync(file, target);
  chmodSync(target, 0o755);
  const sha256 = sha256File(target);
  const register = await bao.cli([
    'plugin',
    'register',
    `-sha256=${sha256}`,
    `-command=${command}`,
    `-args=--api-addr=${options.apiAddr ?? bao.address}`,
    ...(options.version ? [`-version=${options.version}`] : []),
    'secret',
    name,
  ]);
  if (register.code !== 0) throw new Error(`bao plugin register failed: ${register.stderr}`);
  if (options.enable !== false) {
    const enable = await bao.cli(['secrets', 'enable', `-path=${options.mount ?? 'tvm'}`, name]);
    if (enable.code !== 0) throw new Error(`bao secrets enable failed: ${enable.stderr}`);
  }
  return sha256;
}
