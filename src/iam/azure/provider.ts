// The Azure CloudProvider, with @azure/identity and @azure/storage-blob.
//
// issue / renew:
//   1. ClientAssertionCredential(tenant_id, client_id, () => tvm token): MSAL
//      sends the tvm token as a federated client assertion (client credentials,
//      scope https://storage.azure.com/.default) and gets a storage token for the app.
//   2. BlobServiceClient(accountUrl, credential).getUserDelegationKey(start, expiry):
//      start = now - START_SKEW_MS (clock skew), expiry = the credential's expiry:
//      the lease's expiry, never after its hard end, never more than 7 days away.
//   3. One SAS per scope of the plan (sas.ts), https only, signed with the key,
//      valid from the same start to the same expiry.
//   Renew does all three again with the renewed tvm token; the previous SAS
//   stays valid until its own expiry (a SAS cannot be revoked by itself).
//
// teardown:
//   revoke, with revoke_user_delegation_keys: ARM POST .../storageAccounts/<account>/
//     revokeUserDelegationKeys?api-version=2023-05-01 with the broker's own
//     credential (managementCredential). It revokes EVERY user delegation key of
//     the account, so every user delegation SAS of that account dies: this
//     grant's, every other grant's, and any other application's. The detail says so.
//   revoke, without: nothing to call; the SAS lives until its expiry (the detail names it).
//   rollback: nothing persists in Azure (a user delegation key is not an object
//     that can be deleted, and an unsigned or undelivered SAS is nothing), so it
//     succeeds as a no-op, any number of times.
//
// Credential: `account`, `account_url`, `sas` (one entry per scope: resource,
// container, path, permissions, token, url, patterns), `expires_at`; env:
//   AZURE_STORAGE_ACCOUNT       the account name
//   AZURE_STORAGE_SAS_URL_<n>   the n-th SAS URL (1-based, plan order): azcopy, curl, the SDKs
//   AZURE_STORAGE_SAS_TOKEN     the SAS token, only when there is exactly one
//                               (az storage reads it with AZURE_STORAGE_ACCOUNT)
//
// TLS: `agent` (a Node https.Agent) reaches the identity, storage and ARM
// pipelines; tests use it to trust their loopback fake's certificate. Storage's
// pipeline options do not declare it, but its pipeline hands every option to
// core-rest-pipeline, which honours it (the provider tests prove it).

