// Loads the protocol definitions once and hands out the gRPC service
// definitions and client constructors the plugin needs.
//
// Messages are converted for exactness: field names kept as written in the
// .proto (Vault's `TTL`, `MaxTTL`, `backendUUID`), int64 as decimal strings
// (nanosecond ttls stay exact), bytes as Buffers, enums as numbers, defaults
// filled in, absent message fields null (wire.ts has the shapes).
//
// The service definitions are built here rather than by @grpc/proto-loader:
// its package definition also encodes a descriptor of every message (for
// reflection, which nothing here serves) and resolves every type up front,
// most of the plugin's start-up. Here a method's types are resolved and their
// protobufjs code generated on the method's first call; the messages on every
// request's path use the hand-written codecs of codec.ts instead (the Storage
// calls too, which storage.ts makes on h2_unary.ts rather than grpc-js).

import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import * as codec from './codec.ts';
import { PROTO_FILES, protoSource } from './proto/sources.ts';

/** How reflection-decoded messages are turned into plain objects (as @grpc/proto-loader did with these options). */
export const CONVERSION: protobuf.IConversionOptions = {
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
  /** The client constructor for SystemView, served by Vault over the broker (Storage: h2_unary.ts). */
  SystemViewClient: grpc.ServiceClientConstructor;
}

interface Codec {
  encode(value: unknown): Buffer;
  decode(buf: Buffer): unknown;
}

/** Hand-written codecs by message (full name); the direction not given uses reflection. */
const STATIC: Record<string, Partial<Codec>> = {
  '.pb.HandleRequestArgs': { decode: codec.decodeHandleRequestArgs },
  '.pb.HandleExistenceCheckArgs': { decode: codec.decodeHandleRequestArgs },
  '.pb.HandleRequestReply': { encode: codec.encodeHandleRequestReply as (v: unknown) => Buffer },
};

/** protobufjs's codec for a message, its code generated on first use. */
export function reflectionCodec(type: protobuf.Type): Codec {
  return {
    encode(value) {
      if (Array.isArray(value)) throw new Error(`cannot serialize an array as ${type.name}`);
      return type.encode(type.fromObject(value as Record<string, unknown>)).finish() as Buffer;
    },
    decode: (buf) => type.toObject(type.decode(buf), CONVERSION),
  };
}

function codecOf(type: protobuf.Type, reflectionOnly: boolean): Codec {
  const reflection = reflectionCodec(type);
  const fixed = reflectionOnly ? {} : (STATIC[type.fullName] ?? {});
  return { encode: fixed.encode ?? reflection.encode, decode: fixed.decode ?? reflection.decode };
}

/** The parsed definitions (types unresolved: each resolves on its first use). */
export function protocolRoot(): protobuf.Root {
  const root = new protobuf.Root();
  for (const file of PROTO_FILES) protobuf.parse(protoSource(file), root, { keepCase: true });
  return root;
}

/** grpc-js's definition of a service; `reflectionOnly` leaves out the hand-written codecs (for tests). */
export function serviceDefinition(root: protobuf.Root, name: string, reflectionOnly = false): grpc.ServiceDefinition {
  const service = root.lookupService(name);
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methodsArray) {
    const request = codecOf(service.lookupType(method.requestType), reflectionOnly);
    const response = codecOf(service.lookupType(method.responseType), reflectionOnly);
    definition[method.name] = {
      path: `/${name}/${method.name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: request.encode,
      requestDeserialize: request.decode,
      responseSerialize: response.encode,
      responseDeserialize: response.decode,
    };
  }
  return definition;
}

let cached: Protocol | undefined;

export function loadProtocol(): Protocol {
  if (cached) return cached;
  const root = protocolRoot();
  const def = (name: string) => serviceDefinition(root, name);
  cached = {
    health: def('grpc.health.v1.Health'),
    broker: def('plugin.GRPCBroker'),
    controller: def('plugin.GRPCController'),
    stdio: def('plugin.GRPCStdio'),
    multiplexing: def('pluginutil.multiplexing.PluginMultiplexing'),
    backend: def('pb.Backend'),
    SystemViewClient: grpc.makeClientConstructor(def('pb.SystemView'), 'pb.SystemView'),
  };
  return cached;
}
