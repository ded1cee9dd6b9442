// sys/capabilities, capabilities-self and capabilities-accessor: what a token
// may do on some paths, each checked in the canonical form the router would
// check it in (so the answer is what a request would meet).

import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { canonicalPath } from '../request.ts';
import { serverRequest } from '../context.ts';
import { badRequest } from '../errors.ts';
import { checked, stringField, stringListField } from '../fields.ts';
import type { ACL } from '../policy.ts';

const PATHS = {
  paths: checked('string_list', 'The paths to check.'),
  path: checked('string_list', 'Deprecated: the paths to check.'),
};

export function pathCapabilities(): Route[] {
  return [
    {
      pattern: 'capabilities-self',
      fields: PATHS,
      operations: { update: async (req) => capabilities(req, serverRequest(req).acl!) },
      synopsis: 'The calling token\'s capabilities on paths.',
      description: `
For each path, the capabilities the calling token's policies grant on it.`,
    },
    {
      pattern: 'capabilities',
      fields: { ...PATHS, token: checked('string', 'The token to check.', { secret: true, required: true }) },
      operations: {
        update: async (req) => {
          const { core } = serverRequest(req);
          const entry = core.tokens.lookup(stringField(req.data, 'token', true)!);
          if (!entry) throw badRequest('invalid token');
          return capabilities(req, core.policies.acl(entry.policies));
        },
      },
      synopsis: 'A token\'s capabilities on paths.',
      description: `
For each path, the capabilities the given token's policies grant on it.`,
    },
    {
      pattern: 'capabilities-accessor',
      fields: { ...PATHS, accessor: checked('string', 'The accessor of the token to check.', { required: true }) },
      operations: {
        update: async (req) => {
          const { core } = serverRequest(req);
          const entry = core.tokens.lookupAccessor(stringField(req.data, 'accessor', true)!);
          if (!entry) throw badRequest('invalid accessor');
          return capabilities(req, core.policies.acl(entry.policies));
        },
      },
      synopsis: 'The capabilities on paths of the token with an accessor.',
      description: `
For each path, the capabilities granted to the token the accessor names.`,
    },
  ];
}

async function capabilities(req: LogicalRequest, acl: ACL): Promise<LogicalResponse> {
  const { router } = serverRequest(req);
  const data = req.data;
  const paths = stringListField(data, 'paths') ?? (typeof data.path === 'string' ? [data.path] : stringListField(data, 'path'));
  if (!paths || paths.length === 0) throw badRequest('missing required field paths');
  const out: Record<string, unknown> = {};
  for (const p of paths) out[p] = acl.capabilities(await router.canonical(canonicalPath(p, p.endsWith('/'))));
  if (paths.length === 1) out.capabilities = out[paths[0]];
  // Repeated at the top level, as Vault does for this legacy endpoint family.
  return { data: out, http: { topLevel: true } };
}
