// The broker's config file (HCL or JSON, same shape): Vault address and login,
// store, listener, thresholds. Relative paths resolve against the file's folder.

import { validateRules, type Rule } from '../watch/rules.ts';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse as parseHcl } from '@cdktf/hcl2json';
import { parseCloudBlocks, type CloudBlocks } from '../iam/providers.ts';
import type { ListenSettings } from './api.ts';
import { parseDurationMs } from './api.ts';
import { DEFAULT_SETTINGS, type AnomalySettings, type BrokerSettings } from './broker.ts';
import { BrokerError } from './errors.ts';
import { DEFAULT_LOOP, type LoopSettings } from './loop.ts';
import type { RenewalTiming } from './timing.ts';
import type { VaultAuth, VaultSettings } from './vault.ts';

export type StoreConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export interface BrokerConfig {
  vault: VaultSettings;
  store: StoreConfig;
  listener: ListenSettings;
  broker: BrokerSettings;
  loop: LoopSettings;
  logLevel: string;
  /** Where log lines go: "stderr" (default), "stdout", or a file path. */
  logTo: string;
  /** How long SIGTERM's graceful stage may take before the forced stage. */
  shutdownTimeoutMs: number;
  /** `cloud "<name>" { ... }` blocks: the clouds this broker grants credentials for (src/iam/providers.ts). */
  clouds: CloudBlocks;
  /** The config file's folder: relative paths in cloud blocks resolve against it. */
  baseDir: string;
  /** `audit { file_path, checkpoint_key_file, checkpoint_interval }`: the broker's chained audit file. */
  audit?: { filePath: string; checkpointKeyFile: string; checkpointIntervalMs: number };
  /** `rule "<name>" { kind, action, threshold, window, baseline, multiple, min_count }`: anomaly rules over usage events. */
  rules: Rule[];
  /** The console at /console/ (default on; the listener is loopback only). */
  console: boolean;
}

type Obj = Record<string, unknown>;

function fail(message: string): never {
  throw new BrokerError('ERR_CONFIG', message);
}

/** HCL blocks arrive as lists of objects; JSON may give the object itself. */
function block(v: unknown, where: string): Obj | undefined {
  if (v === undefined || v === null) return undefined;
  const o = Array.isArray(v) ? v[0] : v;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) fail(`${where} must be a block`);
  return o as Obj;
}

/** A labelled block (`store "sqlite" {...}`): its one label and body. */
function labelled(v: unknown, where: string): [string, Obj] | undefined {
  const o = block(v, where);
  if (!o) return undefined;
  const keys = Object.keys(o);
  if (keys.length !== 1) fail(`${where} needs exactly one type label, e.g. ${where} "sqlite" { ... }`);
  return [keys[0], block(o[keys[0]], `${where} "${keys[0]}"`) ?? {}];
}

function str(o: Obj | undefined, key: string, where: string): string | undefined {
  const v = o?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') fail(`${where}.${key} must be a non-empty string`);
  return v;
}

