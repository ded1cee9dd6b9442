// The dev server's audit devices (Vault's audit broker): the table of enabled
// devices (`core/audit`, with each device's HMAC salt and checkpoint key, both
// sealed at rest with the rest of the storage), and the one place every
// request and response is recorded. As in Vault, when devices are enabled and
// none can record a request, the request is not served.

import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { AuditHasher } from '../audit/hash.ts';
import { AuditWriter } from '../audit/writer.ts';
import { publicKeyText } from '../audit/chain.ts';
import { newPrivateKey } from '../engine/jwk.ts';
import { EngineError, invalidField, showValue } from '../sdk/errors.ts';
import type { Logger } from './logger.ts';
import type { PhysicalStorage } from './types.ts';

const AUDIT_KEY = 'core/audit';
const PATH = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\/$/;

/** A device as stored: its options, and the secrets that are its own. */
interface StoredDevice {
  path: string;
  type: 'file';
  description: string;
  options: Record<string, string>;
  /** base64 */
  salt: string;
  /** PKCS#8 DER, base64 */
  checkpoint_key: string;
}

interface Device {
  stored: StoredDevice;
  writer: AuditWriter;
  hasher: AuditHasher;
  hmacAccessor: boolean;
  logRaw: boolean;
}

/** What the core hands over for one request or response line, before hashing. */
export interface AuditRecord {
  type: 'request' | 'response';
  auth: { clientToken?: string; accessor?: string; displayName?: string; policies?: string[]; entityId?: string; metadata?: Record<string, string> | null } | null;
  request: {
    id: string;
    operation: string;
    mountPoint: string;
    mountType: string;
    path: string;
    /** Leading segments of the path shown as they are; the rest (where a secret may sit) are HMAC'd one by one. */
    clearSegments?: number;
    data: Record<string, unknown> | null;
    remoteAddress?: string;
    wrapTtlS?: number;
  };
  response?: {
    data?: Record<string, unknown> | null;
    leaseId?: string;
    auth?: { clientToken: string; accessor: string } | null;
    /** A wrapped answer: its wrapping token (HMAC'd), accessor, creation path and ttl, as Vault records it. */
    wrapInfo?: { token: string; accessor: string; creationPath: string; ttlS: number };
    status: number;
  };
  error?: string;
}

/**
 * Response keys of the tvm engine kept in clear (as a mount's
 * audit_non_hmac_response_keys would): what a token is and may do, never the
 * token itself, so `tvm audit search` finds a token's story by its jti.
 */
export const CLEAR_RESPONSE_KEYS = new Set([
  'jti', 'role', 'scope', 'read', 'write', 'audiences', 'token_type', 'issued_at', 'expires_at', 'max_expires_at', 'cnf_jkt',
]);
/**
 * Request keys kept in clear: a lease id (clear in Vault's own response lines,
 * and no credential here: renewing or fetching needs the lease's holder) and a
 * jti, so a renewal or revocation joins its token's story.
 */
export const CLEAR_REQUEST_KEYS = new Set(['lease_id', 'jti']);

/** Where the clear keys apply: the tvm engine's answers and the lease endpoints that carry its jti; elsewhere every string is hashed. */
function clearFor(r: AuditRecord): boolean {
  return r.request.mountType === 'tvm' || r.request.path.startsWith('sys/leases/');
}

export class AuditTable {
  private readonly storage: PhysicalStorage;
  private readonly clock: () => number;
  private readonly logger: Logger | undefined;
  private readonly devices = new Map<string, Device>();
  private readonly checkpointIntervalMs: number | undefined;

  constructor(options: { storage: PhysicalStorage; clock: () => number; logger?: Logger; checkpointIntervalMs?: number }) {
    this.storage = options.storage;
    this.clock = options.clock;
    this.logger = options.logger;
    this.checkpointIntervalMs = options.checkpointIntervalMs;
  }

  /** Opens every stored device; one that cannot open is logged and left out (and requests then fail if it was the only one). */
  async load(): Promise<void> {
    for (const stored of await this.readAll()) {
      try {
        this.devices.set(stored.path, this.open(stored));
      } catch (err) {
        this.logger?.error('audit device could not open', { path: stored.path, error: (err as Error).message });
        this.failed.add(stored.path);
      }
    }
  }

