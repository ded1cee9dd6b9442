// config: the mount's issuer, signing algorithm and ttl defaults.

import { algorithmProblem, isCloud } from '../iam/mapping.ts';
import type { EngineContext } from './context.ts';
import { DEFAULT_MAX_TTL_S, DEFAULT_STATUS_LIST_TTL_S, DEFAULT_TTL_S, MAX_STATUS_LIST_TTL_S, defaultIssuer, SIGNING_ALGORITHMS, type ConfigEntry, type EffectiveConfig, type SigningAlgorithm } from './config.ts';
import { invalidField, showValue } from '../sdk/errors.ts';
import type { FieldData } from '../sdk/fields.ts';
import type { Route } from '../sdk/route.ts';
import { listKeys } from '../sdk/storage.ts';
import type { LogicalRequest, LogicalResponse } from '../sdk/logical.ts';

export async function effectiveConfig(ctx: EngineContext, req: LogicalRequest): Promise<EffectiveConfig> {
  const entry = await ctx.config.load(req.storage);
  const isDefault = entry.issuer === '';
  return {
    ...entry,
    issuer: isDefault ? defaultIssuer(ctx.apiAddr, req.mountPoint) : entry.issuer,
    issuer_is_default: isDefault,
  };
}

function toSeconds(field: string, ms: number): number {
  if (ms % 1000 !== 0) throw invalidField(field, `${ms}ms is not a whole number of seconds`);
  return ms / 1000;
}

function validateIssuer(issuer: string): void {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw invalidField('issuer', `${showValue(issuer)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalidField('issuer', `${showValue(issuer)} must be an http or https URL`);
  }
  if (url.search || url.hash) throw invalidField('issuer', `${showValue(issuer)} may not have a query or fragment`);
}

/** A new signing algorithm must still be one every role's cloud federation accepts. */
async function checkRolesAccept(ctx: EngineContext, req: LogicalRequest, algorithm: string): Promise<void> {
  for (const name of await listKeys(req.storage, 'roles/')) {
    if (name.endsWith('/')) continue;
    const role = await ctx.roles.get(req.storage, name);
    for (const [cloud, target] of Object.entries(role?.iam ?? {})) {
      if (!isCloud(cloud) || target === null || typeof target !== 'object') continue;
      const problem = algorithmProblem(cloud, target as Record<string, unknown>, algorithm);
      if (problem) throw invalidField('signing_algorithm', `role ${showValue(name)} maps ${cloud}: ${problem}`);
    }
  }
}

export function configRoutes(ctx: EngineContext): Route[] {
  const readConfig = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const cfg = await effectiveConfig(ctx, req);
    return {
      data: {
        issuer: cfg.issuer,
        signing_algorithm: cfg.signing_algorithm,
        default_ttl: cfg.default_ttl,
        max_ttl: cfg.max_ttl,
        status_list_ttl: cfg.status_list_ttl,
      },
    };
  };

  const writeConfig = async (req: LogicalRequest, fields: FieldData): Promise<LogicalResponse> => {
    const current = await ctx.config.load(req.storage);
    const next: ConfigEntry = { ...current };
    if (fields.has('issuer')) {
      const issuer = fields.get<string>('issuer').replace(/\/+$/, '');
      if (issuer !== '') validateIssuer(issuer);
      next.issuer = issuer;
    }
    if (fields.has('signing_algorithm')) {
      const alg = fields.get<string>('signing_algorithm');
      if (!(SIGNING_ALGORITHMS as readonly string[]).includes(alg)) {
        throw invalidField('signing_algorithm', `${showValue(alg)} is not one of ${SIGNING_ALGORITHMS.join(', ')}`);
      }
      next.signing_algorithm = alg as SigningAlgorithm;
    }
    if (fields.has('default_ttl')) next.default_ttl = toSeconds('default_ttl', fields.get<number>('default_ttl'));
    if (fields.has('max_ttl')) next.max_ttl = toSeconds('max_ttl', fields.get<number>('max_ttl'));
    if (fields.has('status_list_ttl')) next.status_list_ttl = toSeconds('status_list_ttl', fields.get<number>('status_list_ttl'));
    if (!(next.status_list_ttl >= 1 && next.status_list_ttl <= MAX_STATUS_LIST_TTL_S)) {
      throw invalidField('status_list_ttl', `${next.status_list_ttl}s must be between 1s and ${MAX_STATUS_LIST_TTL_S}s`);
    }
    if (next.max_ttl <= 0) throw invalidField('max_ttl', 'must be greater than zero');
    if (next.default_ttl <= 0) throw invalidField('default_ttl', 'must be greater than zero');
    if (next.default_ttl > next.max_ttl) {
      throw invalidField('default_ttl', `${next.default_ttl}s is longer than max_ttl ${next.max_ttl}s`);
    }
    if (next.signing_algorithm !== current.signing_algorithm) await checkRolesAccept(ctx, req, next.signing_algorithm);
    await ctx.config.save(req.storage, next);
    // The key ring follows: a changed algorithm rotates to a key of that kind,
    // a raised max_ttl extends how long retired keys must stay published.
    await ctx.keys.onConfigChange(req.storage, next);
    return readConfig(req);
  };

  return [
    {
      pattern: 'config',
      fields: {
        issuer: {
          type: 'string',
          description: 'The tokens\' "iss" and the OIDC issuer. Default: <api address>/v1/<mount>.',
        },
        signing_algorithm: {
          type: 'string',
          default: 'ES256',
          description: 'JWS algorithm of the signing key: ES256, EdDSA or RS256. Changing it rotates the key.',
        },
        default_ttl: { type: 'duration', default: DEFAULT_TTL_S, description: 'Token ttl for roles that set none.' },
        max_ttl: { type: 'duration', default: DEFAULT_MAX_TTL_S, description: 'The longest any lease of this mount may live.' },
        status_list_ttl: {
          type: 'duration',
          default: DEFAULT_STATUS_LIST_TTL_S,
          description: 'How long a status list token may be cached (its ttl; it expires that long after it is signed). Resource servers fail closed when they cannot refresh it for longer.',
        },
      },
      operations: { read: readConfig, update: writeConfig },
      existenceCheck: async () => true,
      synopsis: 'Configures the issuer, the signing algorithm and the ttl defaults.',
      description: `
Reads or writes the mount's configuration. Unset fields keep their value.
A signing_algorithm change takes effect at once: a new key of that kind signs
from then on, and the older key stays published until its tokens expire.`,
    },
  ];
}