function num(o: Obj | undefined, key: string, where: string): number | undefined {
  const v = o?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${where}.${key} must be a non-negative number`);
  return v;
}

function dur(o: Obj | undefined, key: string, where: string): number | undefined {
  const v = o?.[key];
  if (v === undefined || v === null) return undefined;
  if (v === 0 || v === '0') return 0;
  try {
    return parseDurationMs(`${where}.${key}`, v);
  } catch (err) {
    fail((err as Error).message);
  }
}

/** The settings of T that are numbers. */
type NumberSetting<T> = { [K in keyof T]-?: T[K] extends number ? K : never }[keyof T];

/**
 * The number settings one block sets: `keys` maps each config key to its
 * setting, read in that order; a key left out of the file is left out here, so
 * the result spreads over the defaults. A setting named `...Ms` is a duration
 * (`dur`), any other a non-negative number (`num`): the names carry the unit.
 */
function numbers<T>(o: Obj | undefined, where: string, keys: Record<string, NumberSetting<T>>): Partial<T> {
  const out: Partial<Record<NumberSetting<T>, number>> = {};
  for (const [key, setting] of Object.entries(keys)) {
    const v = String(setting).endsWith('Ms') ? dur(o, key, where) : num(o, key, where);
    if (v !== undefined) out[setting] = v;
  }
  return out as Partial<T>;
}

function logTo(v: string | undefined, rel: (p: string) => string): string {
  if (v === undefined || v === 'stderr' || v === 'stdout') return v ?? 'stderr';
  return rel(v);
}

/** `cloud "aws" { ... }` (HCL: { aws: [ {...} ] }; JSON may give { aws: {...} }), checked by the provider factory. */
function cloudBlocks(v: unknown): CloudBlocks {
  const o = block(v, 'cloud');
  if (!o) return {};
  const blocks: Record<string, Obj> = {};
  for (const [name, body] of Object.entries(o)) blocks[name] = block(body, `cloud "${name}"`) ?? {};
  try {
    return parseCloudBlocks(blocks);
  } catch (err) {
    fail((err as Error).message);
  }
}

/**
 * An AppRole or JWT login block: both name the method's mount path (default:
 * the method's name), one required identifier (`idKey`), and a secret given
 * inline (`secretKey`) or as a file (`<secretKey>_file`).
 */
function loginBlock(
  a: Obj,
  method: 'approle' | 'jwt',
  idKey: string,
  secretKey: string,
  rel: (p: string) => string,
): { path: string; id: string; secret?: string; secretFile?: string } {
  const where = `auth "${method}"`;
  const file = str(a, `${secretKey}_file`, where);
  return {
    path: str(a, 'path', where) ?? method,
    id: str(a, idKey, where) ?? fail(`${where} needs ${idKey}`),
    secret: str(a, secretKey, where),
    secretFile: file && rel(file),
  };
}

export function parseConfig(raw: Obj, baseDir: string, env: Record<string, string | undefined> = process.env): BrokerConfig {
  const rel = (p: string) => resolve(baseDir, p);
  const v = block(raw.vault, 'vault') ?? fail('a vault { address = ... } block is required');
  const address = str(v, 'address', 'vault') ?? env.VAULT_ADDR ?? fail('vault.address is required');
  const authBlock = labelled(v.auth, 'vault.auth');
  let auth: VaultAuth;
  const [method, a] = authBlock ?? ['token', {}];
  if (method === 'token') {
    const tokenFile = str(a, 'token_file', 'auth "token"');
    auth = { method: 'token', token: str(a, 'token', 'auth "token"') ?? (tokenFile ? undefined : env.VAULT_TOKEN), tokenFile: tokenFile && rel(tokenFile) };
  } else if (method === 'approle') {
    const l = loginBlock(a, method, 'role_id', 'secret_id', rel);
    auth = { method, path: l.path, roleId: l.id, secretId: l.secret, secretIdFile: l.secretFile };
  } else if (method === 'jwt') {
    const l = loginBlock(a, method, 'role', 'jwt', rel);
    auth = { method, path: l.path, role: l.id, jwt: l.secret, jwtFile: l.secretFile };
  } else {
    fail(`vault.auth "${method}" is not one of token, approle, jwt`);
  }

  const st = labelled(raw.store, 'store') ?? ['sqlite', { path: './broker.db' }];
  let store: StoreConfig;
  if (st[0] === 'sqlite') store = { kind: 'sqlite', path: rel(str(st[1], 'path', 'store "sqlite"') ?? './broker.db') };
  else if (st[0] === 'postgres' || st[0] === 'postgresql') {
    store = { kind: 'postgres', url: str(st[1], 'url', 'store "postgres"') ?? env.TVM_BROKER_DATABASE_URL ?? fail('store "postgres" needs url') };
  } else fail(`store "${st[0]}" is not one of sqlite, postgres`);

  const l = block(raw.listener, 'listener');
  const socket = str(l, 'socket', 'listener');
  const listener: ListenSettings = { address: str(l, 'address', 'listener') ?? (socket ? undefined : '127.0.0.1:8300'), socket: socket && rel(socket) };
  if (listener.address) {
    const host = listener.address.slice(0, listener.address.lastIndexOf(':'));
    if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) fail(`listener.address ${listener.address} must be a loopback address (the API has no authentication)`);
  }

  const r = block(raw.renewal, 'renewal');
  const w = block(raw.workloads, 'workloads');
  const an = block(raw.anomaly, 'anomaly');
  const rv = block(raw.revocation, 'revocation');
  const lp = block(raw.loop, 'loop');
  const d = DEFAULT_SETTINGS;
  const roles = raw.roles;
  if (roles !== undefined && (!Array.isArray(roles) || !roles.every((x) => typeof x === 'string'))) fail('roles must be a list of role names');
  if (raw.revoke_on_shutdown !== undefined && typeof raw.revoke_on_shutdown !== 'boolean') fail('revoke_on_shutdown must be true or false');

  const broker: BrokerSettings = {
    ...d,
    replica: str(raw, 'replica', 'config') ?? d.replica,
    roles: (roles as string[] | undefined) ?? [],
    timing: {
      ...d.timing,
      ...numbers<RenewalTiming>(r, 'renewal', { reserve: 'reserveMs', jitter: 'jitterFraction', backoff_min: 'backoffMinMs', backoff_max: 'backoffMaxMs', expiry_margin: 'expiryMarginMs' }),
    },
    ...numbers<BrokerSettings>(r, 'renewal', { replace_grace: 'replaceGraceMs', max_age: 'maxLeaseAgeMs' }),
    ...numbers<BrokerSettings>(w, 'workloads', { heartbeat_tolerance: 'heartbeatTolerance' }),
    anomaly: { ...d.anomaly, ...numbers<AnomalySettings>(an, 'anomaly', { window: 'windowMs', baseline: 'baselineMs', multiple: 'multiple', min_count: 'minCount' }) },
    ...numbers<BrokerSettings>(rv, 'revocation', { max_attempts: 'maxRevokeAttempts' }),
    ...numbers<BrokerSettings>(lp, 'loop', { claim_ttl: 'claimTtlMs', batch: 'batchSize', concurrency: 'concurrency' }),
    revokeOnShutdown: (raw.revoke_on_shutdown as boolean | undefined) ?? true,
  };
  if (broker.timing.backoffMinMs > broker.timing.backoffMaxMs) fail('renewal.backoff_min must not exceed renewal.backoff_max');
  const loop: LoopSettings = {
    ...DEFAULT_LOOP,
    ...numbers<LoopSettings>(lp, 'loop', { tick: 'tickMs', trigger_interval: 'triggerIntervalMs', reconcile_interval: 'reconcileIntervalMs' }),
  };
  return {
    vault: { address, mount: str(v, 'mount', 'vault') ?? 'tvm', auth, timeoutMs: dur(v, 'timeout', 'vault') ?? 30_000 },
    store,
    listener,
    broker,
    loop,
    logLevel: str(block(raw.log, 'log'), 'level', 'log') ?? 'info',
    logTo: logTo(str(block(raw.log, 'log'), 'destination', 'log'), rel),
    shutdownTimeoutMs: dur(raw, 'shutdown_timeout', 'config') ?? 10_000,
    clouds: cloudBlocks(raw.cloud),
    baseDir,
    ...auditBlock(block(raw.audit, 'audit'), rel),
    rules: ruleBlocks(raw.rule),
    console: raw.console === undefined ? true : raw.console === true ? true : raw.console === false ? false : fail('console must be true or false'),
  };
}

/** `rule "<name>" { ... }` blocks (HCL gives a list of {name: body} objects; JSON may give the map). */
function ruleBlocks(v: unknown): Rule[] {
  if (v === undefined || v === null) return [];
  const entries: Array<[string, unknown]> = [];
  for (const item of Array.isArray(v) ? v : [v]) {
    if (item === null || typeof item !== 'object') fail('rule blocks need a name: rule "probe" { ... }');
    for (const [name, body] of Object.entries(item as Obj)) entries.push([name, Array.isArray(body) ? body[0] : body]);
  }
  const rules = entries.map(([name, body]) => {
    const b = (body ?? {}) as Obj;
    const where = `rule "${name}"`;
    return {
      name,
      kind: str(b, 'kind', where),
      action: str(b, 'action', where) ?? 'alert',
      ...(b.threshold !== undefined ? { threshold: num(b, 'threshold', where) } : {}),
      ...(b.multiple !== undefined ? { multiple: num(b, 'multiple', where) } : {}),
      ...(b.min_count !== undefined ? { minCount: num(b, 'min_count', where) } : {}),
      ...(b.window !== undefined ? { windowMs: dur(b, 'window', where) } : {}),
      ...(b.baseline !== undefined ? { baselineMs: dur(b, 'baseline', where) } : {}),
    };
  });
  try {
    return validateRules(rules);
  } catch (err) {
    fail((err as Error).message.replace(/^rules\[(\d+)\]/, (_m, i: string) => `rule "${entries[Number(i)][0]}"`));
  }
}

function auditBlock(a: Obj | undefined, rel: (p: string) => string): Pick<BrokerConfig, 'audit'> {
  if (!a) return {};
  const filePath = str(a, 'file_path', 'audit') ?? fail('audit needs file_path');
  const keyFile = str(a, 'checkpoint_key_file', 'audit') ?? fail('audit needs checkpoint_key_file (an Ed25519 private key, PEM PKCS#8: openssl genpkey -algorithm ed25519)');
  return { audit: { filePath: rel(filePath), checkpointKeyFile: rel(keyFile), checkpointIntervalMs: dur(a, 'checkpoint_interval', 'audit') ?? 60_000 } };
}

export async function loadConfig(path: string, env: Record<string, string | undefined> = process.env): Promise<BrokerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    fail(`cannot read ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  if (path.endsWith('.json')) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      fail(`${path} is not valid JSON: ${(err as Error).message}`);
    }
  } else {
    try {
      raw = await parseHcl(path, text);
    } catch (err) {
      fail(`${path} is not valid HCL: ${String((err as Error).message ?? err).split('\n')[0]}`);
    }
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${path} must hold a config object`);
  return parseConfig(raw as Obj, dirname(resolve(path)), env);
}
