// pb.Backend, served to Vault: Setup dials the broker for Storage and
// SystemView and builds the engine; every other call translates and hands
// over to the engine. One plugin process serves one mount (no multiplexing).

import * as grpc from '@grpc/grpc-js';
import type { Backend, Clock, MountLimits } from '../engine/index.ts';
import type { Broker } from './broker.ts';
import type { Logger } from './logger.ts';
import type { Protocol } from './protos.ts';
import { Http2UnaryClient } from './h2_unary.ts';
import { BrokeredStorage, BrokeredSystemView } from './storage.ts';
import { errorOnly, errorReply, toLogicalRequest, toWireResponse } from './translate.ts';
import { BACKEND_TYPE_LOGICAL } from './wire.ts';
import type { ConnInfo, HandleExistenceCheckReply, HandleRequestArgs, HandleRequestReply, SetupArgs, WireError } from './wire.ts';

export const DEFAULT_API_ADDR = 'http://127.0.0.1:8200';

/**
 * The address the engine names its issuer after (`<apiAddr>/v1/<mount>`).
 * Vault does not pass its api_addr to plugins and pb.SystemView has no call for
 * it, so it comes from the plugin's environment: set it at registration with
 * `vault plugin register -env=VAULT_API_ADDR=https://vault.example.com:8200 ...`,
 * or (Vault and OpenBao alike) `-args=--api-addr=https://vault.example.com:8200`.
 */
export function resolveApiAddr(env: Record<string, string | undefined>): string {
  const addr = env.VAULT_API_ADDR?.trim();
  return addr ? addr.replace(/\/+$/, '') : DEFAULT_API_ADDR;
}

/** The environment, with what the plugin's registered arguments set (`--api-addr=<url>`) on top. */
export function withArguments(env: Record<string, string | undefined>, args: readonly string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (let i = 0; i < args.length; i++) {
    const m = /^--api-addr(?:=(.*))?$/.exec(args[i]);
    if (!m) continue;
    const value = m[1] ?? args[++i];
    if (value) out.VAULT_API_ADDR = value;
  }
  return out;
}

let engine: Promise<typeof import('../engine/backend.ts')> | undefined;

/**
 * The engine's code, loaded on first use: the handshake does not need it, so the
 * plugin answers the host sooner (server.ts starts this load once the handshake is out).
 */
export function loadEngine(): Promise<typeof import('../engine/backend.ts')> {
  engine ??= import('../engine/backend.ts');
  return engine;
}

/** How long the mount's lease ttls from SystemView are reused. */
const LIMITS_CACHE_MS = 1000;

export interface BackendServiceOptions {
  protocol: Protocol;
  broker: Broker;
  log: Logger;
  env: Record<string, string | undefined>;
  clock?: Clock;
  /** Builds the engine; defaults to createTvmBackend. */
  createBackend?: (options: { apiAddr: string; clock?: Clock }) => Backend;
}

interface Instance {
  backend: Backend;
  channel: grpc.Channel;
  storageClient: Http2UnaryClient;
  storage: BrokeredStorage;
  system: BrokeredSystemView;
}

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
type Callback = grpc.sendUnaryData<unknown>;

function notSetUp(): Partial<grpc.StatusObject> {
  return { code: grpc.status.FAILED_PRECONDITION, details: 'the backend is not set up: Setup has not run (or Cleanup ran)' };
}

export class BackendService {
  private instance: Instance | null = null;
  private readonly options: BackendServiceOptions;
  private readonly clock: Clock;

  constructor(options: BackendServiceOptions) {
    this.options = options;
    this.clock = options.clock ?? Date.now;
  }

