// sys/leases: look a lease up, list them (sudo), renew, revoke, and revoke by
// prefix (sudo); with Vault's legacy aliases sys/renew, sys/revoke and
// sys/revoke-prefix. A lease id is a secret, never a credential: only the
// token that obtained a lease (or its ancestors, its entity, or sudo) renews it.

import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { badRequest, denied, HttpError } from '../errors.ts';
import { checked, durationField, rfc3339, stringField } from '../fields.ts';
import type { LeaseEntry } from '../types.ts';

const LEASE_ID = {
  lease_id: checked('string', 'The lease\'s id.', { secret: true }),
  url_lease_id: checked('string', 'The lease\'s id, in the path.', { secret: true }),
};

export function pathLeases(): Route[] {
  return [
    {
      pattern: 'leases/lookup',
      fields: { lease_id: LEASE_ID.lease_id },
      operations: {
        update: async (req) => {
          const { core } = serverRequest(req);
          const lease = await core.leases.lookup(leaseIdOf(req));
          if (!lease) throw badRequest('invalid lease');
          const now = core.clock();
          return {
            data: {
              id: lease.leaseId,
              issue_time: rfc3339(lease.issueTimeMs),
              expire_time: lease.expireTimeMs ? rfc3339(lease.expireTimeMs) : null,
              last_renewal: lease.lastRenewalMs !== undefined ? rfc3339(lease.lastRenewalMs) : null,
              path: `${lease.mountPoint}${lease.path}`,
              renewable: lease.secret.renewable && lease.expireTimeMs > now && lease.irrevocable !== true,
              ttl: Math.max(0, Math.floor((lease.expireTimeMs - now) / 1000)),
            },
          };
        },
      },
      synopsis: 'Look a lease up.',
      description: `
A lease's path, issue and expiry times, last renewal, ttl and whether it can
be renewed.`,
    },
    {
      pattern: 'leases/lookup/(?<prefix>.*)',
      fields: { prefix: checked('string', 'The path prefix (a mount and its path) whose leases to list.') },
      operations: {
        list: async (req, f) => {
          const keys = await serverRequest(req).core.leases.list(f.get<string>('prefix'));
          if (keys.length === 0) throw new HttpError(404);
          return { data: { keys } };
        },
      },
      synopsis: 'List leases by prefix (sudo).',
      description: `
The lease ids under a prefix (a mount and a path, such as tvm/creds/orders/),
one level at a time: folders end in a slash. Needs sudo, since lease ids are
secrets.`,
    },
    {
      pattern: '(?:leases/)?renew(?:/(?<url_lease_id>.+))?',
      fields: { ...LEASE_ID, increment: checked('duration', 'The ttl asked for, from now (capped by the role and the mount).') },
      operations: { update: renew },
      synopsis: 'Renew a lease.',
      description: `
Extends a lease by the increment asked for. The answer carries the lease and
its new ttl, never a token: knowing a lease id must not yield one (the holder
fetches its renewed token from the engine). Only the token that obtained the
lease, its ancestors, a token of the same entity, or sudo may renew it.`,
    },
    {
      pattern: '(?:leases/)?revoke(?:/(?<url_lease_id>.+))?',
      fields: LEASE_ID,
      operations: {
        update: async (req) => {
          await serverRequest(req).core.leases.revoke(leaseIdOf(req));
          return null;
        },
      },
      synopsis: 'Revoke a lease.',
      description: `
Revokes a lease now, through the engine that issued it: the token it carries
is listed as revoked, and the lease is gone from the expiration manager.`,
    },
    {
      pattern: '(?:leases/)?revoke-prefix/(?<prefix>.+)',
      fields: { prefix: checked('string', 'The path prefix whose leases to revoke.') },
      operations: {
        update: async (req, f) => {
          await serverRequest(req).core.leases.revokePrefix(f.get<string>('prefix'));
          return null;
        },
      },
      synopsis: 'Revoke every lease under a prefix (sudo).',
      description: `
Revokes all the leases whose path starts with the prefix, e.g. every lease of
one role.`,
    },
  ];
}

/** The lease id from the path, else from the body (lease_id, url_lease_id). */
function leaseIdOf(req: LogicalRequest): string {
  const fromPath = /^(?:leases\/)?(?:renew|revoke)\/(.+)$/.exec(req.path)?.[1];
  const id = fromPath ?? stringField(req.data, 'lease_id') ?? stringField(req.data, 'url_lease_id');
  if (!id) throw badRequest('missing required field lease_id');
  return id.replace(/^\/+/, '');
}

async function renew(req: LogicalRequest): Promise<LogicalResponse> {
  const sr = serverRequest(req);
  const { core } = sr;
  const id = leaseIdOf(req);
  const incrementMs = durationField(req.data, 'increment') ?? 0;
  const held = await core.leases.lookup(id);
  // Knowing a lease id is not enough to keep it alive: see mayRenew. (A missing lease answers as before.)
  if (held && !mayRenew(req, held)) throw denied();
  const result = await core.leases.renew(id, incrementMs);
  const lease = result.lease;
  return {
    ...(result.data ? { data: result.data } : {}),
    ...(result.warnings && result.warnings.length > 0 ? { warnings: result.warnings } : {}),
    http: { lease: { id: lease.leaseId, durationSeconds: Math.round(lease.secret.ttlMs / 1000), renewable: lease.secret.renewable } },
  };
}

/** How far up a token's parents mayRenew looks (token trees are far shallower). */
const MAX_TOKEN_DEPTH = 64;

/**
 * Who may renew a lease: the token that obtained it or one of that token's
 * ancestors (whose revocation would end it anyway), a token of the same
 * identity entity (the same workload after a new login: a restarted broker),
 * or a token with sudo on the renew path (an operator). Vault lets any token
 * with update on sys/leases/renew renew any lease whose id it knows; here the
 * id is treated as the secret it is, not as a credential.
 */
function mayRenew(req: LogicalRequest, lease: LeaseEntry): boolean {
  const sr = serverRequest(req);
  if (sr.isSudo(sr.path, 'update')) return true;
  const caller = sr.token!;
  const tokens = sr.core.tokens;
  const creator = tokens.lookupHash(lease.clientTokenId);
  if (creator?.entityId && creator.entityId === caller.entityId) return true;
  let hash = lease.clientTokenId;
  for (let depth = 0; depth < MAX_TOKEN_DEPTH && hash !== ''; depth++) {
    if (hash === caller.hash) return true;
    hash = tokens.lookupHash(hash)?.parent ?? '';
  }
  return false;
}
