// identity/entity: the identity entities logins created (read only here:
// this server creates an entity per auth alias at its first login).

import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { HttpError } from '../errors.ts';
import { checked } from '../fields.ts';
import type { Entity } from './store.ts';

export function pathEntity(): Route[] {
  return [
    {
      pattern: 'entity/id/?',
      fields: {},
      operations: {
        list: async (req) => {
          const { identity } = serverRequest(req).core;
          // key_info: each entity's name and aliases, as Vault's listing has them.
          const keys = identity.ids();
          const keyInfo: Record<string, unknown> = {};
          for (const id of keys) {
            const entity = identity.get(id);
            if (!entity) continue;
            keyInfo[id] = {
              name: entity.name,
              aliases: entity.aliases.map((a) => ({ id: a.id, mount_accessor: a.mount_accessor, mount_path: a.mount_path, mount_type: a.mount_type, name: a.name })),
            };
          }
          return { data: { keys, key_info: keyInfo } };
        },
      },
      synopsis: 'The identity entities.',
      description: `
Every entity's id, with its name and its aliases (mount, accessor and alias
name) under key_info, as Vault's listing has them.`,
    },
    {
      pattern: 'entity/id/(?<id>[^/]+)',
      fields: { id: checked('string', 'The entity\'s id.') },
      operations: {
        read: async (req, f) => {
          const entity = serverRequest(req).core.identity.get(f.get<string>('id'));
          if (!entity) throw new HttpError(404);
          return { data: entityData(entity) };
        },
      },
      synopsis: 'An identity entity.',
      description: `
The entity with its aliases (one per auth mount it logged in through),
metadata and policies.`,
    },
  ];
}

/** An entity as `identity/entity/id/<id>` shows it. */
function entityData(entity: Entity): Record<string, unknown> {
  return {
    // This server keeps no custom alias metadata, no local aliases and merges no entities.
    aliases: entity.aliases.map((a) => ({ ...a, custom_metadata: null, local: false, merged_from_canonical_ids: null })),
    creation_time: entity.creation_time,
    direct_group_ids: [],
    disabled: entity.disabled,
    group_ids: [],
    id: entity.id,
    inherited_group_ids: [],
    last_update_time: entity.last_update_time,
    merged_entity_ids: null,
    metadata: entity.metadata,
    name: entity.name,
    namespace_id: 'root',
    policies: entity.policies,
  };
}
