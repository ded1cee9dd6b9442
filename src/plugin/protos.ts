// Loads the protocol definitions once and hands out the gRPC service
// definitions and client constructors the plugin needs.
//
// Options chosen for exactness: field names kept as written in the .proto
// (Vault's `TTL`, `MaxTTL`, `backendUUID`), int64 as decimal strings (nanosecond
// ttls stay exact), bytes as Buffers, enums as numbers, defaults filled in.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { PROTO_FILES, protoSource } from './proto/sources.ts';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

export interface Protocol {
  health: grpc.ServiceDefinition;
  broker: grpc.ServiceDefinition;
  controller: grpc.ServiceDefinition;
  stdio: grpc.ServiceDefinition;
  multiplexing: grpc.ServiceDefinition;
  backend: grpc.ServiceDefinition;
  /** Client constructors for the services Vault serves over the broker. */
  StorageClient: grpc.ServiceClientConstructor;
  SystemViewClient: grpc.ServiceClientConstructor;
}

let cached: Protocol | undefined;

function lookup(grpcObject: grpc.GrpcObject, name: string): grpc.ServiceClientConstructor {
  let node: unknown = grpcObject;
  for (const part of name.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) throw new Error(`protocol definition has no service ${name}`);
  return node as grpc.ServiceClientConstructor;
}

export function loadProtocol(): Protocol {
  if (cached) return cached;
  const root = new protobuf.Root();
  for (const file of PROTO_FILES) protobuf.parse(protoSource(file), root, { keepCase: true });
  root.resolveAll();
  const definition = protoLoader.fromJSON(root.toJSON(), LOADER_OPTIONS);
  const g = grpc.loadPackageDefinition(definition);
  cached = {
    health: lookup(g, 'grpc.health.v1.Health').service,
    broker: lookup(g, 'plugin.GRPCBroker').service,
    controller: lookup(g, 'plugin.GRPCController').service,
    stdio: lookup(g, 'plugin.GRPCStdio').service,
    multiplexing: lookup(g, 'pluginutil.multiplexing.PluginMultiplexing').service,
    backend: lookup(g, 'pb.Backend').service,
    StorageClient: lookup(g, 'pb.Storage'),
    SystemViewClient: lookup(g, 'pb.SystemView'),
  };
  return cached;
}
