// startServer: the dev server (`-dev`: in-memory, demo role) or a persistent
// server from a config file (SQLite storage that survives restarts). Wires the
// storage, policy store, token store, the secrets and auth mount tables,
// identity, the expiration manager and response wrapping behind the core
// (core.ts) and its transport (http.ts).

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { EngineError } from '../sdk/errors.ts';
import { createTvmBackend } from '../engine/index.ts';
import type { Clock, LogicalRequest } from '../sdk/logical.ts';
import { AuditTable } from './audit_table.ts';
import { AuthTable } from './auth/table.ts';
import { loadConfig, loadSealKeys, type ServerConfig } from './config.ts';
import { ExpirationManager, type LeaseHookPoint } from './expiration.ts';
import { effectiveMountLimits } from './lease_ttl.ts';
import { createRequestHandler } from './http.ts';
import { acceptListMethod } from './list_method.ts';
import type { ServerCore } from './context.ts';
import { IdentityStore } from './identity/store.ts';
import { mountLeaseLimits } from './lease_ttl.ts';
import { SecretsTable, type Mount } from './mounts.ts';
import type { BufferedView } from './storage/buffer.ts';
import { PolicyStore, ROOT_POLICY } from './policy.ts';
import { openMemoryStorage, openSealedStorage, openSqliteStorage } from './storage/index.ts';
import { newTokenId, TokenStore } from './token/store.ts';
import type { Logger } from './logger.ts';
import type { LeaseBackendCalls, PhysicalStorage } from './types.ts';

export type { Logger };
import { WrappingStore } from './wrapping.ts';

/** Structured logging; fields never hold tokens or other secrets. */

export interface ServerOptions {
  /** Dev mode: in-memory storage, a fresh root token, tvm/ mounted with a demo role. */
  dev: boolean;
  /** host:port to listen on (port 0: any free port). Default: the config's listener, else 127.0.0.1:8200. */
  listenAddress?: string;
  /** The root token's id (dev mode, or the first start of a persistent server). */
  rootTokenId?: string;
  /** A Vault-style config file (HCL or JSON); required unless dev. */
  configPath?: string;
  /** The externally reachable address (default: the config's api_addr, else the listen address). */
  apiAddr?: string;
  clock?: Clock;
  logger?: Logger;
  /** No banner on stdout and no default logging. */
  quiet?: boolean;
  /** Where the banner goes (default: stdout). */
  output?: (text: string) => void;
  /** Fault injection for crash tests: called at named points just before a commit. */
  hooks?: { at(point: LeaseHookPoint): void };
  /** Instrumentation: wraps the physical storage every part uses (tests count its writes). */
  wrapStorage?: (storage: PhysicalStorage) => PhysicalStorage;
  /** How often audit devices write a signed checkpoint (ms; default 60 s). */
  auditCheckpointIntervalMs?: number;
}

export interface RunningServer {
  /** The listening address, e.g. http://127.0.0.1:8200 (the real port when 0 was asked). */
  address: string;
  /** The externally reachable address engines use (issuer URLs). */
  apiAddr: string;
  /**
   * The root token. Known only when this start created it (dev mode, or the
   * first start of a persistent server): Vault shows the root token once, at
   * initialisation, and never stores it in the clear. '' on later starts.
   */
  rootToken: string;
  /** Whether this start initialised the storage (root token, tvm/ mount). */
  firstStart: boolean;
  /** Stops accepting, finishes requests under way, stops the expiration manager, closes storage. Safe twice. */
  close(): Promise<void>;
}

const INIT_KEY = 'core/init';
const DEFAULT_LISTEN = '127.0.0.1:8200';
const ROLLBACK_INTERVAL_MS = 60_000;
const CLOSE_GRACE_MS = 5_000;

interface InitRecord {
  initialized_at: string;
  cluster_id: string;
  cluster_name: string;
}

