// The mount table: which secrets engine answers under which path. One engine
// instance per mount, each with its own storage view `logical/<uuid>/` (Vault's
// barrier view), the table itself persisted at `core/mounts`.

import { deleteTree } from './auth/storage.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import { parseDurationMs } from '../sdk/duration.ts';
import type { Backend, Storage } from '../sdk/logical.ts';
import type { Logger } from './logger.ts';
import { bufferedView, type BufferedView } from './storage/buffer.ts';
import type { PhysicalStorage, StorageOp } from './types.ts';
import { showValue } from '../sdk/errors.ts';

const TABLE_KEY = 'core/mounts';
/** Paths no engine may be mounted at or under (Vault's protected mount paths). */
const RESERVED = ['sys/', 'auth/', 'cubbyhole/', 'identity/', 'audit/'];
export const SUPPORTED_MOUNT_TYPES = ['tvm'] as const;

export interface MountConfig {
  /** Seconds; 0 = the system default. */
  default_lease_ttl: number;
  max_lease_ttl: number;
  force_no_cache: boolean;
}

/** One mount as stored (field names as Vault's API shows them). */
export interface MountEntry {
  path: string;
  type: string;
  description: string;
  accessor: string;
  uuid: string;
  config: MountConfig;
  local: boolean;
  seal_wrap: boolean;
  external_entropy_access: boolean;
  options: Record<string, string> | null;
}

interface StoredTable {
  mounts: MountEntry[];
  /** Stable identifiers of the built-in `sys/` and `auth/token/` mounts. */
  system: { accessor: string; uuid: string };
  token: { accessor: string; uuid: string };
}

export interface Mount {
  entry: MountEntry;
  backend: Backend;
  /** The engine's storage view, `logical/<uuid>/`. */
  storage: Storage;
}

export class MountError extends Error {
  readonly status: number;
  constructor(message: string, status = 400) {
    super(message);
    this.name = 'MountError';
    this.status = status;
  }
}

export interface MountInput {
  path: string;
  type: string;
  description?: string;
  config?: Partial<Record<'default_lease_ttl' | 'max_lease_ttl', unknown>> & { force_no_cache?: unknown };
  options?: Record<string, string> | null;
  local?: boolean;
  seal_wrap?: boolean;
  external_entropy_access?: boolean;
}

export interface MountTableOptions {
  storage: PhysicalStorage;
  /** Builds a fresh engine for a mount of the given type. */
  createBackend: (type: string) => Backend;
  logger?: Logger;
}

function shortId(): string {
  return randomBytes(4).toString('hex');
}

/** `/tvm//` → `tvm/`; throws MountError for empty or invalid paths. */
export function normalizeMountPath(raw: string): string {
  const trimmed = raw.replace(/^\/+/, '').replace(/\/+$/, '');
  if (trimmed === '') throw new MountError('mount path must not be empty');
  if (trimmed.length > 256) throw new MountError('mount path is longer than 256 characters');
  for (const seg of trimmed.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new MountError(`invalid mount path ${showValue(raw)}`);
  }
  if (/[*+\s]/.test(trimmed)) {
    throw new MountError(`invalid mount path ${showValue(raw)}: no wildcards or whitespace`);
  }
  return `${trimmed}/`;
}

/** A mount config ttl (duration string or seconds; '' and "system" mean 0) in whole seconds. */
export function ttlSeconds(name: string, value: unknown): number {
  if (value === undefined || value === null || value === '' || value === 'system') return 0;
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new MountError(`invalid ${name}: expected a duration, got ${showValue(value)}`);
  }
  try {
    return Math.round(parseDurationMs(value) / 1000);
  } catch (err) {
    throw new MountError(`invalid ${name}: ${(err as Error).message}`);
  }
}

export class MountTable {
  private readonly storage: PhysicalStorage;
  private readonly createBackend: (type: string) => Backend;
  private readonly logger?: Logger;
  /** Mounts, longest path first (for longest-prefix routing). */
  private mounts: Mount[] = [];
  /** Mounts being unmounted: no longer routed, still reachable for lease revocation. */
  private readonly tainted = new Set<Mount>();
  private ids: Pick<StoredTable, 'system' | 'token'> = {
    system: { accessor: `system_${shortId()}`, uuid: randomUUID() },
    token: { accessor: `auth_token_${shortId()}`, uuid: randomUUID() },
  };

