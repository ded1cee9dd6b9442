// sys/policies/acl (and the legacy sys/policy): ACL policies in HCL. Names
// are compared without case or surrounding space, so the ACL is checked on
// the one form that is stored (a deny on `admin` holds for `ADMIN ` too).

import type { FieldData } from '../../sdk/fields.ts';
import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';
import { badRequest, HttpError } from '../errors.ts';
import { checked } from '../fields.ts';
import { normalizePolicyName, ROOT_POLICY } from '../policy.ts';

const NAME = checked('string', 'The policy\'s name (compared without case).');

export function pathPolicies(): Route[] {
  const exists = async (req: LogicalRequest, f: FieldData): Promise<boolean> =>
    serverRequest(req).core.policies.has(f.get<string>('name'));
  const list = async (req: LogicalRequest) => ({ data: { keys: serverRequest(req).core.policies.names() } });
  return [
    {
      pattern: 'policies/acl/?',
      fields: {},
      operations: { list },
      synopsis: 'The ACL policies.',
      description: `
The names of every ACL policy, root and default among them, sorted as Vault
lists them.`,
    },
    {
      pattern: 'policies/acl/(?<name>[^/]+)',
      fields: { name: NAME, policy: checked('string', 'The policy document, in HCL (or JSON).') },
      caseInsensitive: ['name'],
      existenceCheck: exists,
      operations: {
        read: (req, f) => policy(req, f, false),
        create: (req, f) => policy(req, f, false),
        update: (req, f) => policy(req, f, false),
        delete: (req, f) => policy(req, f, false),
      },
      synopsis: 'Read, write or delete an ACL policy.',
      description: `
An ACL policy: path rules with capabilities (create, read, update, patch,
delete, list, sudo, deny), allowed and denied parameters, and wrapping ttl
bounds.`,
    },
    {
      pattern: 'policy/?',
      fields: {},
      operations: {
        read: async (req) => {
          const names = serverRequest(req).core.policies.names();
          return { data: { keys: names, policies: names }, http: { topLevel: true } };
        },
        list,
      },
      synopsis: 'The ACL policies (legacy path).',
      description: `
As sys/policies/acl, with the names also under "policies" and at the top
level.`,
    },
    {
      pattern: 'policy/(?<name>[^/]+)',
      fields: {
        name: NAME,
        policy: checked('string', 'The policy document.'),
        rules: checked('string', 'Deprecated: the policy document (use policy).'),
      },
      caseInsensitive: ['name'],
      existenceCheck: exists,
      operations: {
        read: (req, f) => policy(req, f, true),
        create: (req, f) => policy(req, f, true),
        update: (req, f) => policy(req, f, true),
        delete: (req, f) => policy(req, f, true),
      },
      synopsis: 'Read, write or delete an ACL policy (legacy path).',
      description: `
As sys/policies/acl/<name>, with the document under "rules", as Vault's legacy
endpoint has it (writing "rules" answers a deprecation warning).`,
    },
  ];
}

async function policy(req: LogicalRequest, f: FieldData, legacy: boolean): Promise<LogicalResponse | null> {
  const { core } = serverRequest(req);
  // Already canonical (resolve-path made it so before the ACL check); normalising again is idempotent.
  const name = normalizePolicyName(f.get<string>('name'));
  switch (req.operation) {
    case 'read': {
      // root is no stored policy, but Vault answers it (with no rules).
      const stored = name === ROOT_POLICY ? { name, raw: '' } : core.policies.get(name);
      if (!stored) throw new HttpError(404);
      if (legacy) return { data: { name: stored.name, rules: stored.raw }, http: { topLevel: true } };
      return { data: { name: stored.name, policy: stored.raw } };
    }
    case 'delete':
      await core.policies.delete(name);
      return null;
    default: {
      const text = req.data.policy ?? (legacy ? req.data.rules : undefined);
      if (typeof text !== 'string' || text.trim() === '') {
        throw badRequest(`'${legacy ? 'rules' : 'policy'}' parameter not supplied or empty`);
      }
      await core.policies.put(name, text);
      if (legacy && req.data.policy === undefined) return { warnings: ["'rules' is deprecated, please use 'policy' instead"] };
      return null;
    }
  }
}
