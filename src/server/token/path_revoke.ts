// auth/token/revoke, revoke-self and revoke-accessor: a token goes, with its
// children and every lease they obtained.

import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { checked, stringField } from '../fields.ts';

export function pathRevoke(): Route[] {
  return [
    {
      pattern: 'revoke-self',
      fields: {},
      operations: {
        update: async (req) => {
          const sr = serverRequest(req);
          await sr.core.tokens.revoke(sr.token!.hash);
          return null;
        },
      },
      synopsis: 'Revoke the calling token.',
      description: `
Revokes the calling token, its children and every lease they obtained: the
engine lists the tokens it issued under them as revoked.`,
    },
    {
      pattern: 'revoke',
      fields: { token: checked('string', 'The token to revoke.', { secret: true, required: true }) },
      operations: {
        update: async (req) => {
          const { tokens } = serverRequest(req).core;
          const entry = tokens.lookup(stringField(req.data, 'token', true)!);
          if (entry) await tokens.revoke(entry.hash);
          return null;
        },
      },
      synopsis: 'Revoke a token.',
      description: `
Revokes a token, its children and their leases. An unknown token is no error.`,
    },
    {
      pattern: 'revoke-accessor',
      fields: { accessor: checked('string', 'The accessor of the token to revoke.', { required: true }) },
      operations: {
        update: async (req) => {
          const { tokens } = serverRequest(req).core;
          const entry = tokens.lookupAccessor(stringField(req.data, 'accessor', true)!);
          if (entry) await tokens.revoke(entry.hash);
          return null;
        },
      },
      synopsis: 'Revoke a token by its accessor.',
      description: `
Revokes the token an accessor names, its children and their leases.`,
    },
  ];
}
