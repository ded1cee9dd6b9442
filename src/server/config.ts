// The server config file, Vault-style, in HCL or JSON:
//
//   storage "sqlite" { path = "./data/tvm.db" }
//   listener "tcp" {
//     address     = "127.0.0.1:8200"
//     tls_disable = true            # or tls_cert_file / tls_key_file
//   }
//   api_addr = "http://127.0.0.1:8200"
//   seal "static" {                 # required: the storage is encrypted at rest
//     current_key_id = "2025-06-1"
//     current_key    = "file:///etc/tvm/seal-2025-06-1.key"   # or "env://TVM_SEAL_KEY"
//     # previous_key_id = "2025-01-1"                          # while rotating
//     # previous_key    = "file:///etc/tvm/seal-2025-01-1.key"
//   }
//
// HCL is parsed with @cdktf/hcl2json. Relative file paths are resolved against
// the config file's directory. The seal stanza follows OpenBao's seal "static";
// its keys are read at start (loadSealKeys), never kept in ServerConfig.

import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import type { SealKeyring } from './storage/index.ts';

export interface ListenerConfig {
  /** host:port */
  address: string;
  tlsDisable: boolean;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** Where a seal key is read: a file (`file://<path>`) or an environment variable (`env://<name>`). */
export type SealKeyRef = { kind: 'file'; path: string } | { kind: 'env'; name: string };

export interface SealKeyConfig {
  /** The key's permanent id (stored beside every value it seals; not secret). */
  id: string;
  ref: SealKeyRef;
}

/** `seal "static" { ... }`: new writes under `current`; `previous` while rotating. */
export interface SealConfig {
  type: 'static';
  current: SealKeyConfig;
  previous?: SealKeyConfig;
}

export interface ServerConfig {
  storage: { type: 'sqlite'; path: string };
  seal: SealConfig;
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
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? (err as Error).message);
    throw new ConfigError(`cannot read config file ${path}: ${why} (vault-config/dev.hcl is an example to start from)`);
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

  const seal = parseSeal(doc.seal, `config file ${filename}`, baseDir, warnings);

  const config: ServerConfig = { storage: { type: 'sqlite', path: resolve(baseDir, dbPath) }, seal, listener, warnings };
  if (doc.api_addr !== undefined) {
    if (typeof doc.api_addr !== 'string' || !/^https?:\/\/[^/]+/.test(doc.api_addr)) {
      throw new ConfigError(`config file ${filename}: api_addr must be a URL such as "http://127.0.0.1:8200"`);
    }
    config.apiAddr = doc.api_addr.replace(/\/+$/, '');
  }
  for (const key of Object.keys(doc)) {
    if (key === 'storage' || key === 'listener' || key === 'api_addr' || key === 'seal') continue;
    if (IGNORED_KEYS.has(key)) warnings.push(`${key} has no effect on this server`);
    else warnings.push(`unknown config key ${key}`);
  }
  return config;
}

