// The .proto files the plugin serves and calls, in load order (imports first).
// When running from source they are read from this folder; the bundler
// (scripts/build-plugin.mjs) replaces this module with one that inlines the
// same files, so the bundled plugin reads nothing from disk.

import { readFileSync } from 'node:fs';

export const PROTO_FILES: readonly string[] = [
  'wkt/google/protobuf/empty.proto',
  'wkt/google/protobuf/timestamp.proto',
  'grpc/health.proto',
  'goplugin/grpc_broker.proto',
  'goplugin/grpc_controller.proto',
  'goplugin/grpc_stdio.proto',
  'vault/logical.proto',
  'vault/backend.proto',
  'vault/multiplexing.proto',
];

export function protoSource(file: string): string {
  return readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');
}
