// Builds the CloudProviders the broker's config enables, one per
// `cloud "<name>" { ... }` block (HCL, or JSON `"cloud": { "<name>": { ... } }`).
//
// parseCloudBlocks is pure (config.ts calls it when the file is read, so a typo
// fails at load with the block and key named); createProviders imports a
// cloud's SDK only when that cloud is configured.
//
//   cloud "aws" {
//     region                 = "us-east-1"           # when the target names none
//     sts_endpoint           = "https://..."         # endpoint overrides (default: AWS's)
//     iam_endpoint           = "https://..."
//     access_key_id          = "AKIA..."             # the broker's own keys (default: the SDK's chain)
//     secret_access_key_file = "/etc/tvm/aws-secret" # or secret_access_key
//     session_token_file     = "..."                 # or session_token (temporary keys)
//     max_attempts           = 3
//     deny_skew              = "2m"                  # a revoked session's deny stays this long past its expiry
//   }
//   cloud "gcp" {
//     sts_endpoint             = "https://sts.googleapis.com"
//     iam_credentials_endpoint = "https://iamcredentials.googleapis.com"
//     universe_domain          = "googleapis.com"
//     max_token_lifetime       = "1h"               # generateAccessToken's ceiling (up to 12h by org policy)
//     credentials_file         = "/etc/tvm/gcp.json" # the broker's own (default: Application Default Credentials)
//   }
//   cloud "azure" {
//     authority_host      = "https://login.microsoftonline.com"
//     blob_endpoint       = "https://{account}.blob.core.windows.net"
//     management_endpoint = "https://management.azure.com"
//     management_scope    = "https://management.azure.com/.default"
//     max_retries         = 3
//     ca_file             = "/etc/tvm/extra-ca.pem" # trusted besides the system roots
//   }
//   cloud "kubernetes" {
//     kubeconfig = "/etc/tvm/kubeconfig"           # every context's cluster and user
//     cluster {                                    # and/or explicit clusters (repeatable)
//       server                  = "https://k8s.internal:6443"
//       token_file              = "/etc/tvm/k8s-token"   # or token
//       ca_file                 = "/etc/tvm/k8s-ca.pem"
//       client_certificate_file = "..."                 # with client_key_file
//       client_key_file         = "..."
//       skip_tls_verify         = false                 # tests only
//     }
//   }
//
// Relative paths resolve against the config file's folder.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AuthClient } from 'google-auth-library';
import { CLOUDS, type CloudName, type CloudProvider } from './types.ts';

type Obj = Record<string, unknown>;

export interface AwsBlock {
  region?: string;
  stsEndpoint?: string;
  iamEndpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: Secret;
  sessionToken?: Secret;
  maxAttempts?: number;
  denySkewMs?: number;
}

export interface GcpBlock {
  stsEndpoint?: string;
  iamCredentialsEndpoint?: string;
  universeDomain?: string;
  maxTokenLifetimeS?: number;
  credentialsFile?: string;
}

export interface AzureBlock {
  authorityHost?: string;
  blobEndpoint?: string;
  managementEndpoint?: string;
  managementScope?: string;
  maxRetries?: number;
  caFile?: string;
}

export interface KubernetesClusterBlock {
  server: string;
  token?: Secret;
  caFile?: string;
  clientCertificateFile?: string;
  clientKeyFile?: string;
  skipTlsVerify?: boolean;
}

export interface KubernetesBlock {
  kubeconfig?: string;
  clusters: KubernetesClusterBlock[];
}

/** A secret given inline or as a file (read when the providers are built, never logged). */
export type Secret = { value: string } | { file: string };

/** The validated cloud blocks of a broker config. */
export interface CloudBlocks {
  aws?: AwsBlock;
  gcp?: GcpBlock;
  azure?: AzureBlock;
  kubernetes?: KubernetesBlock;
}

export class CloudConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CloudConfigError';
  }
}

function fail(message: string): never {
  throw new CloudConfigError(message);
}

function only(o: Obj, where: string, keys: string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${where}.${k} is not a setting; expected one of ${keys.join(', ')}`);
}

function str(o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') fail(`${where}.${key} must be a non-empty string`);
  return v;
}

function url(o: Obj, key: string, where: string): string | undefined {
  const v = str(o, key, where);
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v.replace('{account}', 'account'));
  } catch {
    fail(`${where}.${key} must be a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') fail(`${where}.${key} must be an http(s) URL`);
  return v;
}

function int(o: Obj, key: string, where: string, min: number): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`${where}.${key} must be an integer of at least ${min}`);
  return v;
}

function bool(o: Obj, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(`${where}.${key} must be true or false`);
  return v;
}

