// The typed configuration of the example tvm stack: where Vault is, which kind
// of Vault it is (the tvm dev server or a real Vault running the plugin), the
// roles, and the workloads with the roles they may vend and how they log in.
// The data is here; the stack (stacks/tvm-stack.ts) turns it into constructs.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { SigningAlgorithm } from '../src/engine/config.ts';
import type { Duration } from './constructs/index.ts';

export type Target = 'dev' | 'vault';

export interface RoleSpec {
  name: string;
  read?: string[];
  write?: string[];
  ttl?: Duration;
  maxTtl?: Duration;
  audiences?: string[];
  boundCidrs?: string[];
  maxActiveLeases?: number;
  extraClaims?: Record<string, string>;
  iam?: Record<string, unknown>;
}

export interface AppRoleLoginSpec {
  method: 'approle';
  tokenTtl?: Duration;
  tokenMaxTtl?: Duration;
  tokenBoundCidrs?: string[];
  secretIdTtl?: Duration;
  secretIdNumUses?: number;
  secretIdBoundCidrs?: string[];
}

export interface JwtLoginSpec {
  method: 'jwt';
  boundAudiences: string[];
  boundSubject?: string;
  boundClaims?: Record<string, string | string[]>;
  userClaim?: string;
  tokenTtl?: Duration;
  tokenMaxTtl?: Duration;
  tokenBoundCidrs?: string[];
}

export interface WorkloadSpec {
  name: string;
  /** Names of roles in StackConfig.roles. */
  roles: string[];
  login: AppRoleLoginSpec | JwtLoginSpec;
}

export interface StackConfig {
  /** The stack's name: cdktf.out/stacks/<stackName>/cdk.tf.json. */
  stackName: string;
  vault: {
    /** VAULT_ADDR. The token is not part of the synthesized Terraform: the provider reads VAULT_TOKEN when it runs. */
    address: string;
  };
  target: Target;
  /** Required for the `vault` target: the plugin to register. */
  plugin?: { sha256: string; command?: string; apiAddr?: string };
  mount: {
    path: string;
    defaultTtl?: Duration;
    maxTtl?: Duration;
    issuer?: string;
    signingAlgorithm?: SigningAlgorithm;
  };
  /** The AppRole auth method, for workloads that log in with it. */
  approle?: { path: string };
  /** The JWT auth method and its issuer, for workloads that log in with it. */
  jwt?: { path: string; boundIssuer: string; jwksUrl?: string; jwtValidationPubkeys?: string[]; supportedAlgs?: string[] };
  roles: RoleSpec[];
  workloads: WorkloadSpec[];
}

type Env = Record<string, string | undefined>;

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_PLUGIN_FILE = `${REPO_ROOT}dist/plugin/tvm-plugin`;
/** A Kubernetes cluster's service-account token issuer (the example's JWT workload runs there). */
const DEFAULT_JWT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function pluginFor(env: Env, vaultAddr: string): NonNullable<StackConfig['plugin']> {
  let sha256 = value(env, 'TVM_PLUGIN_SHA256');
  if (sha256 === undefined) {
    const file = value(env, 'TVM_PLUGIN_FILE') ?? DEFAULT_PLUGIN_FILE;
    if (!existsSync(file)) {
      throw new Error(
        `TVM_TARGET=vault needs the plugin's sha256: run \`npm run build:plugin\` (the stack then hashes ${file}), or set TVM_PLUGIN_SHA256 (or TVM_PLUGIN_FILE)`,
      );
    }
    sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
  }
  return {
    sha256,
    command: value(env, 'TVM_PLUGIN_COMMAND') ?? 'tvm-plugin',
    apiAddr: value(env, 'TVM_API_ADDR') ?? vaultAddr,
  };
}

function jwtFor(env: Env): NonNullable<StackConfig['jwt']> {
  const boundIssuer = value(env, 'TVM_JWT_ISSUER') ?? DEFAULT_JWT_ISSUER;
  const keyFile = value(env, 'TVM_JWT_PUBKEY_FILE');
  const jwt: NonNullable<StackConfig['jwt']> = { path: value(env, 'TVM_JWT_PATH') ?? 'jwt', boundIssuer };
  if (keyFile !== undefined) jwt.jwtValidationPubkeys = [readFileSync(keyFile, 'utf8')];
  else jwt.jwksUrl = value(env, 'TVM_JWKS_URL') ?? `${boundIssuer}/openid/v1/jwks`;
  return jwt;
}

/**
 * The example stack: `orders-service` (AppRole) vends the readwrite role
 * `orders`, `log-shipper` (a Kubernetes service account, JWT) vends the
 * read-only role `logs`.
 *
 * Environment: VAULT_ADDR (default http://127.0.0.1:8200); TVM_TARGET `dev`
 * (default) or `vault`; TVM_MOUNT_PATH (default `tvm` for a real Vault,
 * `tvm-platform` on the dev server, whose own tvm/ mount exists from the
 * start); for `vault`: TVM_PLUGIN_SHA256 or TVM_PLUGIN_FILE
 * (default dist/plugin/tvm-plugin), TVM_PLUGIN_COMMAND, TVM_API_ADDR; for the
 * JWT issuer: TVM_JWT_ISSUER, and TVM_JWT_PUBKEY_FILE (a PEM public key) or
 * TVM_JWKS_URL (default <issuer>/openid/v1/jwks).
 */
export function exampleConfig(env: Env = process.env): StackConfig {
  const address = value(env, 'VAULT_ADDR') ?? 'http://127.0.0.1:8200';
  const targetName = value(env, 'TVM_TARGET') ?? 'dev';
  if (targetName !== 'dev' && targetName !== 'vault') {
    throw new Error(`invalid TVM_TARGET: ${JSON.stringify(targetName)}: expected dev (the tvm dev server) or vault (a real Vault with the plugin)`);
  }
  const target: Target = targetName;
  const config: StackConfig = {
    stackName: 'tvm',
    vault: { address },
    target,
    mount: {
      path: value(env, 'TVM_MOUNT_PATH') ?? (target === 'dev' ? 'tvm-platform' : 'tvm'),
      defaultTtl: '15m',
      maxTtl: '1h',
    },
    approle: { path: value(env, 'TVM_APPROLE_PATH') ?? 'approle' },
    jwt: jwtFor(env),
    roles: [
      { name: 'orders', read: ['db://orders/*'], write: ['db://orders/outbox'], ttl: '5m' },
      { name: 'logs', read: ['s3://logs/app/**'], ttl: '10m' },
    ],
    workloads: [
      {
        name: 'orders-service',
        roles: ['orders'],
        // A deploy pipeline delivers the role id and a fresh, single-use secret id.
        login: { method: 'approle', tokenTtl: '1h', tokenMaxTtl: '4h', secretIdTtl: '10m', secretIdNumUses: 1 },
      },
      {
        name: 'log-shipper',
        roles: ['logs'],
        login: {
          method: 'jwt',
          boundAudiences: ['vault'],
          boundSubject: 'system:serviceaccount:logging:log-shipper',
          userClaim: 'sub',
          tokenTtl: '1h',
        },
      },
    ],
  };
  if (target === 'vault') config.plugin = pluginFor(env, address);
  return config;
}
