// sys/auth: the auth methods. List them, enable one at a path, read or
// disable it, and tune it (ttls, description, user lockout). Enabling,
// disabling and tuning need sudo, as in Vault.

import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { authMountInfo } from '../auth/table.ts';
import { userLockoutData } from '../auth/lockout.ts';
import { serverRequest } from '../context.ts';
import { badRequest } from '../errors.ts';
import { checked } from '../fields.ts';
import { SYSTEM_MAX_TTL_MS } from '../lease_ttl.ts';
import { MOUNT_INPUT_FIELDS, mountInput, mountPathOf, optionsField, tokenMountInfo, TUNE_FIELDS, tuneData } from './mount_info.ts';

const PATH = checked('string', 'The auth method\'s path, under auth/.');

export function pathAuth(): Route[] {
  return [
    {
      pattern: 'auth',
      fields: {},
      operations: {
        read: async (req) => {
          const { core } = serverRequest(req);
          const data: Record<string, unknown> = { 'token/': tokenMountInfo(core) };
          for (const m of core.auth.list()) data[m.entry.path] = authMountInfo(m.entry);
          return { data, http: { topLevel: true } };
        },
      },
      synopsis: 'The enabled auth methods.',
      description: `
Every auth method by its path, the built-in token method first, with its type,
accessor, description and ttls; the fields are repeated at the top level.`,
    },
    {
      pattern: 'auth/(?<path>.+?)/tune',
      fields: {
        path: PATH,
        ...TUNE_FIELDS,
        token_type: checked('string', 'Only service tokens: default-service, service or default.'),
        user_lockout_config: checked('object', 'Lockout after failed logins: lockout_threshold, lockout_duration, lockout_counter_reset, disable_lockout.'),
      },
      operations: {
        read: async (req, f) => tuneAuth(req, f.get<string>('path')),
        update: async (req, f) => tuneAuth(req, f.get<string>('path')),
      },
      synopsis: 'Tune an auth method.',
      description: `
Reads or changes an auth method's ttls, description and user lockout settings.`,
    },
    {
      pattern: 'auth/(?<path>.+)',
      fields: { path: PATH, ...MOUNT_INPUT_FIELDS },
      operations: {
        read: async (req, f) => {
          const { core } = serverRequest(req);
          const path = mountPathOf(f.get<string>('path'));
          if (path === 'token/') return { data: tokenMountInfo(core), http: { topLevel: true } };
          const mount = core.auth.get(path);
          if (!mount) throw badRequest(`No auth engine at ${path}`);
          return { data: authMountInfo(mount.entry), http: { topLevel: true } };
        },
        update: async (req, f) => {
          await serverRequest(req).core.auth.mount(mountInput(req.data, f.get<string>('path')));
          return null;
        },
        delete: async (req, f) => {
          const { core } = serverRequest(req);
          const path = mountPathOf(f.get<string>('path'));
          if (path === 'token/') throw badRequest('token credential backend cannot be disabled');
          await core.auth.unmount(path, async (mount) => {
            // Everything the method issued goes: its tokens, their children and their leases.
            await core.tokens.revokeByPathPrefix(`auth/${mount.entry.path}`);
            await core.identity.dropMountAliases(mount.entry.accessor);
          });
          return null;
        },
      },
      synopsis: 'Enable, read or disable an auth method.',
      description: `
Enables an auth method (type approle or jwt) at a path under auth/, reads it,
or disables it with every token it issued.`,
    },
  ];
}

/** sys/auth/<path>/tune and sys/mounts/auth/<path>/tune. */
export async function tuneAuth(req: LogicalRequest, rawPath: string): Promise<LogicalResponse | null> {
  const { core } = serverRequest(req);
  const path = mountPathOf(rawPath);
  const systemTtl = Math.round(SYSTEM_MAX_TTL_MS / 1000);
  const reading = req.operation === 'read';
  if (path === 'token/') {
    if (!reading) throw badRequest('the token auth method cannot be tuned on this server');
    return tuneData({
      default_lease_ttl: systemTtl,
      max_lease_ttl: systemTtl,
      force_no_cache: false,
      token_type: 'default-service',
      description: 'token based credentials',
    });
  }
  const mount = core.auth.get(path);
  if (!mount) throw badRequest(`No auth engine at ${path}`);
  if (reading) {
    const { config, description, options } = mount.entry;
    return tuneData({
      default_lease_ttl: config.default_lease_ttl || systemTtl,
      max_lease_ttl: config.max_lease_ttl || systemTtl,
      force_no_cache: config.force_no_cache,
      token_type: 'default-service',
      description,
      ...optionsField(options),
      ...userLockoutData(mount.entry.user_lockout_config),
    });
  }
  const tokenType = req.data.token_type;
  if (typeof tokenType === 'string' && tokenType !== '' && !['default-service', 'service', 'default'].includes(tokenType)) {
    throw badRequest(`invalid token_type ${JSON.stringify(tokenType)}: this server issues service tokens only`);
  }
  await core.auth.tune(path, {
    description: req.data.description,
    default_lease_ttl: req.data.default_lease_ttl,
    max_lease_ttl: req.data.max_lease_ttl,
    user_lockout_config: req.data.user_lockout_config,
  });
  return null;
}
