// introspect: RFC 7662 token introspection for tvm tokens.

import type { EngineContext } from './context.ts';
import { invalidField } from '../sdk/errors.ts';
import type { Route } from '../sdk/route.ts';
import { effectiveConfig } from './path_config.ts';
import { checkToken, tokenTypeOf } from './token.ts';
import { parseScope } from './patterns.ts';

export function introspectRoutes(ctx: EngineContext): Route[] {
  return [
    {
      pattern: 'introspect',
      fields: {
        token: { type: 'string', required: true, secret: true, description: 'The token to introspect.' },
      },
      operations: {
        update: async (req, fields) => {
          const token = fields.get<string>('token');
          if (token === '') throw invalidField('token', 'may not be empty');
          const config = await effectiveConfig(ctx, req);
          const result = await checkToken(ctx, req.storage, config, token);
          if (!result.active) return { data: { active: false } };
          const c = result.claims;
          const scope = typeof c.scope === 'string' ? c.scope : '';
          const { read, write } = parseScope(scope);
          return {
            data: {
              active: true,
              scope,
              client_id: c.client_id,
              sub: c.sub,
              aud: c.aud,
              iss: c.iss,
              exp: c.exp,
              iat: c.iat,
              nbf: c.nbf,
              jti: c.jti,
              token_type: tokenTypeOf(read, write),
              ...(c.bound_cidrs ? { bound_cidrs: c.bound_cidrs } : {}),
            },
          };
        },
      },
      synopsis: 'Introspects a token (RFC 7662).',
      description: `
Answers {"active": true, ...claims} for a live token of this mount, and
{"active": false} for a revoked, expired, foreign or malformed one.`,
    },
  ];
}
