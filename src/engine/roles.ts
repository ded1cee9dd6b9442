// A tvm role as stored (`roles/<name>`), its name's rule, and the cache every
// path family reads it through. The routes are path_roles.ts.

import { EngineError, showValue } from '../sdk/errors.ts';
import { deleteKey, getJson, putJson } from '../sdk/storage.ts';
import type { Storage } from '../sdk/logical.ts';

export const ROLE_PREFIX = 'roles/';
export const ROLE_NAME = /^[A-Za-z0-9._-]{1,128}$/;
/** A role as stored; durations in whole seconds, 0 meaning "the mount's default". */
export interface RoleEntry {
  read: string[];
  write: string[];
  ttl: number;
  max_ttl: number;
  audiences: string[];
  bound_cidrs: string[];
  max_active_leases: number;
  extra_claims: Record<string, string>;
  iam: Record<string, unknown> | null;
  /** "dpop": every token is bound to a key the request names (cnf.jkt). Absent in roles stored before: "none". */
  binding?: Binding;
  /** When tokens may be used (windows.ts), read in time_zone; empty: any time. */
  allowed_hours?: string[];
  /** IANA zone the allowed_hours are read in; absent: UTC. */
  time_zone?: string;
}

export const BINDINGS = ['none', 'dpop'] as const;
export type Binding = (typeof BINDINGS)[number];

export class RoleStore {
  private readonly cache = new Map<string, RoleEntry | null>();

  async get(storage: Storage, name: string): Promise<RoleEntry | null> {
    if (this.cache.has(name)) return this.cache.get(name)!;
    const role = await getJson<RoleEntry>(storage, ROLE_PREFIX + name);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(name, role);
    return role;
  }

  async put(storage: Storage, name: string, role: RoleEntry): Promise<void> {
    await putJson(storage, ROLE_PREFIX + name, role);
    this.cache.set(name, role);
  }

  async delete(storage: Storage, name: string): Promise<void> {
    await deleteKey(storage, ROLE_PREFIX + name);
    this.cache.set(name, null);
  }

  invalidate(name: string): void {
    this.cache.delete(name);
  }
}

export function roleNotFound(name: string): EngineError {
  return new EngineError('ERR_ROLE_NOT_FOUND', `unknown role ${showValue(name)}`, { field: 'role' });
}
