// keys, keys/rotate, jwks and the OIDC discovery documents.

import type { EngineContext } from './context.ts';
import type { Route } from '../sdk/route.ts';
import { effectiveConfig } from './path_config.ts';
import { HTTP_CONTENT_TYPE, HTTP_RAW_BODY, HTTP_STATUS_CODE, type LogicalRequest, type LogicalResponse } from '../sdk/logical.ts';

function raw(body: unknown): LogicalResponse {
  return {
    data: {
      [HTTP_CONTENT_TYPE]: 'application/json',
      [HTTP_RAW_BODY]: JSON.stringify(body),
      [HTTP_STATUS_CODE]: 200,
    },
  };
}

export function keyRoutes(ctx: EngineContext): Route[] {
  const jwks = async (req: LogicalRequest) => {
    const config = await effectiveConfig(ctx, req);
    await ctx.keys.signingKey(req.storage, config);
    return { keys: await ctx.keys.publishedJwks(req.storage) };
  };

  const discovery = async (req: LogicalRequest) => {
    const config = await effectiveConfig(ctx, req);
    return {
      issuer: config.issuer,
      jwks_uri: `${config.issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${config.issuer}/introspect`,
      revocation_list_uri: `${config.issuer}/revocations`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [config.signing_algorithm],
      token_endpoint_auth_signing_alg_values_supported: [config.signing_algorithm],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'bound_cidrs'],
    };
  };

  return [
    {
      pattern: 'keys/rotate',
      fields: {},
      operations: {
        update: async (req) => {
          const config = await effectiveConfig(ctx, req);
          const key = await ctx.keys.rotate(req.storage, config);
          return { data: { kid: key.kid, alg: key.alg } };
        },
      },
      synopsis: 'Rotates the signing key.',
      description: `
A new key signs from now on. The old key stays published in the JWKS until
every token it signed has expired (its retirement plus the mount's max_ttl).`,
    },
    {
      pattern: 'jwks',
      fields: {},
      operations: { read: async (req) => ({ data: await jwks(req) }) },
      synopsis: 'The public keys that may verify a live token (JWK set).',
      description: 'Unauthenticated. The same set as .well-known/jwks.json, in the Vault envelope.',
    },
    {
      pattern: '\\.well-known/jwks\\.json',
      fields: {},
      operations: { read: async (req) => raw(await jwks(req)) },
      synopsis: 'The public keys as a plain JWK set document.',
      description: 'Unauthenticated; for resource servers and cloud OIDC federation.',
    },
    {
      pattern: '\\.well-known/openid-configuration',
      fields: {},
      operations: { read: async (req) => raw(await discovery(req)) },
      synopsis: 'OIDC discovery document for the issuer.',
      description: 'Unauthenticated. Names the issuer, the JWKS URI and the supported algorithm.',
    },
  ];
}