import type { Agent } from 'node:https';
import { ClientAssertionCredential, DefaultAzureCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/core-auth';
// Transitive dependency of both Azure SDKs above: their HTTP pipeline, used as is for the one ARM call.
import {
  bearerTokenAuthenticationPolicy,
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineFromOptions,
  createPipelineRequest,
} from '@azure/core-rest-pipeline';
import { BlobServiceClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { CloudError, IamFieldError, type CloudErrorCode } from '../errors.ts';
import { mintedGrants } from '../mint.ts';
import type { CloudCredential, CloudGrant, CloudPlan, CloudProvider, GrantRequest, TeardownResult } from '../types.ts';
import { azureModule, MAX_USER_DELEGATION_KEY_S, type AzureTarget } from './module.ts';
import { sasTime, signSas, SAS_VERSION } from './sas.ts';
import { sasScopesFor, type SasScope } from './scopes.ts';

export const STORAGE_SCOPE = 'https://storage.azure.com/.default';
export const MANAGEMENT_SCOPE = 'https://management.azure.com/.default';
export const DEFAULT_BLOB_ENDPOINT = 'https://{account}.blob.core.windows.net';
export const DEFAULT_MANAGEMENT_ENDPOINT = 'https://management.azure.com';
/** Microsoft.Storage api-version for revokeUserDelegationKeys (the operation exists since 2019-04-01). */
export const REVOKE_API_VERSION = '2023-05-01';
/** The key's and the SAS's start lie this far before now, for clocks behind Azure's. */
export const START_SKEW_MS = 5 * 60_000;
/** The key's expiry stays this far inside Azure's 7-day limit, for clocks ahead of Azure's. */
export const KEY_LIMIT_MARGIN_MS = 60_000;
/** A credential shorter than this is not worth a key: the lease is at its end. */
export const MIN_CREDENTIAL_MS = 1000;

export interface AzureProviderOptions {
  /** Entra's authority host (default https://login.microsoftonline.com, or AZURE_AUTHORITY_HOST). */
  authorityHost?: string;
  /** The Blob endpoint, `{account}` replaced by the account name (default https://{account}.blob.core.windows.net). */
  blobEndpoint?: string;
  /** ARM (default https://management.azure.com). */
  managementEndpoint?: string;
  /** The broker's own credential for ARM, used only to revoke user delegation keys (default: DefaultAzureCredential). */
  managementCredential?: TokenCredential;
  /** The ARM token's scope (default https://management.azure.com/.default). */
  managementScope?: string;
  /** The https.Agent for every call (TLS trust, proxies). */
  agent?: Agent;
  /** Retries per call inside the SDKs (default 3); the broker retries ERR_CLOUD_UNAVAILABLE itself. */
  maxRetries?: number;
}

export interface AzurePlan extends CloudPlan {
  cloud: 'azure';
  grantId: string;
  account: string;
  tenantId: string;
  clientId: string;
  /** Nothing is created in Azure: a user delegation key is no object to delete. */
  objects: [];
  /** One SAS per entry: `sr`, container, path (blob or directory), `sdd`, `sp`. */
  sas: SasScope[];
  /** Where ARM revokes the account's user delegation keys on revoke; null: rely on SAS expiry. */
  revokeKeys: { subscriptionId: string; resourceGroup: string } | null;
}

export interface AzureSas {
  resource: 'container' | 'blob' | 'directory';
  container: string;
  path?: string;
  permissions: string;
  /** The query string, without "?". Secret. */
  token: string;
  /** The resource URL with the token. Secret. */
  url: string;
  patterns: string[];
}

const RESOURCE_NAMES = { c: 'container', b: 'blob', d: 'directory' } as const;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

interface Failure {
  status?: number;
  code?: string;
  text: string;
}

/** The status, service code and words of an SDK failure (identity, MSAL, storage, ARM). */
function failureOf(err: unknown): Failure {
  const e = err as {
    name?: string;
    statusCode?: unknown;
    status?: unknown;
    code?: unknown;
    errorCode?: unknown;
    message?: unknown;
    errorResponse?: { error?: string; errorDescription?: string };
    details?: { errorCode?: unknown };
  };
  const status = typeof e?.statusCode === 'number' ? e.statusCode : typeof e?.status === 'number' ? e.status : undefined;
  const code = [e?.details?.errorCode, e?.code, e?.errorCode].find((c): c is string => typeof c === 'string' && c !== '');
  let text = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.errorResponse?.errorDescription) text = `${e.errorResponse.error}: ${e.errorResponse.errorDescription}`;
  return { status, code, text };
}

/** OAuth errors Entra answers when it is the one failing (RFC 6749 5.2 and Entra's own). */
const ENTRA_UNAVAILABLE_ERRORS = ['temporarily_unavailable', 'server_error'];
/** Entra's codes for throttling and outages (90033 service unavailable, 7000112 busy, 50196 request loop: retry later). */
const ENTRA_UNAVAILABLE_CODES = ['AADSTS90033', 'AADSTS7000112', 'AADSTS50196'];
/** OAuth errors that mean "refused" (the request or the client is wrong). */
const OAUTH_REFUSALS = ['invalid_request', 'invalid_client', 'unauthorized_client', 'invalid_grant', 'invalid_scope', 'unsupported_grant_type', 'access_denied'];

/**
 * Entra's refusal as MSAL words it, `<oauth error>: Error(s): <n> - Timestamp: ... -
 * Description: AADSTS<n>: <text> Trace ID: ...`, as `<oauth error>: AADSTS<n>: <text>`.
 * MSAL keeps no HTTP status on the error it throws, so these words classify it.
 */
function entraRefusal(text: string): { error: string; words: string; aad: string | null } | null {
  const m = /^([a-z_]+): /.exec(text);
  const aad = /AADSTS\d+/.exec(text)?.[0] ?? null;
  if (!m || (!aad && ![...OAUTH_REFUSALS, ...ENTRA_UNAVAILABLE_ERRORS].includes(m[1]))) return null;
  const described = aad ? text.slice(text.indexOf(aad)) : text.slice(m[0].length);
  return { error: m[1], words: `${m[1]}: ${described.replace(/\s*Trace ID:[\s\S]*$/, '')}`, aad };
}

/**
 * Maps an SDK failure of `step` to CloudError: 4xx and Entra's refusals are
 * ERR_CLOUD_DENIED; 429, 5xx, Entra's outage codes and network failures are
 * ERR_CLOUD_UNAVAILABLE. The message keeps the service's first line, with every
 * secret cut out; the SDK error is not kept as the cause (it holds the request,
 * with its Authorization header).
 */
export function toCloudError(step: string, err: unknown, secrets: string[]): CloudError {
  if (err instanceof CloudError) return err;
  const f = failureOf(err);
  const entra = f.status === undefined ? entraRefusal(f.text) : null;
  let code: CloudErrorCode;
  let how: string;
  let words: string;
  if (entra) {
    const unavailable = ENTRA_UNAVAILABLE_ERRORS.includes(entra.error) || (entra.aad !== null && ENTRA_UNAVAILABLE_CODES.includes(entra.aad));
    code = unavailable ? 'ERR_CLOUD_UNAVAILABLE' : 'ERR_CLOUD_DENIED';
    how = 'Entra answered';
    words = entra.words;
  } else {
    if (f.status !== undefined) code = f.status === 429 || f.status >= 500 ? 'ERR_CLOUD_UNAVAILABLE' : 'ERR_CLOUD_DENIED';
    else code = 'ERR_CLOUD_UNAVAILABLE';
    how = f.status !== undefined ? `HTTP ${f.status}` : 'no answer';
    const first = f.text.split('\n').find((l) => l.trim() !== '') ?? '';
    words = [f.code && !first.includes(f.code) ? f.code : null, first].filter((x) => x).join(': ');
  }
  for (const s of secrets) if (s) words = words.split(s).join('[redacted]');
  if (words.length > 300) words = `${words.slice(0, 300)}...`;
  return new CloudError('azure', code, `${step} failed: ${how}${words ? `: ${words}` : ''}`);
}

export function createAzureProvider(options: AzureProviderOptions = {}): CloudProvider<AzureTarget> {
  const blobEndpoint = (options.blobEndpoint ?? DEFAULT_BLOB_ENDPOINT).replace(/\/+$/, '');
  const managementEndpoint = (options.managementEndpoint ?? DEFAULT_MANAGEMENT_ENDPOINT).replace(/\/+$/, '');
  const maxRetries = options.maxRetries ?? 3;
  let managementCredential: TokenCredential | null = options.managementCredential ?? null;

  const accountUrl = (account: string) => blobEndpoint.split('{account}').join(account);

  const plan = (req: GrantRequest<AzureTarget>): AzurePlan => {
    const sas = sasScopesFor(req.target, req.scopes);
    if (sas.length === 0) throw new IamFieldError('read', 'the grant has no azblob:// scope, so an Azure SAS would carry no permission');
    const t = req.target;
    return {
      cloud: 'azure',
      grantId: req.grantId,
      account: t.storage_account,
      tenantId: t.tenant_id,
      clientId: t.client_id,
      objects: [],
      sas,
      revokeKeys:
        t.revoke_user_delegation_keys && t.subscription_id && t.resource_group
          ? { subscriptionId: t.subscription_id, resourceGroup: t.resource_group }
          : null,
    };
  };

  /** The credential's expiry: the lease's, never its hard end, inside the key's 7 days; whole seconds. */
  const expiryFor = (req: GrantRequest<AzureTarget>): number | null => {
    const keyLimit = req.now + MAX_USER_DELEGATION_KEY_S * 1000 - KEY_LIMIT_MARGIN_MS;
    const at = Math.floor(Math.min(req.leaseExpiresAt, req.leaseMaxExpiresAt, keyLimit) / 1000) * 1000;
    return at - req.now >= MIN_CREDENTIAL_MS ? at : null;
  };

  const mint = async (req: GrantRequest<AzureTarget>, p: AzurePlan): Promise<CloudGrant | null> => {
    const expiresAt = expiryFor(req);
    if (expiresAt === null) return null;
    const startsAt = Math.floor((req.now - START_SKEW_MS) / 1000) * 1000;
    const credential = new ClientAssertionCredential(p.tenantId, p.clientId, async () => req.token, {
      ...(options.authorityHost ? { authorityHost: options.authorityHost } : {}),
      // The authority host is the broker's configuration: no discovery round trip to validate it.
      disableInstanceDiscovery: true,
      retryOptions: { maxRetries },
      ...(options.agent ? { agent: options.agent } : {}),
    });
    const pipelineOptions: StoragePipelineOptions & { agent?: Agent } = {
      retryOptions: { maxTries: maxRetries + 1 },
      ...(options.agent ? { agent: options.agent } : {}),
    };
    const service = new BlobServiceClient(accountUrl(p.account), credential, pipelineOptions);
    let key;
    try {
      key = await service.getUserDelegationKey(new Date(startsAt), new Date(expiresAt));
    } catch (err) {
      const auth = ['AuthenticationError', 'AuthenticationRequiredError', 'CredentialUnavailableError'].includes((err as Error)?.name);
      throw toCloudError(auth ? 'Entra token for the federated client assertion' : 'Get User Delegation Key', err, [req.token]);
    }
    const keyExpiresAt = key.signedExpiresOn.getTime();
    const sasExpiresAt = Math.min(expiresAt, keyExpiresAt);
    if (sasExpiresAt > req.leaseMaxExpiresAt || sasExpiresAt - req.now < MIN_CREDENTIAL_MS) {
      throw new CloudError('azure', 'ERR_CLOUD_LIMIT', `Azure issued a user delegation key valid until ${iso(keyExpiresAt)}, which cannot back a SAS for this lease`);
    }
    const sas: AzureSas[] = p.sas.map((scope) => {
      const token = signSas({ account: p.account, scope, startsOn: new Date(startsAt), expiresOn: new Date(sasExpiresAt), key });
      const container = service.getContainerClient(scope.container);
      const url = scope.path === undefined ? container.url : container.getBlobClient(scope.path).url;
      const entry: AzureSas = { resource: RESOURCE_NAMES[scope.resource], container: scope.container, permissions: scope.permissions, token, url: `${url}?${token}`, patterns: scope.patterns };
      if (scope.path !== undefined) entry.path = scope.path;
      return entry;
    });
    const env: Record<string, string> = { AZURE_STORAGE_ACCOUNT: p.account };
    sas.forEach((s, i) => {
      env[`AZURE_STORAGE_SAS_URL_${i + 1}`] = s.url;
    });
    if (sas.length === 1) env.AZURE_STORAGE_SAS_TOKEN = sas[0].token;
    const credentialOut: CloudCredential = {
      cloud: 'azure',
      expires_at: iso(sasExpiresAt),
      account: p.account,
      account_url: accountUrl(p.account),
      sas,
      env,
    };
    return {
      credential: credentialOut,
      expiresAt: sasExpiresAt,
      state: {
        account: p.account,
        expires_at: iso(sasExpiresAt),
        sas_version: SAS_VERSION,
        key_oid: key.signedObjectId,
        key_start: sasTime(key.signedStartsOn),
        key_expiry: sasTime(key.signedExpiresOn),
      },
    };
  };

  const revokeKeys = async (p: AzurePlan, revoke: NonNullable<AzurePlan['revokeKeys']>): Promise<'revoked' | 'gone'> => {
    managementCredential ??= new DefaultAzureCredential();
    const url =
      `${managementEndpoint}/subscriptions/${encodeURIComponent(revoke.subscriptionId)}` +
      `/resourceGroups/${encodeURIComponent(revoke.resourceGroup)}/providers/Microsoft.Storage/storageAccounts/${encodeURIComponent(p.account)}` +
      `/revokeUserDelegationKeys?api-version=${REVOKE_API_VERSION}`;
    const pipeline = createPipelineFromOptions({ retryOptions: { maxRetries }, ...(options.agent ? { agent: options.agent } : {}) });
    pipeline.addPolicy(bearerTokenAuthenticationPolicy({ credential: managementCredential, scopes: options.managementScope ?? MANAGEMENT_SCOPE }));
    const request = createPipelineRequest({ url, method: 'POST', headers: createHttpHeaders({ accept: 'application/json' }) });
    let response;
    try {
      response = await pipeline.sendRequest(createDefaultHttpClient(), request);
    } catch (err) {
      throw toCloudError('ARM revokeUserDelegationKeys', err, []);
    }
    if (response.status === 200 || response.status === 204) return 'revoked';
    if (response.status === 404) return 'gone';
    let error: { code?: unknown; message?: unknown } = {};
    try {
      error = (JSON.parse(response.bodyAsText ?? '') as { error?: typeof error }).error ?? {};
    } catch {
      error = {};
    }
    throw toCloudError(
      'ARM revokeUserDelegationKeys',
      { statusCode: response.status, code: typeof error.code === 'string' ? error.code : undefined, message: typeof error.message === 'string' ? error.message : '' },
      [],
    );
  };

  return {
    cloud: 'azure',
    module: azureModule,
    plan,
    // A renewal: a new key and new SAS from the renewed tvm token.
    ...mintedGrants('azure', 'an Azure SAS', mint),
    async teardown(plan, grant, reason, now): Promise<TeardownResult> {
      const p = plan as AzurePlan;
      if (reason === 'rollback' || grant === null) {
        return {
          detail: `nothing to undo in Azure for storage account ${p.account}: no object is created (a user delegation key cannot be deleted) and no SAS left the broker`,
          cleanupAt: null,
        };
      }
      const expiry = iso(grant.expiresAt);
      if (!p.revokeKeys) {
        return { detail: `Azure cannot revoke one user delegation SAS; relies on SAS expiry at ${expiry}`, cleanupAt: null };
      }
      if (grant.expiresAt <= now) {
        return { detail: `the SAS already expired at ${expiry}; the user delegation keys of ${p.account} were left alone`, cleanupAt: null };
      }
      const where = `storage account ${p.account} (subscription ${p.revokeKeys.subscriptionId}, resource group ${p.revokeKeys.resourceGroup})`;
      const outcome = await revokeKeys(p, p.revokeKeys);
      if (outcome === 'gone') return { detail: `${where} no longer exists in ARM: its SAS died with it`, cleanupAt: null };
      return {
        detail: `revoked every user delegation key of ${where}: every user delegation SAS of that account stopped working, this grant's (else valid until ${expiry}) and every other grant's and application's`,
        cleanupAt: null,
      };
    },
  };
}
