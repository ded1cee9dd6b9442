// What the server does with a successful login (Vault's handleLoginRequest):
// refuse root, find or create the entity behind the alias, work out the
// token's ttl from the role, the mount and the system limits, and create an
// orphan service token carrying the entity, the workload's subject, the
// metadata and the CIDR binding.

import { EngineError } from '../../sdk/errors.ts';
import type { Clock, LoginAuth } from '../../sdk/logical.ts';
import type { IdentityStore } from '../identity/store.ts';
import { humanDuration, SYSTEM_MAX_TTL_MS } from '../lease_ttl.ts';
import { sanitizePolicies, type TokenEntry, type TokenStore } from '../token/store.ts';
import type { AuthMount } from './table.ts';

export interface LoginDeps {
  tokens: TokenStore;
  identity: IdentityStore;
  clock: Clock;
}

export interface IssuedLogin {
  id: string;
  entry: TokenEntry;
  warnings: string[];
}

/** `approle/` + `orders` → `approle:orders`: the subject of the tokens the workload vends. */
export function workloadSubject(mountPath: string, name: string): string {
  return `${mountPath.replace(/\/+$/, '')}:${name}`;
}

/** Vault's login display name: the mount path (slashes as dashes) and the method's name, no trailing dash. */
export function loginDisplayName(mountPath: string, name: string): string {
  return `${mountPath.replace(/\//g, '-')}${name}`.replace(/-+$/, '');
}

export async function issueLoginToken(deps: LoginDeps, mount: AuthMount, auth: LoginAuth): Promise<IssuedLogin> {
  if (auth.policies.some((p) => p.trim().toLowerCase() === 'root')) {
    throw new EngineError('ERR_INVALID_REQUEST', 'auth methods cannot create root tokens');
  }
  const warnings: string[] = [];
  const policies = sanitizePolicies(auth.policies, !auth.noDefaultPolicy);

  // Vault's CalculateTTL: the role's ttl, else the mount's default, else the
  // system's; capped by the role's max (else the mount's, else the system's)
  // and by an explicit max.
  const { config } = mount.entry;
  const mountMaxMs = config.max_lease_ttl > 0 ? config.max_lease_ttl * 1000 : SYSTEM_MAX_TTL_MS;
  // Capped silently, as Vault's CalculateTTL does (the role's write warned about it).
  let maxMs = Math.min(auth.maxTtlMs > 0 ? auth.maxTtlMs : mountMaxMs, mountMaxMs);
  if (auth.explicitMaxTtlMs > 0 && auth.explicitMaxTtlMs < maxMs) maxMs = auth.explicitMaxTtlMs;
  let ttlMs = auth.ttlMs > 0 ? auth.ttlMs : config.default_lease_ttl > 0 ? config.default_lease_ttl * 1000 : SYSTEM_MAX_TTL_MS;
  if (ttlMs > maxMs) {
    warnings.push(
      `TTL of "${humanDuration(ttlMs)}" exceeded the effective max_ttl of "${humanDuration(maxMs)}"; TTL value is capped accordingly`,
    );
    ttlMs = maxMs;
  }

  const entity = await deps.identity.findOrCreate({
    mountAccessor: mount.entry.accessor,
    mountPath: `auth/${mount.entry.path}`,
    mountType: mount.entry.type,
    name: auth.alias.name,
    metadata: auth.alias.metadata,
  });

  const { id, entry } = await deps.tokens.create({
    policies,
    parent: '',
    ttlMs,
    explicitMaxTtlMs: auth.explicitMaxTtlMs,
    maxTtlMs: maxMs,
    displayName: loginDisplayName(mount.entry.path, auth.displayName),
    meta: Object.keys(auth.metadata).length > 0 ? { ...auth.metadata } : null,
    renewable: true,
    numUses: auth.numUses,
    path: `auth/${mount.entry.path}login`,
    entityId: entity.id,
    subject: workloadSubject(mount.entry.path, auth.subjectName),
    boundCidrs: auth.boundCidrs,
  });
  return { id, entry, warnings };
}
