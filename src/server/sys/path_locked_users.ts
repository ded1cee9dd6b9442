// sys/locked-users (Vault 1.13+): the aliases locked out after failed logins,
// by mount accessor, and unlocking one.

import type { Route } from '../../sdk/route.ts';
import { lockedUsers, unlockUser } from '../auth/lockout.ts';
import { serverRequest } from '../context.ts';
import { checked, stringField } from '../fields.ts';

export function pathLockedUsers(): Route[] {
  return [
    {
      pattern: 'locked-users',
      fields: { mount_accessor: checked('string', 'Only this auth mount\'s locked aliases.') },
      operations: {
        read: async (req) => ({ data: lockedUsers(serverRequest(req).core.auth, stringField(req.data, 'mount_accessor')) }),
      },
      synopsis: 'The locked-out aliases.',
      description: `
Per auth mount accessor, the aliases (AppRole role IDs) locked out by failed
logins, with their counts.`,
    },
    {
      pattern: 'locked-users/(?<mount_accessor>.+?)/unlock/(?<alias_identifier>.+)',
      fields: {
        mount_accessor: checked('string', 'The auth mount\'s accessor.'),
        alias_identifier: checked('string', 'The alias to unlock (an AppRole role ID).'),
      },
      operations: {
        update: async (req, f) => {
          unlockUser(serverRequest(req).core.auth, f.get<string>('mount_accessor'), f.get<string>('alias_identifier'));
          return null;
        },
      },
      synopsis: 'Unlock an alias.',
      description: `
Ends an alias's lockout now and forgets its failed logins, as if the lockout
duration had passed.`,
    },
  ];
}
