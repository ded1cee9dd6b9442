// sys/mounts: the secrets engines. List them, mount one at a path, read or
// unmount it (with every lease it issued), and tune it. Auth methods are
// mounts too: sys/mounts/auth/<path> reads one and tunes it, as the api
// client's Sys().GetAuth and the Terraform provider expect.

import type { Route } from '../../sdk/route.ts';
import { authMountInfo } from '../auth/table.ts';
import { serverRequest } from '../context.ts';
import { badRequest } from '../errors.ts';
import { checked } from '../fields.ts';
import { mountInfo } from '../mounts.ts';
import { SYSTEM_MAX_TTL_MS } from '../lease_ttl.ts';
import { MOUNT_INPUT_FIELDS, mountInput, mountPathOf, optionsField, systemMountInfo, tokenMountInfo, TUNE_FIELDS, tuneData } from './mount_info.ts';
import { tuneAuth } from './path_auth.ts';

const PATH = checked('string', 'The mount\'s path.');

export function pathMounts(): Route[] {
  return [
    {
      pattern: 'mounts',
      fields: {},
      operations: {
        read: async (req) => {
          const { core } = serverRequest(req);
          const data: Record<string, unknown> = { 'sys/': systemMountInfo(core) };
          for (const m of core.mounts.list()) data[m.entry.path] = mountInfo(m.entry);
          return { data, http: { topLevel: true } };
        },
      },
      synopsis: 'The mounted secrets engines.',
      description: `
Every secrets engine by its path, sys/ first, with its type, accessor,
description and lease ttls; the fields are repeated at the top level, as
Vault's legacy answer has them.`,
    },
    {
      pattern: 'mounts/(?<path>.+?)/tune',
      fields: { path: PATH, ...TUNE_FIELDS },
      operations: {
        read: async (req, f) => tuneMount(req, f.get<string>('path')),
        update: async (req, f) => tuneMount(req, f.get<string>('path')),
      },
      synopsis: 'Tune a mount.',
      description: `
Reads or changes a mount's default and max lease ttls and its description. A
new max caps the leases issued afterwards and their renewals.`,
    },
    {
      pattern: 'mounts/(?<path>.+)',
      fields: { path: PATH, ...MOUNT_INPUT_FIELDS },
      operations: {
        read: async (req, f) => {
          const { core } = serverRequest(req);
          const path = mountPathOf(f.get<string>('path'));
          if (path === 'sys/') return { data: systemMountInfo(core), http: { topLevel: true } };
          const authMount = path.startsWith('auth/') ? core.auth.get(path.slice('auth/'.length)) : undefined;
          const auth = path === 'auth/token/' ? tokenMountInfo(core) : authMount ? authMountInfo(authMount.entry) : undefined;
          if (auth) return { data: auth, http: { topLevel: true } };
          const mount = core.mounts.get(path);
          // Vault's wording: the Terraform provider recognises a missing mount by it.
          if (!mount) throw badRequest(`No secret engine mount at ${path}`);
          // Like the listing, the mount's fields are repeated at the top level (Vault's legacy shape).
          return { data: mountInfo(mount.entry), http: { topLevel: true } };
        },
        update: async (req, f) => {
          await serverRequest(req).core.mounts.mount(mountInput(req.data, f.get<string>('path')));
          return null;
        },
        delete: async (req, f) => {
          const { core } = serverRequest(req);
          const path = mountPathOf(f.get<string>('path'));
          if (path === 'sys/' || path.startsWith('auth/') || path === 'cubbyhole/' || path === 'identity/') {
            throw badRequest(`cannot unmount ${JSON.stringify(path)}`);
          }
          await core.mounts.unmount(path, async (mount) => {
            await core.leases.revokeByMount(mount.entry.path);
          });
          return null;
        },
      },
      synopsis: 'Mount, read or unmount a secrets engine.',
      description: `
Mounts a secrets engine (type tvm) at a path, reads it, or unmounts it,
revoking every lease it issued.`,
    },
  ];
}

async function tuneMount(req: Parameters<typeof tuneAuth>[0], rawPath: string) {
  const { core } = serverRequest(req);
  const path = mountPathOf(rawPath);
  if (path.startsWith('auth/')) return tuneAuth(req, path.slice('auth/'.length));
  const mount = core.mounts.get(path);
  if (!mount) throw badRequest(`no mount at ${JSON.stringify(path)}`);
  if (req.operation === 'read') {
    const { config, description, options } = mount.entry;
    return tuneData({
      default_lease_ttl: config.default_lease_ttl || Math.round(SYSTEM_MAX_TTL_MS / 1000),
      max_lease_ttl: config.max_lease_ttl || Math.round(SYSTEM_MAX_TTL_MS / 1000),
      force_no_cache: config.force_no_cache,
      description,
      ...optionsField(options),
    });
  }
  await core.mounts.tune(path, {
    description: req.data.description,
    default_lease_ttl: req.data.default_lease_ttl,
    max_lease_ttl: req.data.max_lease_ttl,
  });
  return null;
}
