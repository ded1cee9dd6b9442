// The identity backend, mounted at identity/: the entities logins create.

import { FrameworkBackend } from '../../sdk/framework.ts';
import { pathEntity } from './path_entity.ts';

export function identityBackend(): FrameworkBackend {
  return new FrameworkBackend({
    name: 'identity',
    tag: 'identity',
    description: 'The identity store: the entities logins created and their aliases.',
    help: 'The identity store: one entity per workload, with an alias per auth mount it logs in through.',
    routes: [...pathEntity()],
    secrets: [],
    specialPaths: { unauthenticated: [], root: [] },
    unknownFields: 'ignore',
  });
}