  get isSetUp(): boolean {
    return this.instance !== null;
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      Setup: (call: Call<SetupArgs>, cb: Callback) => void this.setup(call.request).then((r) => cb(null, r), (e: Error) => cb(e)),
      Initialize: (_call: Call<unknown>, cb: Callback) => void this.initialize().then((r) => cb(null, r), (e) => cb(e as Error)),
      HandleRequest: (call: Call<HandleRequestArgs>, cb: Callback) =>
        void this.handleRequest(call.request).then((r) => cb(null, r), (e) => cb(e as Error)),
      HandleExistenceCheck: (call: Call<HandleRequestArgs>, cb: Callback) =>
        void this.handleExistenceCheck(call.request).then((r) => cb(null, r), (e) => cb(e as Error)),
      SpecialPaths: (_call: Call<unknown>, cb: Callback) => {
        if (!this.instance) return cb(notSetUp());
        const paths = this.instance.backend.specialPaths();
        cb(null, { paths: { root: paths.root, unauthenticated: paths.unauthenticated } });
      },
      InvalidateKey: (call: Call<{ key: string }>, cb: Callback) => {
        if (!this.instance) return cb(notSetUp());
        this.instance.backend.invalidateKey(call.request.key);
        cb(null, {});
      },
      Cleanup: (_call: Call<unknown>, cb: Callback) => void this.cleanup().then(() => cb(null, {}), (e) => cb(e as Error)),
      Type: (_call: Call<unknown>, cb: Callback) => cb(null, { type: BACKEND_TYPE_LOGICAL }),
    };
  }

  async setup(args: SetupArgs): Promise<{ err: string }> {
    const { protocol, broker, log, env } = this.options;
    let channel: grpc.Channel;
    let info: ConnInfo;
    try {
      ({ channel, info } = await broker.dial(args.broker_id));
    } catch (err) {
      log.error('setup: cannot reach the host over the broker', { broker_id: args.broker_id, error: (err as Error).message });
      return { err: `tvm plugin setup: ${(err as Error).message}` };
    }
    const clientOptions = { channelOverride: channel };
    const insecure = grpc.credentials.createInsecure();
    // Storage, on every request's path, goes over its own connection on the lean unary client.
    const storageClient = new Http2UnaryClient(info, broker.tls);
    const systemClient = new protocol.SystemViewClient('localhost', insecure, clientOptions);
    const apiAddr = resolveApiAddr(env);
    const create = this.options.createBackend ?? (await loadEngine()).createTvmBackend;
    const backend = create({ apiAddr, ...(this.options.clock ? { clock: this.options.clock } : {}) });
    if (this.instance) await this.cleanup();
    this.instance = { backend, channel, storageClient, storage: new BrokeredStorage(storageClient), system: new BrokeredSystemView(systemClient) };
    log.info('backend set up', { backend_uuid: args.backendUUID, api_addr: apiAddr });
    return { err: '' };
  }

  async initialize(): Promise<{ err: WireError | null }> {
    const inst = this.instance;
    if (!inst) throw notSetUp();
    try {
      await inst.backend.initialize(inst.storage);
      return { err: null };
    } catch (err) {
      this.options.log.error('initialize failed', { error: (err as Error).message });
      return { err: errorOnly(err) };
    }
  }

  async handleRequest(args: HandleRequestArgs): Promise<HandleRequestReply> {
    const inst = this.instance;
    if (!inst) throw notSetUp();
    let logical;
    try {
      logical = toLogicalRequest(args.request, inst.storage);
    } catch (err) {
      this.options.log.warn('request refused', { error: (err as Error).message, path: args.request?.path });
      return errorReply(err);
    }
    // The mount's lease ttls (the server caps the lease by them; the token must not outlive it),
    // asked only when the engine needs them, and at most once a second.
    logical.mountLimits = () => this.mountLimits(inst.system);
    try {
      const resp = await inst.backend.handleRequest(logical);
      if (!resp) return { response: null, err: null };
      return { response: toWireResponse(resp, logical, this.clock()), err: null };
    } catch (err) {
      const reply = errorReply(err);
      if (reply.err?.err_type === 2) {
        this.options.log.error('request failed', { operation: logical.operation, path: logical.path, error: (err as Error).message });
      } else {
        this.options.log.debug('request answered with an error', { operation: logical.operation, path: logical.path, code: (err as { code?: string }).code });
      }
      return reply;
    }
  }

  private limits: { atMs: number; value: Promise<MountLimits> } | null = null;

  /** SystemView's DefaultLeaseTTL and MaxLeaseTTL, cached for a second (a tune takes effect within it). */
  private mountLimits(system: BrokeredSystemView): Promise<MountLimits> {
    const now = this.clock();
    if (this.limits && now - this.limits.atMs < LIMITS_CACHE_MS) return this.limits.value;
    const value = Promise.all([system.defaultLeaseTtlNs(), system.maxLeaseTtlNs()]).then(([def, max]) => ({
      defaultTtlMs: Number(def / 1_000_000n),
      maxTtlMs: Number(max / 1_000_000n),
    }));
    this.limits = { atMs: now, value };
    // A failed call is not cached.
    value.catch(() => {
      if (this.limits?.value === value) this.limits = null;
    });
    return value;
  }

  async handleExistenceCheck(args: HandleRequestArgs): Promise<HandleExistenceCheckReply> {
    const inst = this.instance;
    if (!inst) throw notSetUp();
    try {
      const logical = toLogicalRequest(args.request, inst.storage);
      const result = await inst.backend.handleExistenceCheck(logical);
      return { check_found: result.checkFound, exists: result.exists, err: null };
    } catch (err) {
      return { check_found: false, exists: false, err: errorOnly(err) };
    }
  }

  async cleanup(): Promise<void> {
    const inst = this.instance;
    this.instance = null;
    if (!inst) return;
    try {
      await inst.backend.cleanup();
    } finally {
      inst.channel.close();
      inst.storageClient.close();
    }
  }
}
