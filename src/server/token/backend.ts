// The token store (Vault's token_store.go), mounted at auth/token/: create,
// look up, renew and revoke tokens, and list their accessors (sudo). Each
// family in its path file; the store itself is tokens.ts.

import { FrameworkBackend } from '../../sdk/framework.ts';
import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { pathCreate } from './path_create.ts';
import { pathLookup } from './path_lookup.ts';
import { pathRenew } from './path_renew.ts';
import { pathRevoke } from './path_revoke.ts';

function pathAccessors(): Route[] {
  return [
    {
      pattern: 'accessors/?',
      fields: {},
      operations: { list: async (req) => ({ data: { keys: serverRequest(req).core.tokens.accessors() } }) },
      synopsis: 'List token accessors (sudo).',
    description: 'The accessor of every live token.',
    },
  ];
}

export function tokenBackend(): FrameworkBackend {
  return new FrameworkBackend({
    name: 'token',
    tag: 'auth',
    description: 'The token store: create, look up, renew and revoke tokens.',
    help: 'The token store: tokens with policies, ttls and parents; revoking one revokes its children and their leases.',
    routes: [...pathCreate(), ...pathLookup(), ...pathRenew(), ...pathRevoke(), ...pathAccessors()],
    secrets: [],
    specialPaths: { unauthenticated: [], root: ['accessors*'] },
    unknownFields: 'ignore',
  });
}
