// sys/internal: what the web UI and clients ask before they act. The mounts
// a token can reach (ui/mounts; the CLI's preflight for KV-style paths asks
// ui/mounts/<path>), and the OpenAPI document of every mount the token can
// reach, merged from each backend's own declarations (specs/openapi).

import type { Route } from '../../sdk/route.ts';
import { authMountInfo } from '../auth/table.ts';
import { serverRequest } from '../context.ts';
import { HttpError } from '../errors.ts';
import { checked } from '../fields.ts';
import { mountInfo } from '../mounts.ts';
import { showValue } from '../../sdk/errors.ts';
import { systemMountInfo, tokenMountInfo } from './mount_info.ts';
import { VAULT_VERSION } from './path_health.ts';

export function pathInternal(): Route[] {
  return [
    {
      pattern: 'internal/ui/mounts',
      fields: {},
      operations: {
        read: async (req) => {
          const { core, rawToken } = serverRequest(req);
          // Only mounts the token can reach are listed (none without a token).
          const secret: Record<string, unknown> = {};
          const auth: Record<string, unknown> = {};
          const entry = rawToken ? core.tokens.lookup(rawToken) : null;
          if (entry && !entry.wrapping) {
            const acl = core.policies.acl(entry.policies);
            if (acl.hasMountAccess('sys/')) secret['sys/'] = systemMountInfo(core);
            for (const m of core.mounts.list()) {
              if (acl.hasMountAccess(m.entry.path)) secret[m.entry.path] = { ...mountInfo(m.entry) };
            }
            if (acl.hasMountAccess('auth/token/')) auth['token/'] = tokenMountInfo(core);
            for (const m of core.auth.list()) {
              if (acl.hasMountAccess(`auth/${m.entry.path}`)) auth[m.entry.path] = authMountInfo(m.entry);
            }
          }
          return { data: { secret, auth } };
        },
      },
      synopsis: 'The mounts the token can reach.',
      description: `
Secrets engines and auth methods on which the request's token has any
capability; empty without a token.`,
    },
    {
      pattern: 'internal/ui/mounts/(?<path>.+)',
      fields: { path: checked('string', 'A path under the mount to describe.') },
      operations: {
        read: async (req, f) => {
          const { core, acl } = serverRequest(req);
          const path = f.get<string>('path').replace(/^\/+/, '');
          // Vault's words for a path the token cannot reach; the path is shown as an unrouted one is (it may be a pasted secret).
          const refused = (): HttpError => {
            const parts = path.replace(/\/+$/, '').split('/');
            const shown = parts.length > 2 ? `${parts.slice(0, 2).join('/')}/...` : `${parts.join('/')}/`;
            return new HttpError(403, `preflight capability check returned 403, please ensure client's policies grant access to path ${showValue(shown)}`);
          };
          if (path === 'sys' || path.startsWith('sys/')) {
            if (!acl!.root) throw refused();
            return { data: { ...systemMountInfo(core), path: 'sys/' } };
          }
          if (path === 'auth/token' || path.startsWith('auth/token/')) {
            if (!acl!.hasMountAccess('auth/token/')) throw refused();
            return { data: { ...tokenMountInfo(core), path: 'auth/token/' } };
          }
          if (path.startsWith('auth/')) {
            const found = core.auth.match(path.slice('auth/'.length));
            if (!found || !acl!.hasMountAccess(`auth/${found.mount.entry.path}`)) throw refused();
            return { data: { ...authMountInfo(found.mount.entry), path: `auth/${found.mount.entry.path}` } };
          }
          const match = core.mounts.match(path);
          // Unknown mounts and mounts without access both answer 403, so the path cannot probe for mounts.
          if (!match || !acl!.hasMountAccess(match.mount.entry.path)) throw refused();
          return { data: { ...mountInfo(match.mount.entry), path: match.mount.entry.path } };
        },
      },
      synopsis: 'The mount of a path.',
      description: `
The mount a path is under, if the token can reach it (403 otherwise, whether
or not it exists).`,
    },
    {
      pattern: 'internal/specs/openapi',
      fields: {},
      operations: {
        read: async (req) => {
          const { router, acl } = serverRequest(req);
          const paths: Record<string, unknown> = {};
          for (const mount of router.mounts()) {
            if (!acl!.root && !acl!.hasMountAccess(mount.prefix)) continue;
            const help = await mount.backend.handleRequest({ operation: 'help', path: '', data: {}, caller: req.caller, storage: req.storage, mountPoint: mount.prefix });
            const doc = help?.data?.openapi as { paths?: Record<string, unknown> } | undefined;
            for (const [template, item] of Object.entries(doc?.paths ?? {})) paths[`/${mount.prefix}${template.slice(1)}`] = item;
          }
          const document = {
            openapi: '3.0.2',
            info: {
              title: 'HashiCorp Vault API',
              description: 'HTTP API that gives you full access to Vault. All API routes are prefixed with `/v1/`.',
              version: VAULT_VERSION,
              license: { name: 'Mozilla Public License 2.0', url: 'https://www.mozilla.org/en-US/MPL/2.0' },
            },
            paths,
            components: { schemas: {} },
          };
          return { data: document, http: { plain: { status: 200 } } };
        },
      },
      synopsis: 'The OpenAPI document of every mount the token can reach.',
      description: `
Merged from each backend's declared routes (their fields, operations and
help), with each mount's path in front.`,
    },
  ];
}
