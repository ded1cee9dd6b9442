// Identity (Vault's identity store, the part logins need): an entity per
// workload, found or created at login through its alias, which is the pair
// (auth mount accessor, alias name): the AppRole role ID, the JWT's user
// claim value. Entities are held in memory with write-through to physical
// storage under `sys/identity/entity/<id>`.

import { randomUUID } from 'node:crypto';
import { KeyedMutex } from '../../sdk/storage.ts';
import type { Clock } from '../../sdk/logical.ts';
import type { KeyValueStorage } from '../types.ts';
import { loadRecords } from '../storage/records.ts';

const ENTITY_PREFIX = 'sys/identity/entity/';

export interface EntityAlias {
  id: string;
  canonical_id: string;
  mount_accessor: string;
  mount_path: string;
  mount_type: string;
  name: string;
  metadata: Record<string, string>;
  creation_time: string;
  last_update_time: string;
}

/** One entity as stored and as `identity/entity/id/<id>` shows it. */
export interface Entity {
  id: string;
  name: string;
  aliases: EntityAlias[];
  metadata: Record<string, string> | null;
  policies: string[];
  disabled: boolean;
  creation_time: string;
  last_update_time: string;
}

export interface AliasInput {
  mountAccessor: string;
  mountPath: string;
  mountType: string;
  name: string;
  metadata: Record<string, string>;
}

const encoder = new TextEncoder();

export class IdentityStore {
  private readonly storage: KeyValueStorage;
  private readonly clock: Clock;
  private readonly entities = new Map<string, Entity>();
  /** `<accessor>\0<alias name>` → entity id. */
  private readonly byAlias = new Map<string, string>();
  private readonly locks = new KeyedMutex();

  constructor(options: { storage: KeyValueStorage; clock: Clock }) {
    this.storage = options.storage;
    this.clock = options.clock;
  }

  async load(): Promise<void> {
    this.entities.clear();
    this.byAlias.clear();
    for (const entity of await loadRecords<Entity>(this.storage, ENTITY_PREFIX)) this.index(entity);
  }

  get(id: string): Entity | null {
    const e = this.entities.get(id);
    return e ? structuredClone(e) : null;
  }

  ids(): string[] {
    return [...this.entities.keys()].sort();
  }

  /** The entity behind an alias, created (with the alias) on first login; alias metadata follows the latest login. */
  findOrCreate(alias: AliasInput): Promise<Entity> {
    const key = aliasKey(alias.mountAccessor, alias.name);
    return this.locks.run(key, async () => {
      const now = new Date(this.clock()).toISOString();
      const id = this.byAlias.get(key);
      const existing = id === undefined ? undefined : this.entities.get(id);
      if (existing) {
        const a = existing.aliases.find((x) => x.mount_accessor === alias.mountAccessor && x.name === alias.name)!;
        if (!sameMap(a.metadata, alias.metadata) || a.mount_path !== alias.mountPath) {
          const next = structuredClone(existing);
          const na = next.aliases.find((x) => x.id === a.id)!;
          na.metadata = { ...alias.metadata };
          na.mount_path = alias.mountPath;
          na.last_update_time = now;
          next.last_update_time = now;
          await this.persist(next);
          this.index(next);
          return structuredClone(next);
        }
        return structuredClone(existing);
      }
      const entityId = randomUUID();
      const entity: Entity = {
        id: entityId,
        name: `entity_${entityId.slice(0, 8)}`,
        aliases: [
          {
            id: randomUUID(),
            canonical_id: entityId,
            mount_accessor: alias.mountAccessor,
            mount_path: alias.mountPath,
            mount_type: alias.mountType,
            name: alias.name,
            metadata: { ...alias.metadata },
            creation_time: now,
            last_update_time: now,
          },
        ],
        metadata: null,
        policies: [],
        disabled: false,
        creation_time: now,
        last_update_time: now,
      };
      await this.persist(entity);
      this.index(entity);
      return structuredClone(entity);
    });
  }

  /** Drops the aliases of a disabled auth mount (their entities stay). */
  async dropMountAliases(mountAccessor: string): Promise<void> {
    for (const entity of [...this.entities.values()]) {
      if (!entity.aliases.some((a) => a.mount_accessor === mountAccessor)) continue;
      const next = structuredClone(entity);
      next.aliases = next.aliases.filter((a) => a.mount_accessor !== mountAccessor);
      next.last_update_time = new Date(this.clock()).toISOString();
      for (const a of entity.aliases) if (a.mount_accessor === mountAccessor) this.byAlias.delete(aliasKey(a.mount_accessor, a.name));
      await this.persist(next);
      this.entities.set(next.id, next);
    }
  }

  private async persist(entity: Entity): Promise<void> {
    await this.storage.put(ENTITY_PREFIX + entity.id, encoder.encode(JSON.stringify(entity)));
  }

  private index(entity: Entity): void {
    this.entities.set(entity.id, entity);
    for (const a of entity.aliases) this.byAlias.set(aliasKey(a.mount_accessor, a.name), entity.id);
  }
}

function aliasKey(accessor: string, name: string): string {
  return `${accessor}\0${name}`;
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
