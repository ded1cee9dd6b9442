// revoke/<role>: a token refused everywhere at once, by its jti, without its lease id
// (what an anomaly rule that saw the token at a resource server knows). The
// jti enters the revocation list and its status list bit is set (pushed to
// subscribers); the lease's next renewal is refused, so it ends at its ttl, and
// `sys/leases/revoke` ends it sooner for whoever holds the lease id.

import type { EngineContext } from './context.ts';
import { invalidField, showValue } from '../sdk/errors.ts';
import type { Route } from '../sdk/route.ts';
import { ROLE_NAME } from './roles.ts';
import type { LogicalRequest, LogicalResponse } from '../sdk/logical.ts';
import type { FieldData } from '../sdk/fields.ts';

const JTI = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function revokeRoutes(ctx: EngineContext): Route[] {
  const revoke = async (req: LogicalRequest, fields: FieldData): Promise<LogicalResponse | null> => {
    const jti = fields.get<string>('jti');
    const role = fields.get<string>('role');
    if (!JTI.test(jti)) throw invalidField('jti', `${showValue(jti)} is not a token id`);
    if (!ROLE_NAME.test(role)) throw invalidField('role', `${showValue(role)} is not a role name`);
    const lease = await ctx.leases.get(req.storage, role, jti);
    // Unknown, expired or already revoked: nothing left to refuse; no answer (Vault's 204).
    if (!lease || lease.exp_ms <= ctx.clock()) return null;
    const until = Math.max(lease.exp_ms, ctx.clock());
    const entry = await ctx.revocations.add(req.storage, jti, Math.min(lease.max_exp_ms, until), lease.status);
    if (lease.status) ctx.status.notify({ ...lease.status, version: entry.version });
    return { data: { jti, role, revoked: true, version: entry.version } };
  };

  return [
    {
      pattern: 'revoke/(?<role>[^/]+)',
      fields: {
        role: { type: 'string', description: 'The role it was issued from (its client_id claim): in the path, so a policy can grant revoke per role.' },
        jti: { type: 'string', required: true, description: "The token's jti." },
      },
      operations: { update: revoke },
      synopsis: 'Revokes a token by its jti, at once, for every resource server.',
      description: `
Puts the jti on the revocation list and sets its status list bit (pushed on
status/events), so every PEP refuses the token within its push latency. The
lease is not ended here (its id is not needed): its next renewal is refused,
and sys/leases/revoke still ends it sooner. A jti the role issued no live token
with has nothing left to refuse: the answer is empty (204), as a repeated
revocation's is.`,
    },
  ];
}