/** `10s`, `5m`, `1h`, or seconds, in milliseconds. */
function duration(o: Obj, key: string, where: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.round(v * 1000);
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)(ms|s|m|h)?\s*$/.exec(v) : null;
  if (!m) fail(`${where}.${key} must be a duration such as 90s, 2m or 1h`);
  const unit = m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3_600_000 : 1000;
  return Math.round(Number(m[1]) * unit);
}

function secret(o: Obj, key: string, where: string): Secret | undefined {
  const value = str(o, key, where);
  const file = str(o, `${key}_file`, where);
  if (value !== undefined && file !== undefined) fail(`${where}: give ${key} or ${key}_file, not both`);
  return value !== undefined ? { value } : file !== undefined ? { file } : undefined;
}

/** HCL nested blocks arrive as lists; JSON may give one object. */
function blocks(v: unknown, where: string): Obj[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((b, i) => {
    if (b === null || typeof b !== 'object' || Array.isArray(b)) fail(`${where}[${i}] must be a block`);
    return b as Obj;
  });
}

function parseAws(o: Obj, w: string): AwsBlock {
  only(o, w, ['region', 'sts_endpoint', 'iam_endpoint', 'access_key_id', 'secret_access_key', 'secret_access_key_file', 'session_token', 'session_token_file', 'max_attempts', 'deny_skew']);
  const b: AwsBlock = {
    region: str(o, 'region', w),
    stsEndpoint: url(o, 'sts_endpoint', w),
    iamEndpoint: url(o, 'iam_endpoint', w),
    accessKeyId: str(o, 'access_key_id', w),
    secretAccessKey: secret(o, 'secret_access_key', w),
    sessionToken: secret(o, 'session_token', w),
    maxAttempts: int(o, 'max_attempts', w, 1),
    denySkewMs: duration(o, 'deny_skew', w),
  };
  if ((b.accessKeyId === undefined) !== (b.secretAccessKey === undefined)) fail(`${w}: access_key_id and secret_access_key(_file) go together`);
  return b;
}

function parseGcp(o: Obj, w: string): GcpBlock {
  only(o, w, ['sts_endpoint', 'iam_credentials_endpoint', 'universe_domain', 'max_token_lifetime', 'credentials_file']);
  const lifetimeMs = duration(o, 'max_token_lifetime', w);
  if (lifetimeMs !== undefined && (lifetimeMs < 1000 || lifetimeMs > 43_200_000)) fail(`${w}.max_token_lifetime must be between 1s and 12h`);
  return {
    stsEndpoint: url(o, 'sts_endpoint', w),
    iamCredentialsEndpoint: url(o, 'iam_credentials_endpoint', w),
    universeDomain: str(o, 'universe_domain', w),
    maxTokenLifetimeS: lifetimeMs === undefined ? undefined : Math.floor(lifetimeMs / 1000),
    credentialsFile: str(o, 'credentials_file', w),
  };
}

function parseAzure(o: Obj, w: string): AzureBlock {
  only(o, w, ['authority_host', 'blob_endpoint', 'management_endpoint', 'management_scope', 'max_retries', 'ca_file']);
  return {
    authorityHost: url(o, 'authority_host', w),
    blobEndpoint: url(o, 'blob_endpoint', w),
    managementEndpoint: url(o, 'management_endpoint', w),
    managementScope: str(o, 'management_scope', w),
    maxRetries: int(o, 'max_retries', w, 0),
    caFile: str(o, 'ca_file', w),
  };
}

function parseKubernetes(o: Obj, w: string): KubernetesBlock {
  only(o, w, ['kubeconfig', 'cluster']);
  const clusters = blocks(o.cluster, `${w}.cluster`).map((c, i) => {
    const cw = `${w}.cluster[${i}]`;
    only(c, cw, ['server', 'token', 'token_file', 'ca_file', 'client_certificate_file', 'client_key_file', 'skip_tls_verify']);
    const cluster: KubernetesClusterBlock = {
      server: url(c, 'server', cw) ?? fail(`${cw}.server is required`),
      token: secret(c, 'token', cw),
      caFile: str(c, 'ca_file', cw),
      clientCertificateFile: str(c, 'client_certificate_file', cw),
      clientKeyFile: str(c, 'client_key_file', cw),
      skipTlsVerify: bool(c, 'skip_tls_verify', cw),
    };
    if ((cluster.clientCertificateFile === undefined) !== (cluster.clientKeyFile === undefined)) fail(`${cw}: client_certificate_file and client_key_file go together`);
    return cluster;
  });
  const kubeconfig = str(o, 'kubeconfig', w);
  if (!kubeconfig && clusters.length === 0) fail(`${w} needs a kubeconfig or at least one cluster { server = ... } block`);
  return { kubeconfig, clusters };
}

