// A mount table (Vault's MountTable): which backend answers under which path.
// The server keeps two, as Vault does: the secrets engines (`core/mounts`)
// and the auth methods (`core/auth`); the router (core.ts) reads both. One
// backend instance per mount, each with its own storage view (Vault's barrier
// view); the table itself is persisted, so mounts, their config and what their
// backends stored survive restarts. Mounting, tuning and unmounting are the
// same sequence for both; what differs (reserved paths, types, where the
// backend's data lives, auth's user lockout) is the table's kind.

import { randomBytes, randomUUID } from 'node:crypto';
import { parseDurationMs } from '../sdk/duration.ts';
import { showValue } from '../sdk/errors.ts';
import type { Backend, Storage } from '../sdk/logical.ts';
import { KeyedMutex } from '../sdk/storage.ts';
import { deleteTree } from './auth/storage.ts';
import type { Logger } from './logger.ts';
import { StatusError } from './status_error.ts';
import { bufferedView, type BufferedView } from './storage/buffer.ts';
import type { PhysicalStorage, StorageOp } from './types.ts';

export interface MountConfig {
  /** Seconds; 0 = the system default. */
  default_lease_ttl: number;
  max_lease_ttl: number;
  force_no_cache: boolean;
}

/** One mount as stored (field names as Vault's API shows them). */
export interface MountEntry {
  /** With a trailing slash: `tvm/` (secrets), `approle/` (auth, relative to `auth/`). */
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

export interface Mounted<E extends MountEntry> {
  entry: E;
  backend: Backend;
  /** The backend's storage view. */
  storage: Storage;
}

/** A mount table error, with the status Vault answers it with. */
export class MountError extends StatusError {}

/** The body of a mount call (sys/mounts/<path>, sys/auth/<path>), checked by the table. */
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

/** What a tune may change (sys/mounts/<path>/tune, sys/auth/<path>/tune); a kind may take more. */
export interface TuneInput {
  description?: unknown;
  default_lease_ttl?: unknown;
  max_lease_ttl?: unknown;
  [field: string]: unknown;
}

/** What makes a table the secrets table or the auth table. */
export interface MountKind<E extends MountEntry> {
  /** Where the table is stored: `core/mounts`, `core/auth`. */
  tableKey: string;
  /** The backend's name in log lines: `engine`, `auth method`. */
  noun: string;
  /** Refuses a path or type the table cannot mount (reserved paths, unknown types): throws MountError. */
  check(path: string, type: string): void;
  /** Paths held by built-in mounts outside the table (the auth table's `token/`). */
  builtinPaths: string[];
  /** A new mount's accessor prefix: `tvm_`, `auth_approle_`. */
  accessorPrefix(type: string): string;
  /** Where a mount's backend keeps its data in the physical storage. */
  prefix(entry: E): string;
  /** A fresh backend for a mount; `current` reads the entry as last tuned. */
  createBackend(entry: E, current: () => E | undefined): Backend;
  /** The words for a tune of a path with no mount. */
  missing(path: string): string;
  /** Kind-specific tune fields, applied to the copy of the entry (throw to refuse the whole tune). */
  tune?(entry: E, input: TuneInput): void;
  /** After a mount is gone from the table (the auth table forgets its failed logins). */
  removed?(mount: Mounted<E>): void;
}

export interface MountTableOptions<E extends MountEntry> {
  storage: PhysicalStorage;
  kind: MountKind<E>;
  /**
   * Stable identifiers of built-in mounts the table does not hold (name ->
   * accessor prefix), kept with the table: the secrets table keeps `sys/`'s
   * and `auth/token/`'s, as it always has.
   */
  builtinIds?: Record<string, string>;
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

type Ids = Record<string, { accessor: string; uuid: string }>;

export class MountTable<E extends MountEntry = MountEntry> {
  private readonly storage: PhysicalStorage;
  private readonly kind: MountKind<E>;
  private readonly logger?: Logger;
  /** Mounts, longest path first (for longest-prefix routing). */
  private mounts: Mounted<E>[] = [];
  /** Mounts being unmounted: no longer routed, still reachable for lease revocation. */
  private readonly tainted = new Set<Mounted<E>>();
  /** Changes to the table run one at a time. */
  private readonly lock = new KeyedMutex();
  private ids: Ids;