/** The role written in dev mode so `vault read tvm/creds/demo` works at once. */
export const DEMO_ROLE = {
  read: ['db://orders/*'],
  write: ['db://orders/outbox'],
  ttl: '15m',
  max_ttl: '1h',
};

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const clock = options.clock ?? Date.now;
  const logger = options.logger ?? (options.quiet ? undefined : stderrLogger());
  const print = options.output ?? ((text: string) => void process.stdout.write(text));

  let config: ServerConfig | undefined;
  if (options.configPath !== undefined && options.configPath !== '') {
    config = await loadConfig(options.configPath);
    for (const w of config.warnings) logger?.warn(`config: ${w}`);
  } else if (!options.dev) {
    throw new Error('startServer needs either dev: true or a configPath');
  }
  const dev = options.dev && config === undefined;

  // Listen first: the engines need the real address (port 0) for their issuer.
  const listen = parseListenAddress(options.listenAddress ?? config?.listener.address ?? DEFAULT_LISTEN);
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ errors: ['Vault is initializing'] }));
  };
  const tls = config && !config.listener.tlsDisable ? config.listener : undefined;
  const server: Server = tls
    ? createHttpsServer(
        { cert: await readFile(tls.tlsCertFile!), key: await readFile(tls.tlsKeyFile!) },
        (req, res) => handler(req, res),
      )
    : createHttpServer((req, res) => handler(req, res));
  acceptListMethod(server, (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.keepAliveTimeout = 65_000;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`cannot listen on ${listen.host}:${listen.port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`));
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = tls ? 'https' : 'http';
  const reachableHost = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host;
  const address = `${scheme}://${reachableHost.includes(':') ? `[${reachableHost}]` : reachableHost}:${port}`;
  const apiAddr = (options.apiAddr ?? config?.apiAddr ?? address).replace(/\/+$/, '');

  let storage: PhysicalStorage | undefined;
  let expiration: ExpirationManager | undefined;
  let tokens: TokenStore | undefined;
  let mounts: SecretsTable | undefined;
  let authTable: AuthTable | undefined;
  let auditTable: AuditTable | undefined;
  let rollbackTimer: NodeJS.Timeout | undefined;

  const shutdownParts = async (): Promise<void> => {
    if (rollbackTimer) clearInterval(rollbackTimer);
    await tokens?.stop().catch((err: unknown) => logger?.error('token store stop failed', { error: messageOf(err) }));
    await expiration?.stop().catch((err: unknown) => logger?.error('expiration manager stop failed', { error: messageOf(err) }));
    await mounts?.cleanup().catch((err: unknown) => logger?.error('engine cleanup failed', { error: messageOf(err) }));
    await authTable?.cleanup().catch((err: unknown) => logger?.error('auth method cleanup failed', { error: messageOf(err) }));
    auditTable?.close();
    await storage?.close().catch((err: unknown) => logger?.error('closing storage failed', { error: messageOf(err) }));
  };

  let rootToken = '';
  let firstStart = false;
  let core: ServerCore;
  try {
    if (dev) {
      storage = openMemoryStorage();
    } else {
      // The keys first: a missing key must not leave a new, empty database behind.
      const keys = await loadSealKeys(config!.seal, { warn: (m) => logger?.warn(`config: ${m}`) });
      storage = await openSealedStorage(openSqliteStorage(config!.storage.path), keys, {
        label: `the storage at ${config!.storage.path}`,
        log: (m) => logger?.info(m),
      });
    }
    if (options.wrapStorage) storage = options.wrapStorage(storage);
    const store = storage;
    const policies = new PolicyStore(store);
    const mountTable = new SecretsTable({
      storage: store,
      createBackend: () => createTvmBackend({ apiAddr, clock }),
      ...(logger ? { logger } : {}),
    });
    mounts = mountTable;
    const calls = leaseBackendCalls(mountTable);
    const manager = new ExpirationManager({
      storage: store,
      calls,
      clock,
      ...(logger ? { logger: (level, msg, fields) => logger[level](`expiration: ${msg}`, fields) } : {}),
      ...(options.hooks ? { hook: (point: LeaseHookPoint) => options.hooks!.at(point) } : {}),
    });
    expiration = manager;
    let wrapping: WrappingStore | undefined;
    const tokenStore = new TokenStore({
      storage: store,
      clock,
      revokeLeases: async (hash) => {
        await manager.revokeByToken(hash);
      },
      onRevoke: async (entry) => wrapping?.dropResponse(entry),
      ...(logger ? { logger } : {}),
    });
    tokens = tokenStore;
    wrapping = new WrappingStore({ storage: store, tokens: tokenStore, clock });
    const auth = new AuthTable({ storage: store, clock, ...(logger ? { logger } : {}) });
    authTable = auth;
    const identity = new IdentityStore({ storage: store, clock });
    const audit = new AuditTable({ storage: store, clock, ...(logger ? { logger } : {}), ...(options.auditCheckpointIntervalMs ? { checkpointIntervalMs: options.auditCheckpointIntervalMs } : {}) });
    auditTable = audit;

    await policies.load();
    await tokenStore.load();
    await mountTable.load();
    await auth.load();
    await identity.load();
    await audit.load();
    await manager.restore();

    let init = await readInit(store);
    if (!init) {
      firstStart = true;
      // A chosen root token id is, in Vault, a token created through auth/token/create
      // (the generated root token is then revoked): its display name and path say so.
      const chosen = options.rootTokenId !== undefined && options.rootTokenId !== '';
      const created = await tokenStore.create({
        id: chosen ? options.rootTokenId! : newTokenId(),
        policies: [ROOT_POLICY],
        parent: '',
        ttlMs: 0,
        explicitMaxTtlMs: 0,
        displayName: chosen ? 'token' : 'root',
        meta: null,
        renewable: false,
        numUses: 0,
        path: chosen ? 'auth/token/create' : 'auth/token/root',
      });
      rootToken = created.id;
      if (!mountTable.get('tvm/')) {
        await mountTable.mount({ path: 'tvm/', type: 'tvm', description: 'tvm: short-lived, narrowly scoped tokens' });
      }
      if (dev) await writeDemoRole(mountTable);
      init = { initialized_at: new Date(clock()).toISOString(), cluster_id: randomUUID(), cluster_name: `tvm-cluster-${randomUUID().slice(0, 8)}` };
      await store.put(INIT_KEY, new TextEncoder().encode(JSON.stringify(init)));
    } else if (options.rootTokenId) {
      logger?.warn('rootTokenId is ignored: this storage was initialised before');
    }

    core = {
      clock,
      ...(logger ? { logger } : {}),
      tokens: tokenStore,
      policies,
      mounts: mountTable,
      auth,
      identity,
      wrapping,
      leases: manager,
      audit,
      clusterName: init.cluster_name,
      clusterId: init.cluster_id,
      storageType: dev ? 'inmem' : 'sqlite',
      sealType: dev ? 'shamir' : 'static',
    };
    tokenStore.start();
    rollbackTimer = setInterval(() => void rollback(mountTable, logger), ROLLBACK_INTERVAL_MS);
    rollbackTimer.unref();
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await shutdownParts();
    throw err;
  }

  handler = createRequestHandler(core);
  if (!options.quiet) print(banner({ dev, address, rootToken, firstStart, storagePath: config?.storage.path }));
  logger?.info('server started', { address, api_addr: apiAddr, storage: dev ? 'inmem' : config!.storage.path });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Stop accepting; let requests under way finish (bounded), then drop idle and remaining connections.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, CLOSE_GRACE_MS);
      timer.unref();
      await closed;
      clearTimeout(timer);
      await shutdownParts();
      logger?.info('server stopped');
    })();
    return closing;
  };

  return { address, apiAddr, rootToken, firstStart, close };
}

