// The server config file, Vault-style, in HCL or JSON:
//
//   storage "sqlite" { path = "./data/tvm.db" }
//   listener "tcp" {
//     address     = "127.0.0.1:8200"
//     tls_disable = true            # or tls_cert_file / tls_key_file
//   }
//   api_addr = "http://127.0.0.1:8200"
//
// HCL is parsed with @cdktf/hcl2json. Relative file paths are resolved against
// the config file's directory.

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';

export interface ListenerConfig {
  /** host:port */
  address: string;
  tlsDisable: boolean;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

export interface ServerConfig {
  storage: { type: 'sqlite'; path: string };
  listener: ListenerConfig;
  apiAddr?: string;
  /** Keys that were understood but have no effect here, or are unknown. */
  warnings: string[];
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Vault config keys accepted without effect on this server. */
const IGNORED_KEYS = new Set([
  'ui',
  'disable_mlock',
  'cluster_addr',
  'cluster_name',
  'log_level',
  'log_format',
  'log_file',
  'default_lease_ttl',
  'max_lease_ttl',
  'plugin_directory',
  'pid_file',
  'disable_cache',
  'telemetry',
  'raw_storage_endpoint',
  'disable_clustering',
  'enable_response_header_hostname',
  'enable_response_header_raft_node_id',
]);

const LISTENER_KEYS = new Set(['address', 'tls_disable', 'tls_cert_file', 'tls_key_file']);
const LISTENER_IGNORED = new Set([
  'cluster_address',
  'tls_min_version',
  'tls_max_version',
  'tls_cipher_suites',
  'tls_client_ca_file',
  'tls_require_and_verify_client_cert',
  'tls_disable_client_certs',
  'max_request_size',
  'max_request_duration',
  'proxy_protocol_behavior',
  'x_forwarded_for_authorized_addrs',
  'telemetry',
  'unauthenticated_metrics_access',
  'http_idle_timeout',
  'http_read_header_timeout',
  'http_read_timeout',
  'http_write_timeout',
]);

export async function loadConfig(path: string): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, path);
}

/** Parses config text; `filename` names it in errors and anchors relative paths. */
export async function parseConfig(text: string, filename: string): Promise<ServerConfig> {
  let doc: unknown;
  const isJson = filename.endsWith('.json') || text.trimStart().startsWith('{');
  try {
    doc = isJson ? JSON.parse(text) : await parseHcl(filename, text);
  } catch (err) {
    const message = String((err as Error).message ?? err).replace(/^parse config: /, '');
    throw new ConfigError(`cannot parse config file ${filename}: ${message}`);
  }
  if (!isObject(doc)) throw new ConfigError(`config file ${filename}: the top level must be an object`);
  const baseDir = dirname(resolve(filename));
  const warnings: string[] = [];

  const storageBlocks = labelledBlocks(doc.storage, 'storage');
  if (storageBlocks.length === 0) {
    throw new ConfigError(`config file ${filename}: a storage block is required: storage "sqlite" { path = "..." }`);
  }
  if (storageBlocks.length > 1) throw new ConfigError(`config file ${filename}: only one storage block is allowed`);
  const [storageType, storageBody] = storageBlocks[0];
  if (storageType !== 'sqlite') {
    throw new ConfigError(
      `config file ${filename}: storage ${JSON.stringify(storageType)} is not supported; use storage "sqlite" { path = "..." }`,
    );
  }
  const dbPath = storageBody.path;
  if (typeof dbPath !== 'string' || dbPath.trim() === '') {
    throw new ConfigError(`config file ${filename}: storage "sqlite" needs path = "<database file>"`);
  }
  for (const key of Object.keys(storageBody)) if (key !== 'path') warnings.push(`storage "sqlite": unknown key ${key}`);

  const listenerBlocks = labelledBlocks(doc.listener, 'listener');
  if (listenerBlocks.length === 0) {
    throw new ConfigError(`config file ${filename}: a listener block is required: listener "tcp" { address = "127.0.0.1:8200" }`);
  }
  if (listenerBlocks.length > 1) throw new ConfigError(`config file ${filename}: only one listener block is supported`);
  const [listenerType, l] = listenerBlocks[0];
  if (listenerType !== 'tcp') {
    throw new ConfigError(`config file ${filename}: listener ${JSON.stringify(listenerType)} is not supported; use listener "tcp"`);
  }
  for (const key of Object.keys(l)) {
    if (LISTENER_IGNORED.has(key)) warnings.push(`listener "tcp": ${key} has no effect on this server`);
    else if (!LISTENER_KEYS.has(key)) warnings.push(`listener "tcp": unknown key ${key}`);
  }
  const address = l.address === undefined ? '127.0.0.1:8200' : l.address;
  if (typeof address !== 'string' || !/^.+:\d+$/.test(address)) {
    throw new ConfigError(`config file ${filename}: listener "tcp": address must be "host:port", got ${JSON.stringify(address)}`);
  }
  const tlsDisable = boolValue(l.tls_disable, `config file ${filename}: listener "tcp": tls_disable`) ?? false;
  const listener: ListenerConfig = { address, tlsDisable };
  if (!tlsDisable) {
    if (typeof l.tls_cert_file !== 'string' || typeof l.tls_key_file !== 'string') {
      throw new ConfigError(
        `config file ${filename}: listener "tcp": tls_cert_file and tls_key_file are required unless tls_disable = true`,
      );
    }
    listener.tlsCertFile = resolve(baseDir, l.tls_cert_file);
    listener.tlsKeyFile = resolve(baseDir, l.tls_key_file);
  }

  const config: ServerConfig = { storage: { type: 'sqlite', path: resolve(baseDir, dbPath) }, listener, warnings };
  if (doc.api_addr !== undefined) {
    if (typeof doc.api_addr !== 'string' || !/^https?:\/\/[^/]+/.test(doc.api_addr)) {
      throw new ConfigError(`config file ${filename}: api_addr must be a URL such as "http://127.0.0.1:8200"`);
    }
    config.apiAddr = doc.api_addr.replace(/\/+$/, '');
  }
  for (const key of Object.keys(doc)) {
    if (key === 'storage' || key === 'listener' || key === 'api_addr') continue;
    if (IGNORED_KEYS.has(key)) warnings.push(`${key} has no effect on this server`);
    else warnings.push(`unknown config key ${key}`);
  }
  return config;
}

/**
 * Vault's labelled blocks in either syntax: HCL gives `{sqlite: [{...}]}`,
 * JSON `{sqlite: {...}}` or a list of such objects.
 */
function labelledBlocks(value: unknown, kind: string): Array<[string, Record<string, unknown>]> {
  if (value === undefined) return [];
  const out: Array<[string, Record<string, unknown>]> = [];
  const items = Array.isArray(value) ? value : [value];
  for (const item of items) {
    if (!isObject(item)) throw new ConfigError(`${kind} must be a block such as ${kind} "<type>" { ... }`);
    for (const [label, body] of Object.entries(item)) {
      const bodies = Array.isArray(body) ? body : [body];
      for (const b of bodies) {
        if (!isObject(b)) throw new ConfigError(`${kind} ${JSON.stringify(label)} must be a block`);
        out.push([label, b]);
      }
    }
  }
  return out;
}

function boolValue(value: unknown, what: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === '1' || value === 'true') return true;
  if (value === 0 || value === '0' || value === 'false') return false;
  throw new ConfigError(`${what} must be true or false, got ${JSON.stringify(value)}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
