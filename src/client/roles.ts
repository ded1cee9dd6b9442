// roles/<name> of a tvm mount: write (create or update), read, list, delete.

import { apiPath, type VaultConnection } from './connection.ts';
import { UnexpectedResponseError } from './errors.ts';
import type { RoleEntry } from '../engine/roles.ts';

/** The fields of `roles/<name>` as the API names them. Durations: Vault duration strings or seconds. */
export interface RoleInput {
  read?: string[];
  write?: string[];
  ttl?: string | number;
  max_ttl?: string | number;
  audiences?: string[];
  bound_cidrs?: string[];
  max_active_leases?: number;
  extra_claims?: Record<string, string>;
  iam?: Record<string, unknown>;
}

/**
 * What `writeRole` sends: the known fields, plus any other field a newer
 * engine may take (the server rejects unknown fields with a 400 naming them).
 */
export type RoleWrite = RoleInput & { [field: string]: unknown };

/** A role as `roles/<name>` reads it back (the engine's stored shape); durations in seconds (0 = the mount default). */
export type Role = RoleEntry & {
  name: string;
  /** Anything else a newer engine returns, as returned. */
  [field: string]: unknown;
};

export function rolePath(mount: string, name: string): string {
  return `${mount}/${apiPath('roles', name)}`;
}

/** Creates the role or updates the fields given (the engine keeps the others). */
export async function writeRole(conn: VaultConnection, name: string, input: RoleWrite): Promise<void> {
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) if (v !== undefined) body[k] = v;
  await conn.write(rolePath(conn.mount, name), body);
}

/** The role, or null when there is none by that name. */
export async function readRole(conn: VaultConnection, name: string): Promise<Role | null> {
  const path = rolePath(conn.mount, name);
  const res = await conn.read(path);
  if (!res) return null;
  if (!res.data) throw new UnexpectedResponseError(`GET ${path} answered without data`);
  const d = res.data;
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const num = (v: unknown): number => (typeof v === 'number' ? v : 0);
  return {
    ...d,
    name: typeof d.name === 'string' ? d.name : name,
    read: list(d.read),
    write: list(d.write),
    ttl: num(d.ttl),
    max_ttl: num(d.max_ttl),
    audiences: list(d.audiences),
    bound_cidrs: list(d.bound_cidrs),
    max_active_leases: num(d.max_active_leases),
    extra_claims: d.extra_claims && typeof d.extra_claims === 'object' ? (d.extra_claims as Record<string, string>) : {},
    iam: d.iam && typeof d.iam === 'object' ? (d.iam as Record<string, unknown>) : null,
  };
}

/** Role names, sorted as Vault lists them; [] when there are none. */
export async function listRoles(conn: VaultConnection): Promise<string[]> {
  return conn.list(`${conn.mount}/roles`);
}

/** Deletes the role; deleting a role that does not exist succeeds, as in Vault. */
export async function deleteRole(conn: VaultConnection, name: string): Promise<void> {
  await conn.delete(rolePath(conn.mount, name));
}