/**
 * The expiration manager's way into the engine that owns a lease. The engine
 * works on a buffered view of its storage; its writes go back to the manager,
 * which commits them in one batch with the lease's own change.
 */
function leaseBackendCalls(mounts: SecretsTable): LeaseBackendCalls {
  const request = (
    lease: Parameters<LeaseBackendCalls['revoke']>[0],
    operation: 'renew' | 'revoke',
    incrementMs = 0,
  ): { mount: Mount; view: BufferedView; req: LogicalRequest } | null => {
    const mount = mounts.get(lease.mountPoint);
    if (!mount) return null;
    const view = mounts.buffered(mount);
    return {
      mount,
      view,
      req: {
        operation,
        path: lease.path,
        data: {},
        secret: operation === 'renew' ? { ...lease.secret, incrementMs } : lease.secret,
        caller: { displayName: 'expiration' },
        storage: view.storage,
        mountPoint: mount.entry.path,
        mountLimits: async () => effectiveMountLimits(mount.entry.config),
      },
    };
  };
  /** Runs the engine; on failure its held writes are dropped and its caches of them too. */
  const run = async (r: NonNullable<ReturnType<typeof request>>) => {
    try {
      return await r.mount.backend.handleRequest(r.req);
    } catch (err) {
      mounts.invalidate(r.mount, r.view.take());
      throw err;
    }
  };
  return {
    async revoke(lease) {
      const r = request(lease, 'revoke');
      // The mount is gone (unmounted): nothing is left to revoke.
      if (!r) return [];
      await run(r);
      return r.view.take();
    },
    async renew(lease, incrementMs) {
      const r = request(lease, 'renew', incrementMs);
      if (!r) throw new EngineError('ERR_INVALID_REQUEST', `no mount at ${lease.mountPoint} for this lease`);
      const resp = await run(r);
      const writes = r.view.take();
      if (!resp?.secret) {
        mounts.invalidate(r.mount, writes);
        throw new EngineError('ERR_INVALID_REQUEST', 'lease is not renewable');
      }
      const s = resp.secret;
      const out: Awaited<ReturnType<LeaseBackendCalls['renew']>> = {
        secret: {
          type: s.type,
          internalData: s.internalData,
          ttlMs: s.ttlMs,
          maxTtlMs: s.maxTtlMs,
          renewable: s.renewable,
          issueTimeMs: lease.secret.issueTimeMs,
          leaseId: lease.leaseId,
        },
        writes,
        // The renewal is held to the mount's lease limits as well (Vault's CalculateTTL).
        mount: mountLeaseLimits(r.mount.entry.config),
      };
      if (resp.data) out.data = resp.data;
      if (resp.warnings && resp.warnings.length > 0) out.warnings = resp.warnings;
      return out;
    },
    discard(lease, writes) {
      const mount = mounts.get(lease.mountPoint);
      if (mount) mounts.invalidate(mount, writes);
    },
  };
}