  constructor(options: MountTableOptions<E>) {
    this.storage = options.storage;
    this.kind = options.kind;
    if (options.logger) this.logger = options.logger;
    this.ids = Object.fromEntries(
      Object.entries(options.builtinIds ?? {}).map(([name, prefix]) => [name, { accessor: `${prefix}${shortId()}`, uuid: randomUUID() }]),
    );
  }

  /** Loads the stored table and starts one backend per mount. Returns false when nothing was stored yet. */
  async load(): Promise<boolean> {
    const raw = await this.storage.get(this.kind.tableKey);
    if (!raw) return false;
    const table = JSON.parse(new TextDecoder().decode(raw)) as { mounts: E[] } & Ids;
    for (const name of Object.keys(this.ids)) if (table[name]) this.ids[name] = table[name];
    const mounts: Mounted<E>[] = [];
    for (const entry of table.mounts) mounts.push(await this.start(entry));
    this.mounts = sortMounts(mounts);
    return true;
  }

  /** The identifiers of the built-in mounts this table keeps (`system`, `token`). */
  get builtinIds(): Readonly<Ids> {
    return this.ids;
  }

  /** Every mount, by path. */
  list(): Mounted<E>[] {
    return [...this.mounts].sort((a, b) => (a.entry.path < b.entry.path ? -1 : 1));
  }

  /** The mount at exactly this path (`tvm/`, `approle/`). */
  get(path: string): Mounted<E> | undefined {
    return this.mounts.find((m) => m.entry.path === path && !this.tainted.has(m));
  }

  /** The mount serving a path, and the path relative to it (longest prefix wins). */
  match(path: string): { mount: Mounted<E>; relPath: string } | null {
    for (const mount of this.mounts) {
      if (this.tainted.size > 0 && this.tainted.has(mount)) continue;
      const p = mount.entry.path;
      if (path.startsWith(p)) return { mount, relPath: path.slice(p.length) };
      if (path.length === p.length - 1 && p.startsWith(path)) return { mount, relPath: '' };
    }
    return null;
  }

  /**
   * The mount's storage with its writes held back, for one backend call whose
   * writes must become durable together with something else (its lease).
   */
  buffered(mount: Mounted<E>): BufferedView {
    return bufferedView(this.storage, this.kind.prefix(mount.entry));
  }

  /** Makes a backend call's held writes durable in one batch; on failure the backend forgets what it cached of them. */
  async commit(mount: Mounted<E>, ops: StorageOp[]): Promise<void> {
    if (ops.length === 0) return;
    try {
      await this.storage.batch(ops);
    } catch (err) {
      this.invalidate(mount, ops);
      throw err;
    }
  }

  /**
   * A batch holding these ops of the mount failed: the backend drops what it
   * cached of those keys (Vault's InvalidateKey) and reads them again.
   */
  invalidate(mount: Mounted<E>, ops: readonly StorageOp[]): void {
    const prefix = this.kind.prefix(mount.entry);
    for (const op of ops) if (op.key.startsWith(prefix)) mount.backend.invalidateKey(op.key.slice(prefix.length));
  }

  /** Mounts a new backend; resolves once the table is durable. */
  mount(input: MountInput): Promise<Mounted<E>> {
    return this.lock.run('table', () => this.mountNow(input));
  }

  /** Updates a mount's description, lease ttls and what its kind tunes; everything is checked before anything changes. */
  tune(path: string, input: TuneInput): Promise<void> {
    return this.lock.run('table', () => this.tuneNow(path, input));
  }

