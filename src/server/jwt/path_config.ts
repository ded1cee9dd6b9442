// config: where the keys that verify logins come from (exactly one of PEM
// public keys, a JWKS URL, or an OIDC discovery URL), the issuer tokens must
// name, the accepted signing algorithms and the default role. The key source
// is checked when the config is written, so a typo fails the write and not
// every login. The OIDC browser flow's fields are accepted for compatibility
// where harmless, refused where they would ask for that flow.

import { EngineError, invalidField, showValue } from '../../sdk/errors.ts';
import type { FieldData, Fields } from '../../sdk/fields.ts';
import type { LogicalRequest, LogicalResponse } from '../../sdk/logical.ts';
import type { Route } from '../../sdk/route.ts';
import { putJson } from '../auth/storage.ts';
import { buildKeys, CONFIG_KEY, readConfig, type JwtConfig } from './config.ts';
import type { JwtContext } from './context.ts';
import { SUPPORTED_ALGS } from './verify.ts';

// ---------------------------------------------------------------------------
// Constants

const CONFIG_FIELDS: Fields = {
  oidc_discovery_url: { type: 'string', description: 'OIDC discovery URL; its JWKS verifies tokens and its issuer is required.' },
  oidc_discovery_ca_pem: { type: 'string', description: 'Not supported: set NODE_EXTRA_CA_CERTS for private CAs.' },
  oidc_client_id: { type: 'string', description: 'Not supported: this server serves the JWT flow only.' },
  oidc_client_secret: { type: 'string', secret: true, description: 'Not supported: this server serves the JWT flow only.' },
  oidc_response_mode: { type: 'string', description: 'Accepted for compatibility (OIDC flow only).' },
  oidc_response_types: { type: 'string_list', description: 'Accepted for compatibility (OIDC flow only).' },
  jwks_url: { type: 'string', description: 'A JSON Web Key Set URL whose keys verify tokens.' },
  jwks_ca_pem: { type: 'string', description: 'Not supported: set NODE_EXTRA_CA_CERTS for private CAs.' },
  // A list of objects: not supported, refused when not empty (the handler checks it).
  jwks_pairs: { type: 'raw', description: 'Not supported: use one jwks_url.' },
  default_role: { type: 'string', description: 'The role used when a login names none.' },
  jwt_validation_pubkeys: { type: 'string_list', description: 'PEM-encoded public keys that verify tokens.' },
  jwt_supported_algs: { type: 'string_list', description: `Accepted signing algorithms (default: ${SUPPORTED_ALGS.join(', ')}).` },
  bound_issuer: { type: 'string', description: 'The required "iss" claim.' },
  provider_config: { type: 'object', description: 'Accepted for compatibility (OIDC providers only).' },
  namespace_in_state: { type: 'bool', description: 'Accepted for compatibility (OIDC flow only).' },
  unsupported_critical_cert_extensions: { type: 'string_list', description: 'Accepted for compatibility.' },
};

// ---------------------------------------------------------------------------
// Routes

export function configRoutes(ctx: JwtContext): Route[] {
  return [
    {
      pattern: 'config',
      fields: CONFIG_FIELDS,
      operations: { read: (req) => readConfigEntry(req), update: (req, f) => writeConfig(ctx, req, f) },
      synopsis: CONFIG_HELP.synopsis,
      description: CONFIG_HELP.description,
    },
  ];
}

// ---------------------------------------------------------------------------
// Handlers

async function readConfigEntry(req: LogicalRequest): Promise<LogicalResponse | null> {
  const config = await readConfig(req.storage);
  return config ? { data: { ...config } } : null;
}

