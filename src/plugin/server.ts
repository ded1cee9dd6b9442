// The plugin process: checks the start-up contract, makes the AutoMTLS
// certificate, serves every service on a unix socket over mTLS, prints the one
// handshake line, and stops cleanly (Shutdown, SIGTERM, the parent going away).

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Backend, Clock } from '../engine/index.ts';
import { BackendService, loadEngine } from './backend_service.ts';
import { Broker } from './broker.ts';
import { checkEnvironment, handshakeLine, type Env } from './handshake.ts';
import { createLogger, parseLevel, type Logger } from './logger.ts';
import { loadProtocol } from './protos.ts';
import { generateCertificate, handshakeCertificate } from './tls.ts';

export interface PluginIo {
  env: Env;
  /** Receives the handshake line, and nothing else, ever. */
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface PluginOptions {
  clock?: Clock;
  createBackend?: (options: { apiAddr: string; clock?: Clock }) => Backend;
  /** How often to check that the parent (Vault) is still there; 0 disables. */
  parentCheckMs?: number;
}

export interface RunningPlugin {
  socketPath: string;
  log: Logger;
  /** Stops serving, cleans up the backend and the socket; safe to call twice. */
  stop(reason: string): Promise<void>;
  readonly stopped: Promise<void>;
}

export const HEALTH_SERVICE = 'plugin';

function healthService(): grpc.UntypedServiceImplementation {
  const statusOf = (service: string): number | null => (service === '' || service === HEALTH_SERVICE ? 1 : null);
  return {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const status = statusOf(call.request.service);
      if (status === null) return cb({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
      cb(null, { status });
    },
    Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
      call.write({ status: statusOf(call.request.service) ?? 3 });
    },
  };
}

export async function startPlugin(io: PluginIo, options: PluginOptions = {}): Promise<RunningPlugin> {
  const config = checkEnvironment(io.env);
  const log = createLogger({ level: parseLevel(io.env.TVM_LOG_LEVEL ?? 'info'), write: io.stderr });
  const protocol = loadProtocol();
  const cert = await generateCertificate();
  const broker = new Broker({ hostCertPem: config.clientCertPem, certPem: cert.certPem, keyPem: cert.keyPem }, log);
  const backend = new BackendService({
    protocol,
    broker,
    log,
    env: io.env,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.createBackend ? { createBackend: options.createBackend } : {}),
  });

  const server = new grpc.Server({
    'grpc.max_receive_message_length': 2 ** 31 - 1,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.enable_channelz': 0,
  });
  const stdioStreams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  let stop: (reason: string) => Promise<void> = async () => undefined;

  server.addService(protocol.health, healthService());
  server.addService(protocol.broker, broker.service());
  server.addService(protocol.controller, {
    Shutdown: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      cb(null, {});
      setImmediate(() => void stop('the host asked for shutdown'));
    },
  });
  server.addService(protocol.stdio, {
    // Nothing is mirrored: stdout carries only the handshake, logs go to stderr directly.
    StreamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      stdioStreams.add(call);
      call.on('cancelled', () => stdioStreams.delete(call));
    },
  });
  server.addService(protocol.multiplexing, {
    MultiplexingSupport: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { supported: false }),
  });
  server.addService(protocol.backend, backend.implementation());

  const dir = config.socketDir ?? tmpdir();
  const socketPath = join(dir, `tvm-plugin-${randomBytes(6).toString('hex')}.sock`);
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(config.clientCertPem),
    [{ private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) }],
    true,
  );
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, credentials, (err) => (err ? reject(err) : resolve()));
  });

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let stopping: Promise<void> | null = null;
  let parentTimer: NodeJS.Timeout | undefined;
  stop = (reason: string) => {
    if (stopping) return stopping;
    stopping = (async () => {
      log.info('plugin stopping', { reason });
      if (parentTimer) clearInterval(parentTimer);
      for (const s of stdioStreams) s.end();
      broker.close();
      await backend.cleanup().catch((err: unknown) => log.warn('cleanup failed', { error: (err as Error).message }));
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      rmSync(socketPath, { force: true });
      resolveStopped();
    })();
    return stopping;
  };

  const parentCheckMs = options.parentCheckMs ?? 1000;
  if (parentCheckMs > 0) {
    const parent = process.ppid;
    parentTimer = setInterval(() => {
      if (process.ppid !== parent) void stop('the parent process is gone');
    }, parentCheckMs);
    parentTimer.unref();
  }

  io.stdout(handshakeLine(socketPath, handshakeCertificate(cert.der)));
  log.info('plugin serving', { socket: socketPath, protocol: 5 });
  // The engine's code, while the host dials in and sends Setup.
  if (!options.createBackend) setImmediate(() => void loadEngine().catch((err: unknown) => log.error('cannot load the engine', { error: (err as Error).message })));
  return { socketPath, log, stop, stopped };
}