const SEAL_STATIC_KEYS = new Set(['current_key_id', 'current_key', 'previous_key_id', 'previous_key', 'disabled']);
const SEAL_EXAMPLE = 'seal "static" { current_key_id = "1", current_key = "file:///etc/tvm/seal.key" }';
const KEY_ID = /^[\x21-\x7e]{1,128}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The seal stanza (required: the persistent server's storage is always sealed). Never echoes a key. */
function parseSeal(value: unknown, where: string, baseDir: string, warnings: string[]): SealConfig {
  const blocks = labelledBlocks(value, 'seal');
  if (blocks.length === 0) {
    throw new ConfigError(
      `${where}: a seal stanza is required (the storage is encrypted with a 32-byte key you provide): ${SEAL_EXAMPLE}`,
    );
  }
  if (blocks.length > 1) throw new ConfigError(`${where}: only one seal stanza is allowed`);
  const [type, body] = blocks[0];
  if (type !== 'static') {
    throw new ConfigError(`${where}: seal ${JSON.stringify(type)} is not supported; use ${SEAL_EXAMPLE}`);
  }
  const at = `${where}: seal "static"`;
  if (boolValue(body.disabled, `${at}: disabled`)) {
    throw new ConfigError(`${at}: disabled = true is not supported: the persistent server's storage is always sealed`);
  }
  for (const key of Object.keys(body)) if (!SEAL_STATIC_KEYS.has(key)) warnings.push(`seal "static": unknown key ${key}`);
  const current = sealKeyConfig(body, 'current', at, baseDir)!;
  const previous = sealKeyConfig(body, 'previous', at, baseDir);
  if (!previous) return { type: 'static', current };
  if (previous.id === current.id) throw new ConfigError(`${at}: previous_key_id must differ from current_key_id`);
  return { type: 'static', current, previous };
}

function sealKeyConfig(
  body: Record<string, unknown>,
  which: 'current' | 'previous',
  at: string,
  baseDir: string,
): SealKeyConfig | undefined {
  const idField = `${which}_key_id`;
  const keyField = `${which}_key`;
  const id = body[idField];
  const ref = body[keyField];
  if (which === 'previous' && id === undefined && ref === undefined) return undefined;
  if (ref === undefined) {
    throw new ConfigError(`${at}: ${keyField} is required${which === 'previous' ? ' with previous_key_id' : ''}: "file:///path/to/key" or "env://VAR_NAME"`);
  }
  if (id === undefined) throw new ConfigError(`${at}: ${idField} is required with ${keyField}`);
  if (typeof id !== 'string' || !KEY_ID.test(id)) {
    throw new ConfigError(`${at}: ${idField} must be 1 to 128 printable characters without spaces`);
  }
  if (typeof ref === 'string' && ref.startsWith('file://')) {
    const path = ref.slice('file://'.length);
    if (path === '') throw new ConfigError(`${at}: ${keyField} = "file://..." needs the key file's path`);
    return { id, ref: { kind: 'file', path: resolve(baseDir, path) } };
  }
  if (typeof ref === 'string' && ref.startsWith('env://')) {
    const name = ref.slice('env://'.length);
    if (!ENV_NAME.test(name)) {
      throw new ConfigError(`${at}: ${keyField} = "env://..." needs an environment variable name (letters, digits and _)`);
    }
    return { id, ref: { kind: 'env', name } };
  }
  throw new ConfigError(
    `${at}: ${keyField} must be "file:///path/to/key" or "env://VAR_NAME" (a key written in the config itself is not accepted)`,
  );
}

export interface SealKeyLoadOptions {
  /** Where env:// keys are read (default process.env). */
  env?: Record<string, string | undefined>;
  /** Told about key files that group or others may read. */
  warn?: (message: string) => void;
}

/**
 * Reads the seal's keys (at start, before the storage is opened). A key is 32
 * bytes: a file of exactly 32 raw bytes, or 64 hex digits or base64 (in a
 * file or an environment variable). Throws a ConfigError naming the field and
 * where the key was looked for, never the key.
 */
export async function loadSealKeys(seal: SealConfig, options: SealKeyLoadOptions = {}): Promise<SealKeyring> {
  const keyring: SealKeyring = { current: { id: seal.current.id, key: await readSealKey(seal.current.ref, 'current_key', options) } };
  if (seal.previous) {
    keyring.previous = { id: seal.previous.id, key: await readSealKey(seal.previous.ref, 'previous_key', options) };
  }
  return keyring;
}

async function readSealKey(ref: SealKeyRef, field: string, options: SealKeyLoadOptions): Promise<Uint8Array> {
  const at = `seal "static": ${field}`;
  let material: Buffer;
  let from: string;
  if (ref.kind === 'env') {
    from = `environment variable ${ref.name}`;
    const value = (options.env ?? process.env)[ref.name];
    if (value === undefined || value === '') throw new ConfigError(`${at}: ${from} is not set`);
    material = Buffer.from(value, 'utf8');
  } else {
    from = `key file ${ref.path}`;
    let mode: number;
    try {
      mode = (await stat(ref.path)).mode & 0o777;
      material = await readFile(ref.path);
    } catch (err) {
      throw new ConfigError(`${at}: cannot read ${from}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
    if ((mode & 0o077) !== 0) {
      options.warn?.(`${at}: ${from} may be read by group or others (mode 0${mode.toString(8)}); chmod 600 it`);
    }
  }
  const key = decodeSealKey(material, ref.kind === 'file');
  if (key === null) {
    throw new ConfigError(
      `${at}: ${from} must hold a 32-byte key (${ref.kind === 'file' ? '32 raw bytes, ' : ''}64 hex digits or base64); it holds ${material.length} bytes that are none of these`,
    );
  }
  return key;
}

/** The 32-byte key in `material`, or null. */
function decodeSealKey(material: Buffer, rawAllowed: boolean): Buffer | null {
  if (rawAllowed && material.length === 32) return material;
  const text = material.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text) || /^[A-Za-z0-9_-]{43}$/.test(text)) return Buffer.from(text, 'base64');
  return null;
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