/** Replaces the config (fields not given take their defaults), once its key source checks out. */
function writeConfig(ctx: JwtContext, req: LogicalRequest, f: FieldData): Promise<LogicalResponse | null> {
  return ctx.locks.run('config', async () => {
    const previous = await readConfig(req.storage);
    const pairs = f.get<unknown>('jwks_pairs');
    const config: JwtConfig = {
      oidc_discovery_url: f.get<string>('oidc_discovery_url').trim(),
      oidc_discovery_ca_pem: f.get<string>('oidc_discovery_ca_pem'),
      oidc_client_id: f.get<string>('oidc_client_id'),
      oidc_response_mode: f.get<string>('oidc_response_mode'),
      oidc_response_types: f.get<string[]>('oidc_response_types'),
      jwks_url: f.get<string>('jwks_url').trim(),
      jwks_ca_pem: f.get<string>('jwks_ca_pem'),
      jwks_pairs: Array.isArray(pairs) ? pairs : [],
      default_role: f.get<string>('default_role').toLowerCase(),
      // Each key is stored trimmed, as OpenBao's comma-string-slice field does (a PEM's final newline is not kept).
      jwt_validation_pubkeys: f
        .get<string[]>('jwt_validation_pubkeys')
        .map((k) => k.trim())
        .filter((k) => k !== ''),
      jwt_supported_algs: f.get<string[]>('jwt_supported_algs').filter((a) => a.trim() !== ''),
      bound_issuer: f.get<string>('bound_issuer'),
      provider_config: f.get<Record<string, unknown>>('provider_config'),
      namespace_in_state: f.has('namespace_in_state') ? f.get<boolean>('namespace_in_state') : (previous?.namespace_in_state ?? true),
      unsupported_critical_cert_extensions: f.get<string[]>('unsupported_critical_cert_extensions'),
    };
    if (pairs !== undefined && pairs !== null && pairs !== '' && !Array.isArray(pairs)) throw invalidField('jwks_pairs', 'expected a list');
    if (config.oidc_client_id !== '' || f.get<string>('oidc_client_secret') !== '') {
      throw new EngineError(
        'ERR_INVALID_REQUEST',
        'oidc_client_id and oidc_client_secret (the OIDC browser flow) are not supported by this server; configure jwt_validation_pubkeys, jwks_url or oidc_discovery_url for JWT logins',
      );
    }
    const methods = [
      config.oidc_discovery_url !== '',
      config.jwt_validation_pubkeys.length > 0,
      config.jwks_url !== '',
      config.jwks_pairs.length > 0,
    ].filter(Boolean).length;
    if (methods !== 1) {
      throw new EngineError(
        'ERR_INVALID_REQUEST',
        "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs' or 'oidc_discovery_url' must be set",
      );
    }
    if (config.jwks_pairs.length > 0) throw invalidField('jwks_pairs', 'not supported by this server; use one jwks_url');
    if (config.jwks_ca_pem.trim() !== '' || config.oidc_discovery_ca_pem.trim() !== '') {
      throw new EngineError(
        'ERR_INVALID_REQUEST',
        'jwks_ca_pem and oidc_discovery_ca_pem are not supported by this server; trust a private CA with the NODE_EXTRA_CA_CERTS environment variable',
      );
    }
    for (const alg of config.jwt_supported_algs) {
      if (!(SUPPORTED_ALGS as readonly string[]).includes(alg)) {
        throw invalidField('jwt_supported_algs', `unsupported signing algorithm ${showValue(alg)} (supported: ${SUPPORTED_ALGS.join(', ')})`);
      }
    }
    // Check the key source now, as Vault does, so a typo fails the write and not every login.
    const keys = await buildKeys(config);
    await putJson(req.storage, CONFIG_KEY, config);
    ctx.keys.set(keys);
    return null;
  });
}

// ---------------------------------------------------------------------------
// Help

const CONFIG_HELP = {
  synopsis: 'Configures where the keys that verify login JWTs come from, and the issuer they must name.',
  description: `
Exactly one key source: jwt_validation_pubkeys (PEM public keys), jwks_url (a
JSON Web Key Set), or oidc_discovery_url (an OIDC provider, whose issuer is
then required). bound_issuer requires an "iss"; jwt_supported_algs limits the
signing algorithms; default_role is used by logins that name no role. The
source is checked when written. The OIDC browser flow is not served: its
client id and secret are refused.`,
};