/** Validates the `cloud` blocks (pure: no file is read, no SDK loaded). Throws CloudConfigError naming the block and key. */
export function parseCloudBlocks(raw: Record<string, Obj>): CloudBlocks {
  const out: CloudBlocks = {};
  for (const [name, body] of Object.entries(raw)) {
    const w = `cloud "${name}"`;
    if (!(CLOUDS as readonly string[]).includes(name)) fail(`${w} is not one of ${CLOUDS.map((c) => `"${c}"`).join(', ')}`);
    if (name === 'aws') out.aws = parseAws(body, w);
    else if (name === 'gcp') out.gcp = parseGcp(body, w);
    else if (name === 'azure') out.azure = parseAzure(body, w);
    else out.kubernetes = parseKubernetes(body, w);
  }
  return out;
}

export interface ProviderDeps {
  /** Relative paths resolve against this folder (the config file's). */
  baseDir?: string;
  /** Reads a file (tests may stand in). */
  readFile?: (path: string) => string;
}

/** Builds a provider for each configured cloud, importing only those clouds' SDKs. */
export async function createProviders(b: CloudBlocks, deps: ProviderDeps = {}): Promise<Partial<Record<CloudName, CloudProvider>>> {
  const path = (p: string) => resolve(deps.baseDir ?? process.cwd(), p);
  const read = (p: string, what: string): string => {
    try {
      return (deps.readFile ?? ((f: string) => readFileSync(f, 'utf8')))(path(p));
    } catch (err) {
      fail(`cannot read the ${what} file ${path(p)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const reveal = (s: Secret | undefined, what: string): string | undefined =>
    s === undefined ? undefined : 'value' in s ? s.value : read(s.file, what).trim();
  const out: Partial<Record<CloudName, CloudProvider>> = {};

  if (b.aws) {
    const { createAwsProvider } = await import('./aws/provider.ts');
    const a = b.aws;
    const secretAccessKey = reveal(a.secretAccessKey, 'AWS secret access key');
    out.aws = createAwsProvider({
      region: a.region,
      stsEndpoint: a.stsEndpoint,
      iamEndpoint: a.iamEndpoint,
      credentials:
        a.accessKeyId && secretAccessKey
          ? { accessKeyId: a.accessKeyId, secretAccessKey, sessionToken: reveal(a.sessionToken, 'AWS session token') }
          : undefined,
      maxAttempts: a.maxAttempts,
      denySkewMs: a.denySkewMs,
    }) as unknown as CloudProvider;
  }
  if (b.gcp) {
    const { createGcpProvider } = await import('./gcp/provider.ts');
    // The block's settings are the provider's options of the same names; only the file is read here.
    const { credentialsFile, ...settings } = b.gcp;
    let sourceCredentials: AuthClient | undefined;
    if (credentialsFile) {
      const { GoogleAuth } = await import('google-auth-library');
      const keyFile = path(credentialsFile);
      read(credentialsFile, 'GCP credentials');
      sourceCredentials = (await new GoogleAuth({ keyFile, scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getClient()) as AuthClient;
    }
    out.gcp = createGcpProvider({ ...settings, sourceCredentials }) as unknown as CloudProvider;
  }
  if (b.azure) {
    const { createAzureProvider } = await import('./azure/provider.ts');
    // As for GCP: the settings pass through by name; the CA file becomes an agent.
    const { caFile, ...settings } = b.azure;
    let agent;
    if (caFile) {
      const { Agent } = await import('node:https');
      const { rootCertificates } = await import('node:tls');
      agent = new Agent({ ca: [...rootCertificates, read(caFile, 'Azure CA')], keepAlive: true });
    }
    out.azure = createAzureProvider({ ...settings, agent }) as unknown as CloudProvider;
  }
  if (b.kubernetes) {
    const { createKubernetesProvider } = await import('./kubernetes/provider.ts');
    const k = b.kubernetes;
    out.kubernetes = createKubernetesProvider({
      kubeconfigPath: k.kubeconfig && path(k.kubeconfig),
      clusters: k.clusters.map((c) => ({
        server: c.server,
        token: reveal(c.token, 'Kubernetes token'),
        caCert: c.caFile && read(c.caFile, 'Kubernetes CA'),
        clientCertificate: c.clientCertificateFile && read(c.clientCertificateFile, 'Kubernetes client certificate'),
        clientKey: c.clientKeyFile && read(c.clientKeyFile, 'Kubernetes client key'),
        skipTlsVerify: c.skipTlsVerify,
      })),
    }) as unknown as CloudProvider;
  }
  return out;
}