  /** Devices that are enabled but could not open: while any is, and no other can write, nothing is served. */
  private readonly failed = new Set<string>();

  get enabled(): boolean {
    return this.devices.size > 0 || this.failed.size > 0;
  }

  list(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const d of this.devices.values()) {
      out[d.stored.path] = {
        type: d.stored.type,
        description: d.stored.description,
        options: d.stored.options,
        local: false,
        path: d.stored.path,
        checkpoint_public_key: d.writer.publicKey,
      };
    }
    return out;
  }

  async enable(path: string, input: { type: unknown; description: unknown; options: unknown }): Promise<void> {
    if (!PATH.test(path)) throw invalidField('path', `${showValue(path)} must be 1 to 64 characters of A-Z a-z 0-9 . _ -`);
    if (this.devices.has(path) || this.failed.has(path)) throw new EngineError('ERR_INVALID_REQUEST', `path already in use at ${path}`);
    if (input.type !== 'file') throw invalidField('type', `${showValue(input.type)} is not an audit device type this server has (file)`);
    const raw = input.options ?? {};
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalidField('options', 'must be an object of strings');
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (!['file_path', 'hmac_accessor', 'log_raw', 'format', 'mode'].includes(k)) throw invalidField(`options.${k}`, 'is not an option of the file device');
      options[k] = typeof v === 'string' ? v : String(v);
    }
    const filePath = options.file_path;
    if (!filePath) throw invalidField('options.file_path', 'is required');
    if (filePath !== 'stdout' && !isAbsolute(filePath)) throw invalidField('options.file_path', `${showValue(filePath)} must be an absolute path`);
    if (filePath === 'stdout') throw invalidField('options.file_path', 'stdout is not supported: a chained file needs a file');
    for (const flag of ['hmac_accessor', 'log_raw'] as const) {
      if (options[flag] !== undefined && !['true', 'false'].includes(options[flag])) throw invalidField(`options.${flag}`, 'must be true or false');
    }
    if (options.format !== undefined && options.format !== 'json') throw invalidField('options.format', 'only json is supported');
    // Made from bytes, not the generation job's key: exporting the latter can hang Node 20 (src/engine/jwk.ts).
    const privateKey = newPrivateKey('ed25519');
    const stored: StoredDevice = {
      path,
      type: 'file',
      description: typeof input.description === 'string' ? input.description : '',
      options,
      salt: randomBytes(32).toString('base64'),
      checkpoint_key: privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
    };
    // Opened before it is stored: a file that cannot be written is a 400, not an enabled device.
    let device: Device;
    try {
      device = this.open(stored);
    } catch (err) {
      throw invalidField('options.file_path', `cannot be opened for appending: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      await this.save([...(await this.readAll()), stored]);
    } catch (err) {
      device.writer.close();
      throw err;
    }
    this.devices.set(path, device);
  }

  async disable(path: string): Promise<void> {
    const device = this.devices.get(path);
    await this.save((await this.readAll()).filter((d) => d.path !== path));
    this.failed.delete(path);
    if (device) {
      this.devices.delete(path);
      device.writer.close();
    }
  }

  /** sys/audit-hash: the HMAC the device writes for this value. */
  hash(path: string, input: string): string | null {
    return this.devices.get(path)?.hasher.hash(input) ?? null;
  }

  /**
   * Records one line on every device. Throws when devices are enabled and
   * none could write it: the caller must not serve (or answer) unrecorded.
   */
  log(record: AuditRecord): void {
    if (!this.enabled) return;
    let written = 0;
    for (const d of this.devices.values()) {
      try {
        d.writer.write(this.entry(d, record));
        written++;
      } catch (err) {
        this.logger?.error('audit device failed to write', { path: d.stored.path, error: (err as Error).message });
      }
    }
    // The one way out of a device that cannot write: managing the devices themselves (a sudo path) goes on, unrecorded but logged.
    if (written === 0 && record.request.path.startsWith('sys/audit')) {
      this.logger?.warn('no audit device could record a request to sys/audit; served so the devices can be repaired', { path: record.request.path });
      return;
    }
    if (written === 0) throw new EngineError('ERR_INTERNAL', 'no audit device could record the request');
  }

  close(): void {
    for (const d of this.devices.values()) {
      try {
        d.writer.close();
      } catch {
        // Closing is best effort at shutdown.
      }
    }
    this.devices.clear();
  }

  private entry(d: Device, r: AuditRecord): Record<string, unknown> {
    const h = (v: string | undefined): string | undefined => (v === undefined || d.logRaw ? v : d.hasher.hash(v));
    const hashed = (v: Record<string, unknown> | null | undefined, clear?: ReadonlySet<string>): unknown =>
      v === null || v === undefined ? null : d.logRaw ? v : d.hasher.hashValue(v, clear);
    const accessor = (v: string | undefined): string | undefined => (d.hmacAccessor ? h(v) : v);
    const auth = r.auth
      ? {
          client_token: h(r.auth.clientToken),
          accessor: accessor(r.auth.accessor),
          display_name: r.auth.displayName,
          policies: r.auth.policies,
          token_policies: r.auth.policies,
          entity_id: r.auth.entityId ?? '',
          metadata: r.auth.metadata ?? null,
          token_type: r.auth.clientToken ? 'service' : 'default',
        }
      : {};
    const request = {
      id: r.request.id,
      operation: r.request.operation,
      mount_point: r.request.mountPoint,
      mount_type: r.request.mountType,
      client_token: h(r.auth?.clientToken),
      client_token_accessor: accessor(r.auth?.accessor),
      namespace: { id: 'root' },
      path: this.auditedPath(d, r.request.path, r.request.clearSegments),
      data: hashed(r.request.data, clearFor(r) ? CLEAR_REQUEST_KEYS : undefined),
      remote_address: r.request.remoteAddress,
      ...(r.request.wrapTtlS ? { wrap_ttl: r.request.wrapTtlS } : {}),
    };
    const entry: Record<string, unknown> = { type: r.type, auth, request };
    if (r.type === 'response') {
      entry.response = {
        mount_point: r.request.mountPoint,
        mount_type: r.request.mountType,
        ...(r.response?.data ? { data: hashed(r.response.data, clearFor(r) ? CLEAR_RESPONSE_KEYS : undefined) } : {}),
        ...(r.response?.wrapInfo ? { wrap_info: { token: h(r.response.wrapInfo.token), accessor: accessor(r.response.wrapInfo.accessor), creation_path: r.response.wrapInfo.creationPath, ttl: r.response.wrapInfo.ttlS } } : {}),
        ...(r.response?.leaseId ? { secret: { lease_id: r.response.leaseId } } : {}),
        ...(r.response?.auth ? { auth: { client_token: h(r.response.auth.clientToken), accessor: accessor(r.response.auth.accessor) } } : {}),
      };
    }
    entry.error = r.error ?? '';
    return entry;
  }

  private auditedPath(d: Device, path: string, clear = Number.POSITIVE_INFINITY): string {
    if (d.logRaw) return path;
    const parts = path.split('/');
    return parts.map((p, i) => (i < clear || p === '' ? p : d.hasher.hash(p))).join('/');
  }

  private open(stored: StoredDevice): Device {
    const key: KeyObject = createPrivateKey({ key: Buffer.from(stored.checkpoint_key, 'base64'), format: 'der', type: 'pkcs8' });
    const writer = AuditWriter.open({
      device: stored.path,
      filePath: stored.options.file_path,
      signingKey: key,
      clock: this.clock,
      ...(this.checkpointIntervalMs ? { checkpointIntervalMs: this.checkpointIntervalMs } : {}),
    });
    return {
      stored,
      writer,
      hasher: new AuditHasher(Buffer.from(stored.salt, 'base64')),
      hmacAccessor: stored.options.hmac_accessor !== 'false',
      logRaw: stored.options.log_raw === 'true',
    };
  }

  private async readAll(): Promise<StoredDevice[]> {
    const raw = await this.storage.get(AUDIT_KEY);
    return raw ? (JSON.parse(new TextDecoder().decode(raw)) as StoredDevice[]) : [];
  }

  private async save(devices: StoredDevice[]): Promise<void> {
    await this.storage.put(AUDIT_KEY, new TextEncoder().encode(JSON.stringify(devices)));
  }
}

