// connect(): a Vault client configured the way the vault CLI configures
// itself (VAULT_ADDR, VAULT_TOKEN, ~/.vault-token, VAULT_SKIP_VERIFY,
// VAULT_CACERT, VAULT_NAMESPACE, VAULT_CLIENT_TIMEOUT), wrapped so every failure
// becomes one of the library's typed errors.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  InvalidInputError,
  ServerUnreachableError,
  UnexpectedResponseError,
  VaultRequestError,
  vaultErrorLines,
} from './errors.ts';
import { createTransport } from './transport.ts';

export const DEFAULT_ADDR = 'http://127.0.0.1:8200';
export const DEFAULT_MOUNT = 'tvm';
const DEFAULT_TIMEOUT_MS = 60_000;

/** Environment variables as `process.env` holds them; injected so tests control them. */
export type Env = Record<string, string | undefined>;

export interface ConnectOptions {
  /** Vault's address; defaults to env VAULT_ADDR, then http://127.0.0.1:8200. */
  addr?: string;
  /** The Vault token; defaults to env VAULT_TOKEN, then the file ~/.vault-token. */
  token?: string;
  env?: Env;
  /** Per-request timeout; defaults to env VAULT_CLIENT_TIMEOUT (seconds or a duration), then 60s. */
  timeoutMs?: number;
  /** The tvm mount path the engine functions use; default `tvm`. */
  mount?: string;
  /** Reads a file as text or returns null; injectable for tests. */
  readTextFile?: (path: string) => string | null;
  /** Ask Vault to wrap every answer (X-Vault-Wrap-TTL), e.g. 5m: the answer is then wrap_info alone. */
  wrapTtl?: string;
}

/** Vault's response envelope. */
export interface VaultResponse {
  request_id: string;
  lease_id: string;
  renewable: boolean;
  lease_duration: number;
  data: Record<string, unknown> | null;
  warnings: string[] | null;
  wrap_info: unknown;
  auth: unknown;
}

export interface VaultConnection {
  /** The address requests go to, without a trailing slash. */
  readonly addr: string;
  /** The tvm mount, without slashes, e.g. `tvm`. */
  readonly mount: string;
  /** Whether a token was found (from the options, VAULT_TOKEN or ~/.vault-token). */
  readonly hasToken: boolean;
  /** GET; null when Vault answers 204 or 404 with no errors (Vault's "nothing here"). */
  read(path: string): Promise<VaultResponse | null>;
  /** GET of a path that answers a raw JSON document instead of the envelope. */
  readRaw(path: string): Promise<unknown>;
  /** POST; null when Vault answers 204. */
  write(path: string, body?: Record<string, unknown>): Promise<VaultResponse | null>;
  /** LIST (as GET ?list=true); the keys, or [] when Vault answers 404 (an empty folder). */
  list(path: string): Promise<string[]>;
  delete(path: string): Promise<void>;
}

function defaultReadTextFile(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Parses VAULT_CLIENT_TIMEOUT: integer seconds or `<n>s|m|h`. */
export function parseTimeoutMs(raw: string): number {
  const m = /^\s*(\d+)(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) throw new InvalidInputError(`VAULT_CLIENT_TIMEOUT ${JSON.stringify(raw)} is not a duration such as 30 or 30s`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return n * factor;
}

/** Checks and normalises a Vault address: http(s) URL, no trailing slash. */
export function normaliseAddr(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidInputError(`VAULT_ADDR ${JSON.stringify(raw)} is not a URL such as ${DEFAULT_ADDR}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidInputError(`VAULT_ADDR ${JSON.stringify(raw)} must start with http:// or https://`);
  }
  return raw.replace(/\/+$/, '');
}

/** The token the vault CLI would use: explicit, then VAULT_TOKEN, then ~/.vault-token. */
export function resolveToken(options: ConnectOptions, env: Env): string {
  if (options.token !== undefined) return options.token;
  if (env.VAULT_TOKEN) return env.VAULT_TOKEN;
  const home = env.HOME || env.USERPROFILE;
  if (!home) return '';
  const text = (options.readTextFile ?? defaultReadTextFile)(join(home, '.vault-token'));
  return text ? text.trim() : '';
}

/** Encodes each segment of an API path (names typed by users may hold any character). */
export function apiPath(...parts: string[]): string {
  return parts
    .join('/')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

const NO_TOKEN = 'permission denied: no Vault token was given (set VAULT_TOKEN, or write it to ~/.vault-token, as the vault CLI reads them)';

/** The words for a connection failure, by its code: the CLI says the same for Vault and the broker. */
export const UNREACHABLE_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  ECONNABORTED: 'timed out',
  ERR_SOCKET_CONNECTION_TIMEOUT: 'timed out',
  EPROTO: 'TLS handshake failed',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: self-signed certificate (set VAULT_CACERT, or VAULT_SKIP_VERIFY=1 for testing)',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: self-signed certificate in chain (set VAULT_CACERT)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: unable to verify the certificate (set VAULT_CACERT)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TLS: unknown certificate issuer (set VAULT_CACERT)',
  CERT_HAS_EXPIRED: 'TLS: certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: certificate does not match the host name',
};

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  response?: { statusCode?: unknown; body?: unknown };
}

/** Turns whatever the transport rejected with into one of the library's errors. */
export function mapVaultError(err: unknown, addr: string, method: string, path: string): Error {
  const e = (err ?? {}) as ErrorLike;
  if (e.response && typeof e.response.statusCode === 'number') {
    const body = e.response.body as { errors?: unknown } | undefined;
    const errors = body && typeof body === 'object' ? vaultErrorLines(body.errors) : [];
    return new VaultRequestError({ status: e.response.statusCode, errors, method, path });
  }
  const code = typeof e.code === 'string' ? e.code : '';
  // The underlying error carries the request config (headers, token): keep only its code.
  const cause = new Error(code || 'request failed');
  if (code === 'EPROTO' && addr.startsWith('https://')) {
    // The usual cause: an https address for a server that speaks plain http (the dev server without tls).
    return new ServerUnreachableError(addr, `TLS handshake failed: the server does not speak TLS there; if it serves plain http, use ${addr.replace(/^https:/, 'http:')}`, { cause });
  }
  if (code in UNREACHABLE_REASONS) return new ServerUnreachableError(addr, UNREACHABLE_REASONS[code], { cause });
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /CERT/.test(code)) {
    return new ServerUnreachableError(addr, `TLS error ${code}`, { cause });
  }
  if (code !== '') return new ServerUnreachableError(addr, `request failed (${code})`, { cause });
  const message = typeof e.message === 'string' ? e.message.split('\n')[0] : 'unknown error';
  return new UnexpectedResponseError(`request to ${method} ${path} failed: ${message}`, { cause });
}

