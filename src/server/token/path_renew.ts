// auth/token/renew and renew-self: extend a token's ttl (within its max).

import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { badRequest } from '../errors.ts';
import { checked, durationField, stringField } from '../fields.ts';
import { authBlock, type TokenEntry } from './store.ts';

const INCREMENT = checked('duration', 'The ttl asked for, from now (capped by the token\'s max).');

export function pathRenew(): Route[] {
  return [
    {
      pattern: 'renew-self',
      fields: { increment: INCREMENT },
      operations: {
        update: async (req) => {
          const sr = serverRequest(req);
          return renewToken(req, sr.token!, sr.rawToken!);
        },
      },
      synopsis: 'Renew the calling token.',
      description: `
Extends the calling token's ttl by the increment asked for, within its max
ttl.`,
    },
    {
      pattern: 'renew',
      fields: { token: checked('string', 'The token to renew.', { secret: true, required: true }), increment: INCREMENT },
      operations: {
        update: async (req) => {
          const id = stringField(req.data, 'token', true)!;
          const entry = serverRequest(req).core.tokens.lookup(id);
          if (!entry || entry.wrapping) throw badRequest('invalid token');
          return renewToken(req, entry, id);
        },
      },
      synopsis: 'Renew a token.',
      description: `
Extends a token's ttl by the increment asked for, within its max ttl.`,
    },
  ];
}

async function renewToken(req: LogicalRequest, entry: TokenEntry, id: string): Promise<LogicalResponse> {
  const { core } = serverRequest(req);
  const incrementMs = durationField(req.data, 'increment') ?? 0;
  const { warnings } = await core.tokens.renew(entry, incrementMs);
  return {
    auth: authBlock(entry, id, entry.lastRenewalMs ?? core.clock()),
    ...(warnings.length > 0 ? { warnings } : {}),
    http: { wrappedAccessor: entry.accessor },
  };
}
