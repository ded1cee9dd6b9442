// go-plugin's GRPCBroker, the plugin side. The host opens StartStream once and
// sends a ConnInfo for every service it serves for us (Vault: Storage and
// SystemView for Setup's broker_id). A ConnInfo may arrive before or after the
// RPC that names its id, so both orders are kept: arrived infos wait in a map,
// early dialers wait for their id (5 s, as go-plugin).
//
// Dialing back presents the plugin's own handshake certificate and trusts only
// the host's AutoMTLS certificate.

import * as grpc from '@grpc/grpc-js';
import type { Logger } from './logger.ts';
import type { ConnInfo } from './wire.ts';

export interface BrokerTls {
  /** The host's certificate (PLUGIN_CLIENT_CERT), the only CA trusted. */
  hostCertPem: string;
  certPem: string;
  keyPem: string;
}

export const DIAL_TIMEOUT_MS = 5_000;

export class Broker {
  private readonly infos = new Map<number, ConnInfo>();
  private readonly waiters = new Map<number, Array<(info: ConnInfo) => void>>();
  private readonly streams = new Set<grpc.ServerDuplexStream<ConnInfo, ConnInfo>>();
  /** The keys the plugin dials the host's services with. */
  readonly tls: BrokerTls;
  private readonly log: Logger;

  constructor(tls: BrokerTls, log: Logger) {
    this.tls = tls;
    this.log = log;
  }

  /** The plugin.GRPCBroker service implementation. */
  service(): grpc.UntypedServiceImplementation {
    return {
      StartStream: (stream: grpc.ServerDuplexStream<ConnInfo, ConnInfo>) => {
        this.streams.add(stream);
        stream.on('data', (info: ConnInfo) => this.receive(info));
        stream.on('error', () => this.streams.delete(stream));
        stream.on('end', () => {
          this.streams.delete(stream);
          stream.end();
        });
      },
    };
  }

  receive(info: ConnInfo): void {
    this.log.trace('broker: connection info received', { service_id: info.service_id, network: info.network });
    const waiting = this.waiters.get(info.service_id);
    if (waiting && waiting.length > 0) {
      this.waiters.delete(info.service_id);
      for (const resolve of waiting) resolve(info);
      return;
    }
    this.infos.set(info.service_id, info);
  }

  /** Waits for the ConnInfo of `id` (consuming it) for up to timeoutMs. */
  connInfo(id: number, timeoutMs = DIAL_TIMEOUT_MS): Promise<ConnInfo> {
    const ready = this.infos.get(id);
    if (ready) {
      this.infos.delete(id);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = this.waiters.get(id) ?? [];
        const rest = list.filter((fn) => fn !== done);
        if (rest.length) this.waiters.set(id, rest);
        else this.waiters.delete(id);
        reject(new Error(`timeout waiting for the host's broker connection info for id ${id}`));
      }, timeoutMs);
      const done = (info: ConnInfo): void => {
        clearTimeout(timer);
        resolve(info);
      };
      const list = this.waiters.get(id) ?? [];
      list.push(done);
      this.waiters.set(id, list);
    });
  }

  /** Dials the host's service `id` over mTLS; resolves once the channel is ready, with where it leads. */
  async dial(id: number, timeoutMs = DIAL_TIMEOUT_MS): Promise<{ channel: grpc.Channel; info: ConnInfo }> {
    const info = await this.connInfo(id, timeoutMs);
    const target = brokerTarget(info);
    const creds = grpc.credentials.createSsl(
      Buffer.from(this.tls.hostCertPem),
      Buffer.from(this.tls.keyPem),
      Buffer.from(this.tls.certPem),
    );
    const channel = new grpc.Channel(target, creds, {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.default_authority': 'localhost',
      'grpc.max_receive_message_length': 2 ** 31 - 1,
      'grpc.max_send_message_length': 2 ** 31 - 1,
      'grpc.enable_channelz': 0,
      'grpc.enable_retries': 0,
    });
    await waitReady(channel, Date.now() + timeoutMs).catch((err: unknown) => {
      channel.close();
      throw new Error(`cannot connect to the host's broker service ${id} at ${info.address}: ${(err as Error).message}`);
    });
    return { channel, info };
  }

  close(): void {
    for (const stream of this.streams) {
      try {
        stream.end();
      } catch {
        // already closed
      }
    }
    this.streams.clear();
  }
}

export function brokerTarget(info: ConnInfo): string {
  if (info.network === 'unix') return `unix:${info.address}`;
  if (info.network === 'tcp') return info.address;
  throw new Error(`unknown broker network ${JSON.stringify(info.network)}`);
}

/** Connects the channel and waits until READY or the deadline; TLS failures surface here. */
export function waitReady(channel: grpc.Channel, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let lastFailure = 'no connection';
    const check = (): void => {
      const state = channel.getConnectivityState(true);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.SHUTDOWN) return reject(new Error('channel closed'));
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) lastFailure = 'the connection or its TLS handshake failed';
      if (Date.now() >= deadline) return reject(new Error(lastFailure));
      channel.watchConnectivityState(state, Math.min(deadline, Date.now() + 1000), () => check());
    };
    check();
  });
}
