// revocations: the list of revoked token ids that are not expired yet.

import type { EngineContext } from './context.ts';
import { invalidField } from '../sdk/errors.ts';
import type { Route } from '../sdk/route.ts';

export function revocationRoutes(ctx: EngineContext): Route[] {
  return [
    {
      pattern: 'revocations',
      fields: {
        since: { type: 'int', default: 0, description: 'Only entries added after this version.' },
      },
      operations: {
        read: async (req, fields) => {
          const since = fields.get<number>('since');
          if (since < 0) throw invalidField('since', `${since} must be 0 or more`);
          return { data: await ctx.revocations.list(req.storage, since) };
        },
      },
      synopsis: 'Revoked token ids, each until its token would have expired.',
      description: `
Unauthenticated. Answers {version, revoked: [{jti, exp}]}. Verifiers poll with
since=<the version they hold> to fetch only newer entries.`,
    },
  ];
}