function asEnvelope(body: unknown, method: string, path: string): VaultResponse | null {
  if (body === '' || body === undefined || body === null) return null;
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new UnexpectedResponseError(`${method} ${path} answered something other than a Vault JSON response`);
  }
  const b = body as Partial<VaultResponse>;
  return {
    request_id: typeof b.request_id === 'string' ? b.request_id : '',
    lease_id: typeof b.lease_id === 'string' ? b.lease_id : '',
    renewable: b.renewable === true,
    lease_duration: typeof b.lease_duration === 'number' ? b.lease_duration : 0,
    data: b.data && typeof b.data === 'object' ? (b.data as Record<string, unknown>) : null,
    warnings: Array.isArray(b.warnings) ? b.warnings : null,
    wrap_info: b.wrap_info ?? null,
    auth: b.auth ?? null,
  };
}

export function connect(options: ConnectOptions = {}): VaultConnection {
  const env = options.env ?? process.env;
  const addr = normaliseAddr(options.addr ?? (env.VAULT_ADDR || DEFAULT_ADDR));
  const mount = normaliseMount(options.mount);
  const token = resolveToken(options, env);
  const timeoutMs = options.timeoutMs ?? (env.VAULT_CLIENT_TIMEOUT ? parseTimeoutMs(env.VAULT_CLIENT_TIMEOUT) : DEFAULT_TIMEOUT_MS);

  const skipVerify = env.VAULT_SKIP_VERIFY !== undefined && !['', '0', 'false'].includes(env.VAULT_SKIP_VERIFY.toLowerCase());
  let ca: string | undefined;
  if (env.VAULT_CACERT) {
    const text = (options.readTextFile ?? defaultReadTextFile)(env.VAULT_CACERT);
    if (text === null) throw new InvalidInputError(`VAULT_CACERT ${JSON.stringify(env.VAULT_CACERT)} cannot be read`);
    ca = text;
  }
  // The injected env is the only source of the namespace (never process.env behind the caller's back).
  const client = createTransport({
    addr,
    timeoutMs,
    verify: !skipVerify,
    ca,
    headers: {
      'X-Vault-Token': token,
      'X-Vault-Namespace': env.VAULT_NAMESPACE ?? '',
      'X-Vault-Wrap-TTL': options.wrapTtl ?? '',
    },
  });

  const call = async <T>(method: string, path: string, run: () => Promise<unknown>, map: (body: unknown) => T): Promise<T> => {
    let body: unknown;
    try {
      body = await run();
    } catch (err) {
      const mapped = mapVaultError(err, addr, method, path);
      if (token === '' && mapped instanceof VaultRequestError && mapped.status === 403) {
        // Vault's bare "permission denied" to a request without a token: say what is missing and where it is looked for.
        throw new VaultRequestError({ status: 403, errors: [NO_TOKEN], method, path });
      }
      throw mapped;
    }
    return map(body);
  };

  const isEmptyNotFound = (err: unknown): boolean =>
    err instanceof VaultRequestError && err.status === 404 && err.errors.length === 0;

  return {
    addr,
    mount,
    hasToken: token !== '',
    async read(path) {
      try {
        return await call('GET', path, () => client.send('GET', path), (b) => asEnvelope(b, 'GET', path));
      } catch (err) {
        if (isEmptyNotFound(err)) return null;
        throw err;
      }
    },
    readRaw(path) {
      return call('GET', path, () => client.send('GET', path), (b) => b);
    },
    write(path, body = {}) {
      return call('POST', path, () => client.send('POST', path, body), (b) => asEnvelope(b, 'POST', path));
    },
    async list(path) {
      let res: VaultResponse | null;
      try {
        res = await call('LIST', path, () => client.send('GET', path, undefined, 'list=true'), (b) => asEnvelope(b, 'LIST', path));
      } catch (err) {
        if (isEmptyNotFound(err)) return [];
        throw err;
      }
      const keys = res?.data?.keys;
      if (keys === undefined || keys === null) return [];
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
        throw new UnexpectedResponseError(`LIST ${path} answered keys that are not a list of strings`);
      }
      return keys as string[];
    },
    async delete(path) {
      await call('DELETE', path, () => client.send('DELETE', path), () => undefined);
    },
  };
}

/** Normalises a mount path given by a user: `/tvm/` → `tvm`. */
export function normaliseMount(mount: string | undefined): string {
  const m = (mount ?? DEFAULT_MOUNT).replace(/^\/+|\/+$/g, '');
  if (m === '' || /\s/.test(m) || m.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new InvalidInputError(`mount ${JSON.stringify(mount)} is not a mount path such as tvm`);
  }
  return m;
}