  /**
   * Unmounts: routing stops at once, then `revoke` runs (the leases or tokens
   * the backend issued go while it can still revoke them), then the backend
   * is cleaned up and its storage deleted. Unmounting a path with no mount
   * succeeds, as in Vault.
   */
  unmount(rawPath: string, revoke: (mount: Mounted<E>) => Promise<void>): Promise<boolean> {
    return this.lock.run('table', () => this.unmountNow(rawPath, revoke));
  }

  /** Releases every backend (server shutdown). */
  async cleanup(): Promise<void> {
    for (const m of this.mounts) {
      try {
        await m.backend.cleanup();
      } catch (err) {
        this.logger?.warn(`${this.kind.noun} cleanup failed`, { mount: m.entry.path, error: (err as Error).message });
      }
    }
  }

  private async mountNow(input: MountInput): Promise<Mounted<E>> {
    const path = normalizeMountPath(input.path);
    this.kind.check(path, input.type);
    for (const existing of [...this.kind.builtinPaths, ...this.mounts.map((m) => m.entry.path)]) {
      if (path.startsWith(existing) || existing.startsWith(path)) throw new MountError(`path is already in use at ${existing}`);
    }
    const config = input.config ?? {};
    const entry = {
      path,
      type: input.type,
      description: input.description ?? '',
      accessor: `${this.kind.accessorPrefix(input.type)}${shortId()}`,
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
    } as E;
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

  private async tuneNow(path: string, input: TuneInput): Promise<void> {
    const mount = this.get(path);
    if (!mount) throw new MountError(this.kind.missing(path));
    const entry: E = { ...mount.entry, config: { ...mount.entry.config } };
    if (input.description !== undefined && input.description !== null) {
      if (typeof input.description !== 'string') throw new MountError('invalid description: expected a string');
      entry.description = input.description;
    }
    if (input.default_lease_ttl !== undefined) entry.config.default_lease_ttl = ttlSeconds('default_lease_ttl', input.default_lease_ttl);
    if (input.max_lease_ttl !== undefined) entry.config.max_lease_ttl = ttlSeconds('max_lease_ttl', input.max_lease_ttl);
    this.kind.tune?.(entry, input);
    const next = this.mounts.map((m) => (m === mount ? { ...m, entry } : m));
    await this.persist(next);
    this.mounts = next;
  }

  private async unmountNow(rawPath: string, revoke: (mount: Mounted<E>) => Promise<void>): Promise<boolean> {
    const path = normalizeMountPath(rawPath);
    const mount = this.get(path);
    if (!mount) return false;
    this.tainted.add(mount);
    try {
      await revoke(mount);
      const next = this.mounts.filter((m) => m !== mount);
      await this.persist(next);
      this.mounts = next;
    } finally {
      this.tainted.delete(mount);
    }
    this.kind.removed?.(mount);
    try {
      await mount.backend.cleanup();
    } catch (err) {
      this.logger?.warn(`${this.kind.noun} cleanup failed on unmount`, { mount: path, error: (err as Error).message });
    }
    await deleteTree(this.storage, this.kind.prefix(mount.entry));
    return true;
  }

  private async start(entry: E): Promise<Mounted<E>> {
    const backend = this.kind.createBackend(entry, () => this.mounts.find((m) => m.entry.uuid === entry.uuid)?.entry);
    const storage = this.storage.view(this.kind.prefix(entry));
    await backend.initialize(storage);
    return { entry, backend, storage };
  }

  private async persist(mounts: Mounted<E>[]): Promise<void> {
    const table = { mounts: mounts.map((m) => m.entry), ...this.ids };
    await this.storage.put(this.kind.tableKey, new TextEncoder().encode(JSON.stringify(table)));
  }
}

function sortMounts<E extends MountEntry>(mounts: Mounted<E>[]): Mounted<E>[] {
  return [...mounts].sort((a, b) => b.entry.path.length - a.entry.path.length);
}

/** A mount as the listings (`sys/mounts`, `sys/auth`, `sys/internal/ui/mounts`) show it. */
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