  constructor(options: MountTableOptions) {
    this.storage = options.storage;
    this.createBackend = options.createBackend;
    if (options.logger) this.logger = options.logger;
  }

  /** Loads the stored table and starts one engine per mount. Returns false when nothing was stored yet. */
  async load(): Promise<boolean> {
    const raw = await this.storage.get(TABLE_KEY);
    if (!raw) return false;
    const table = JSON.parse(new TextDecoder().decode(raw)) as StoredTable;
    this.ids = { system: table.system, token: table.token };
    const mounts: Mount[] = [];
    for (const entry of table.mounts) mounts.push(await this.start(entry));
    this.mounts = sortMounts(mounts);
    return true;
  }

  get systemIds(): Pick<StoredTable, 'system' | 'token'> {
    return this.ids;
  }

  list(): Mount[] {
    return [...this.mounts].sort((a, b) => (a.entry.path < b.entry.path ? -1 : 1));
  }

  get(path: string): Mount | undefined {
    return this.mounts.find((m) => m.entry.path === path);
  }

  /**
   * The mount's storage with its writes held back, for one engine call whose
   * writes must become durable together with something else (its lease).
   */
  buffered(mount: Mount): BufferedView {
    return bufferedView(this.storage, mountPrefix(mount.entry));
  }

  /** Makes an engine call's held writes durable in one batch; on failure the engine forgets what it cached of them. */
  async commit(mount: Mount, ops: StorageOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.storage.batch(ops);
    } catch (err) {
      this.invalidate(mount, ops);
      throw err;
    }
  }

  /**
   * A batch holding these ops of the mount failed: the engine drops what it
   * cached of those keys (Vault's InvalidateKey) and reads them again.
   */
  invalidate(mount: Mount, ops: readonly StorageOp[]): void {
    const prefix = mountPrefix(mount.entry);
    for (const op of ops) if (op.key.startsWith(prefix)) mount.backend.invalidateKey(op.key.slice(prefix.length));
  }

  /** The mount serving a request path, and the path relative to it (longest prefix wins). */
  match(path: string): { mount: Mount; relPath: string } | null {
    for (const mount of this.mounts) {
      if (this.tainted.size > 0 && this.tainted.has(mount)) continue;
      const p = mount.entry.path;
      if (path.startsWith(p)) return { mount, relPath: path.slice(p.length) };
      if (path.length === p.length - 1 && p.startsWith(path)) return { mount, relPath: '' };
    }
    return null;
  }

  /** Mounts a new engine; resolves once the table is durable. */
  async mount(input: MountInput): Promise<Mount> {
    const path = normalizeMountPath(input.path);
    for (const r of RESERVED) {
      if (path.startsWith(r) || r.startsWith(path)) throw new MountError(`cannot mount under reserved path ${JSON.stringify(r)}`);
    }
    if (!(SUPPORTED_MOUNT_TYPES as readonly string[]).includes(input.type)) {
      throw new MountError(
        `unsupported mount type ${showValue(input.type)}: this server mounts only ${SUPPORTED_MOUNT_TYPES.map((t) => JSON.stringify(t)).join(', ')}`,
      );
    }
    for (const m of this.mounts) {
      const existing = m.entry.path;
      if (path.startsWith(existing) || existing.startsWith(path)) {
        throw new MountError(`path is already in use at ${existing}`);
      }
    }
    const config = input.config ?? {};
    const entry: MountEntry = {
      path,
      type: input.type,
      description: input.description ?? '',
      accessor: `${input.type}_${shortId()}`,
      uuid: randomUUID(),
      config: {
        default_lease_ttl: ttlSeconds('config.default_lease_ttl', config.default_lease_ttl),
        max_lease_ttl: ttlSeconds('config.max_lease_ttl', config.max_lease_ttl),
        force_no_cache: config.force_no_cache === true,
      },
      local: input.local === true,
      seal_wrap: input.seal_wrap === true,
      external_entropy_access: input.external_entropy_access === true,
      // As given: Vault keeps {} (options absent from an API call) apart from null.
      options: input.options ? { ...input.options } : null,
    };
    const mount = await this.start(entry);
    const next = sortMounts([...this.mounts, mount]);
    try {
      await this.persist(next);
    } catch (err) {
      await mount.backend.cleanup().catch(() => undefined);
      throw err;
    }
    this.mounts = next;
    return mount;
  }

  /** Updates a mount's description and lease ttls (sys/mounts/<path>/tune). */
  async tune(path: string, input: { description?: unknown; default_lease_ttl?: unknown; max_lease_ttl?: unknown }): Promise<void> {
    const mount = this.get(path);
    if (!mount) throw new MountError(`no mount at ${JSON.stringify(path)}`);
    const entry = { ...mount.entry, config: { ...mount.entry.config } };
    if (input.description !== undefined) {
      if (typeof input.description !== 'string') throw new MountError('invalid description: expected a string');
      entry.description = input.description;
    }
    if (input.default_lease_ttl !== undefined) entry.config.default_lease_ttl = ttlSeconds('default_lease_ttl', input.default_lease_ttl);
    if (input.max_lease_ttl !== undefined) entry.config.max_lease_ttl = ttlSeconds('max_lease_ttl', input.max_lease_ttl);
    const next = this.mounts.map((m) => (m === mount ? { ...m, entry } : m));
    await this.persist(next);
    this.mounts = next;
  }

  /**
   * Unmounts: routing stops at once, then `revokeLeases` runs (the expiration
   * manager's revokeByMount, while the engine can still revoke), then the
   * engine is cleaned up and its storage deleted. Unmounting a path with no
   * mount succeeds, as in Vault.
   */
  async unmount(rawPath: string, revokeLeases: (mount: Mount) => Promise<void>): Promise<boolean> {
    const path = normalizeMountPath(rawPath);
    const mount = this.get(path);
    if (!mount || this.tainted.has(mount)) return false;
    this.tainted.add(mount);
    try {
      await revokeLeases(mount);
      const next = this.mounts.filter((m) => m !== mount);
      await this.persist(next);
      this.mounts = next;
    } finally {
      this.tainted.delete(mount);
    }
    try {
      await mount.backend.cleanup();
    } catch (err) {
      this.logger?.warn('engine cleanup failed on unmount', { mount: path, error: (err as Error).message });
    }
    await deleteTree(this.storage, mountPrefix(mount.entry));
    return true;
  }

  /** Releases every engine (server shutdown). */
  async cleanup(): Promise<void> {
    for (const m of this.mounts) {
      try {
        await m.backend.cleanup();
      } catch (err) {
        this.logger?.warn('engine cleanup failed', { mount: m.entry.path, error: (err as Error).message });
      }
    }
  }

  private async start(entry: MountEntry): Promise<Mount> {
    const backend = this.createBackend(entry.type);
    const storage = this.storage.view(mountPrefix(entry));
    await backend.initialize(storage);
    return { entry, backend, storage };
  }

  private async persist(mounts: Mount[]): Promise<void> {
    const table: StoredTable = { mounts: mounts.map((m) => m.entry), ...this.ids };
    await this.storage.put(TABLE_KEY, new TextEncoder().encode(JSON.stringify(table)));
  }

}

/** Where a mount's engine keeps its data in the physical storage (Vault's barrier view). */
function mountPrefix(entry: MountEntry): string {
  return `logical/${entry.uuid}/`;
}

function sortMounts(mounts: Mount[]): Mount[] {
  return [...mounts].sort((a, b) => b.entry.path.length - a.entry.path.length);
}

/** A mount as `sys/mounts` and `sys/internal/ui/mounts/<path>` show it. */
export function mountInfo(entry: MountEntry): Record<string, unknown> {
  return {
    accessor: entry.accessor,
    config: { ...entry.config },
    description: entry.description,
    external_entropy_access: entry.external_entropy_access,
    local: entry.local,
    options: entry.options,
    plugin_version: '',
    running_plugin_version: '',
    running_sha256: '',
    seal_wrap: entry.seal_wrap,
    type: entry.type,
    uuid: entry.uuid,
  };
}
