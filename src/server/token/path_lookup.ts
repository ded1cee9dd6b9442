// auth/token/lookup, lookup-self and lookup-accessor: a token's properties.

import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { HttpError } from '../errors.ts';
import { checked, stringField } from '../fields.ts';
import { tokenLookupData } from './store.ts';

const lookupSelf = async (req: LogicalRequest): Promise<LogicalResponse> => {
  const sr = serverRequest(req);
  return { data: tokenLookupData(sr.token!, sr.rawToken!, sr.core.clock()) };
};

export function pathLookup(): Route[] {
  return [
    {
      pattern: 'lookup-self',
      fields: {},
      operations: { read: lookupSelf, update: lookupSelf },
      synopsis: 'Look up the calling token.',
      description: `
The calling token's policies, ttl, metadata, entity and accessor; the token
itself is shown back as its id.`,
    },
    {
      pattern: 'lookup',
      fields: { token: checked('string', 'The token to look up (else the calling token).', { secret: true }) },
      operations: {
        update: async (req) => {
          const sr = serverRequest(req);
          // Without a token field, the caller's own token is looked up (Vault's).
          const id = stringField(req.data, 'token') ?? sr.rawToken!;
          const entry = sr.core.tokens.lookup(id);
          if (!entry || entry.wrapping) throw new HttpError(403, 'bad token');
          return { data: tokenLookupData(entry, id, sr.core.clock()) };
        },
      },
      synopsis: 'Look up a token.',
      description: `
A token's policies, ttl, metadata, entity and accessor. Without a token field
the calling token is looked up; a wrapping token is refused.`,
    },
    {
      pattern: 'lookup-accessor',
      fields: { accessor: checked('string', 'The accessor of the token to look up.', { required: true }) },
      operations: {
        update: async (req) => {
          const { core } = serverRequest(req);
          const entry = core.tokens.lookupAccessor(stringField(req.data, 'accessor', true)!);
          // The token store returns this one as an error, not an error response: Vault lists it.
          if (!entry) throw new HttpError(400, 'invalid accessor', { listed: true });
          return { data: tokenLookupData(entry, '', core.clock()) };
        },
      },
      synopsis: 'Look up a token by its accessor.',
      description: `
The properties of the token an accessor names (policies, ttl, metadata,
entity), without its id: an operator can inspect a workload's token without
holding it.`,
    },
  ];
}
