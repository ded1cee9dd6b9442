// sys/wrapping: response wrapping. Unwrap and lookup are unauthenticated (the
// wrapping token is the credential, in the body or as the request's token);
// wrap needs X-Vault-Wrap-TTL and wraps whatever data it is given.

import type { LogicalRequest } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { badRequest } from '../errors.ts';
import { checked, stringField } from '../fields.ts';

const TOKEN = { token: checked('string', 'The wrapping token (else the request\'s own token).', { secret: true }) };

/** The wrapping token: the body's, else the one the request carried. */
function wrappingToken(req: LogicalRequest): string {
  const id = stringField(req.data, 'token') ?? serverRequest(req).rawToken;
  if (!id) throw badRequest('missing required field token');
  return id;
}

export function pathWrapping(): Route[] {
  return [
    {
      pattern: 'wrapping/unwrap',
      fields: TOKEN,
      operations: {
        update: async (req) => {
          const w = await serverRequest(req).core.wrapping.unwrap(wrappingToken(req));
          if (w.data === null && w.auth === null && w.lease_id === '' && w.warnings === null) return null;
          return {
            ...(w.data ? { data: w.data } : {}),
            ...(w.auth ? { auth: w.auth } : {}),
            ...(w.warnings ? { warnings: w.warnings } : {}),
            http: { wrappable: false, lease: { id: w.lease_id, durationSeconds: w.lease_duration, renewable: w.renewable } },
          };
        },
      },
      synopsis: 'Unwrap a wrapped response.',
      description: `
Answers the response a wrapping token holds, once: the token is revoked by
this.`,
    },
    {
      pattern: 'wrapping/lookup',
      fields: TOKEN,
      operations: {
        update: async (req) => ({ data: serverRequest(req).core.wrapping.lookup(wrappingToken(req)), http: { wrappable: false } }),
      },
      synopsis: 'Look a wrapping token up.',
      description: `
The wrapping token's creation time, ttl and creation path, without unwrapping
it.`,
    },
    {
      pattern: 'wrapping/wrap',
      fields: {},
      operations: {
        update: async (req) => {
          if (serverRequest(req).wrapTtlMs === undefined) throw badRequest('endpoint requires response wrapping to be used');
          return { data: { ...req.data } };
        },
      },
      synopsis: 'Wrap data.',
      description: `
Wraps the request's data in a wrapping token (X-Vault-Wrap-TTL is required).`,
    },
  ];
}