/** Vault's periodic rollback: lets each engine do its housekeeping. */
async function rollback(mounts: SecretsTable, logger?: Logger): Promise<void> {
  for (const m of mounts.list()) {
    try {
      await m.backend.handleRequest({
        operation: 'rollback',
        path: '',
        data: {},
        caller: { displayName: 'system' },
        storage: m.storage,
        mountPoint: m.entry.path,
      });
    } catch (err) {
      logger?.warn('periodic rollback failed', { mount: m.entry.path, error: messageOf(err) });
    }
  }
}

async function writeDemoRole(mounts: SecretsTable): Promise<void> {
  const mount = mounts.get('tvm/')!;
  await mount.backend.handleRequest({
    operation: 'create',
    path: 'roles/demo',
    data: { ...DEMO_ROLE },
    caller: { displayName: 'root' },
    storage: mount.storage,
    mountPoint: mount.entry.path,
  });
}

async function readInit(storage: PhysicalStorage): Promise<InitRecord | null> {
  const raw = await storage.get(INIT_KEY);
  return raw ? (JSON.parse(new TextDecoder().decode(raw)) as InitRecord) : null;
}

/** `127.0.0.1:8200`, `[::1]:8200`, `:8200` (all interfaces). */
export function parseListenAddress(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`invalid listen address ${JSON.stringify(value)}: expected host:port`);
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]);
  return { host, port };
}

function banner(info: { dev: boolean; address: string; rootToken: string; firstStart: boolean; storagePath?: string }): string {
  const lines: string[] = [];
  if (info.dev) {
    lines.push(
      `tvm dev server listening on ${info.address}`,
      'Storage is in memory: everything is lost when the server stops.',
    );
  } else {
    lines.push(`tvm server listening on ${info.address}`, `Storage: ${info.storagePath}`);
  }
  if (info.rootToken) {
    lines.push(
      '',
      `Root Token: ${info.rootToken}`,
      ...(info.dev ? [] : ['This root token is shown once, now. Keep it safe.']),
      '',
      `The tvm engine is mounted at tvm/${info.dev ? ' with a demo role' : ''}. Try:`,
      '',
      `    export VAULT_ADDR='${info.address}'`,
      `    export VAULT_TOKEN='${info.rootToken}'`,
      ...(info.dev ? ['    vault read tvm/creds/demo', '    npx tvm creds demo'] : ['    vault write tvm/roles/<name> read=<pattern> ttl=15m']),
    );
  }
  return `${lines.join('\n')}\n\n`;
}

function stderrLogger(): Logger {
  const write = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  };
  return {
    debug: () => undefined,
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
