// auth/token/create and create-orphan: a child token of the caller (or an
// orphan), with policies a subset of the caller's unless it is root or has
// sudo, a ttl within the system's max and the explicit max, and the caller's
// identity.

import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { badRequest } from '../errors.ts';
import { boolField, checked, durationField, intField, stringField, stringListField, stringMapField } from '../fields.ts';
import { ROOT_POLICY } from '../policy.ts';
import { SYSTEM_MAX_TTL_MS } from '../lease_ttl.ts';
import { authBlock, sanitizePolicies, tokenDisplayName } from './store.ts';

const CREATE_FIELDS = {
  id: checked('string', 'The token\'s id (root or sudo only).', { secret: true }),
  policies: checked('string_list', 'The token\'s policies (a subset of the caller\'s unless root or sudo).'),
  meta: checked('string_map', 'Metadata shown on lookup.'),
  no_parent: checked('bool', 'An orphan token (root or sudo only).'),
  no_default_policy: checked('bool', 'Leave out the default policy.'),
  renewable: checked('bool', 'Whether the token can be renewed.'),
  ttl: checked('duration', 'The token\'s ttl (default and cap: the system max).'),
  lease: checked('duration', 'Deprecated: the ttl.'),
  explicit_max_ttl: checked('duration', 'A hard cap on the token\'s life, through renewals.'),
  period: checked('duration', 'Not supported: used as the ttl, with a warning.'),
  display_name: checked('string', 'The token\'s display name (token-<name>).'),
  num_uses: checked('int', 'Uses before the token is revoked (0: unlimited).'),
  type: checked('string', 'service (the only type this server issues) or default.'),
};

export function pathCreate(): Route[] {
  return [
    {
      pattern: 'create',
      fields: CREATE_FIELDS,
      operations: { update: (req) => createToken(req, false) },
      synopsis: 'Create a token.',
      description: `
A child of the calling token (revoked with it), or an orphan with no_parent
(root or sudo).`,
    },
    {
      pattern: 'create-orphan',
      fields: CREATE_FIELDS,
      operations: { update: (req) => createToken(req, true) },
      synopsis: 'Create an orphan token.',
      description: `
A token with no parent: revoking the calling token does not revoke it. The
same fields as create; its policies must still be a subset of the caller's
unless the caller is root or has sudo.`,
    },
  ];
}

async function createToken(req: LogicalRequest, orphanEndpoint: boolean): Promise<LogicalResponse> {
  const sr = serverRequest(req);
  const { core } = sr;
  const parent = sr.token!;
  const d = req.data;
  const parentIsRoot = parent.policies.includes(ROOT_POLICY);
  const sudo = sr.isSudo(sr.path, 'update');
  const type = stringField(d, 'type');
  if (type !== undefined && type !== 'service' && type !== 'default') {
    throw badRequest(`invalid type ${JSON.stringify(type)}: this server issues service tokens only`);
  }
  const noParent = boolField(d, 'no_parent', false);
  if (noParent && !orphanEndpoint && !sudo) throw badRequest('root or sudo privileges required to create orphan token');
  const orphan = orphanEndpoint || noParent;

  const id = stringField(d, 'id');
  if (id !== undefined && !sudo) throw badRequest('root or sudo privileges required to specify token id');
  if (id !== undefined && (id.length > 256 || /\s/.test(id) || (id.includes('.') && !id.startsWith('hvs.')))) {
    throw badRequest('invalid id: at most 256 characters, no whitespace, no "." except the "hvs." prefix');
  }

  const requested = stringListField(d, 'policies');
  const addDefault = !boolField(d, 'no_default_policy', false);
  let policies =
    requested && requested.length > 0 ? sanitizePolicies(requested, addDefault) : sanitizePolicies(parent.policies, addDefault);
  if (!addDefault && !requested?.some((p) => p.trim().toLowerCase() === 'default')) {
    policies = policies.filter((p) => p !== 'default');
  }
  if (policies.includes(ROOT_POLICY) && !parentIsRoot) {
    throw badRequest('root tokens may not be created without parent token being root');
  }
  if (!parentIsRoot && !sudo) {
    const allowed = new Set(sanitizePolicies(parent.policies, true));
    if (!policies.every((p) => allowed.has(p))) throw badRequest('child policies must be subset of parent');
  }

  const warnings: string[] = [];
  const explicitMaxTtlMs = durationField(d, 'explicit_max_ttl') ?? 0;
  let ttlMs = durationField(d, 'ttl') ?? durationField(d, 'lease') ?? 0;
  if (d.period !== undefined && d.period !== '' && d.period !== 0) {
    warnings.push('periodic tokens are not supported by this server; "period" was used as the ttl');
    ttlMs = ttlMs || (durationField(d, 'period') ?? 0);
  }
  // Root-policy tokens without a ttl never expire; every other token gets the system default.
  if (ttlMs === 0 && !policies.includes(ROOT_POLICY)) ttlMs = SYSTEM_MAX_TTL_MS;
  if (ttlMs > SYSTEM_MAX_TTL_MS) {
    warnings.push(`ttl of ${Math.round(ttlMs / 1000)}s exceeded the system max ttl; capped to ${SYSTEM_MAX_TTL_MS / 1000}s`);
    ttlMs = SYSTEM_MAX_TTL_MS;
  }
  if (explicitMaxTtlMs > 0 && (ttlMs === 0 || ttlMs > explicitMaxTtlMs)) {
    if (ttlMs !== 0) warnings.push('ttl is greater than explicit_max_ttl; capped to explicit_max_ttl');
    ttlMs = explicitMaxTtlMs;
  }

  const { id: tokenId, entry } = await core.tokens.create({
    ...(id !== undefined ? { id } : {}),
    policies,
    parent: orphan ? '' : parent.hash,
    ttlMs,
    explicitMaxTtlMs,
    displayName: tokenDisplayName(stringField(d, 'display_name') ?? ''),
    meta: stringMapField(d, 'meta'),
    renewable: boolField(d, 'renewable', true),
    numUses: intField(d, 'num_uses', 0),
    path: orphanEndpoint ? 'auth/token/create-orphan' : 'auth/token/create',
    // Child tokens act for the same identity as their parent, as in Vault.
    ...(parent.entityId ? { entityId: parent.entityId } : {}),
    ...(parent.subject ? { subject: parent.subject } : {}),
  });
  return {
    // Counted from the token's creation, so the granted ttl reads back exactly (not 1199 for 1200).
    auth: authBlock(entry, tokenId, entry.creationTimeMs),
    ...(warnings.length > 0 ? { warnings } : {}),
    http: { wrappedAccessor: entry.accessor },
  };
}
