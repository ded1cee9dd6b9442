// A loopback fake of the three Azure endpoints the Azure provider calls, at the
// HTTP level, so the real @azure/identity (MSAL) and @azure/storage-blob talk
// to it unchanged.
//
//   login       GET  /<tenant>/v2.0/.well-known/openid-configuration       MSAL's authority metadata
//               POST /<tenant>/oauth2/v2.0/token                           client credentials with a
//                                                                          federated client assertion
//   blob        POST /<account>?restype=service&comp=userdelegationkey     Get User Delegation Key (XML)
//               GET|HEAD|PUT|DELETE /<account>/<container>/<blob>?<SAS>    the data plane, authorized by a
//               GET /<account>/<container>?restype=container&comp=list&<SAS>  user delegation SAS (azure-sas.ts)
//   management  POST /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Storage/
//                    storageAccounts/<account>/revokeUserDelegationKeys?api-version=...   (ARM)
//
// All three are HTTPS: @azure/identity refuses an http authority host ("The
// authorityHost address must use the 'https' protocol"), and the SDKs' bearer
// token policy refuses to send a token to a non-https URL. So each listens on
// 127.0.0.1 with one self-signed certificate made per fake (src/plugin/tls.ts;
// SAN DNS:localhost), and `agent` is a Node https.Agent that
// trusts exactly that certificate for the name localhost: hand it to the
// provider's `agent` option. The blob endpoint is IP-style, as Azurite's:
// `https://127.0.0.1:<port>/<account>` (the provider's blobEndpoint
// `<urls.blob>/{account}`).
//
// Use:
//   const fake = await startAzureFake({ managementTokens: ['arm-token'] });
//   fake.addApp({ tenantId, clientId, objectId, federated: [{ issuer, subject, audiences: ['api://AzureADTokenExchange'] }] });
//   fake.addAccount({ name: 'acct', subscriptionId, resourceGroup: 'rg' });
//   ... createAzureProvider({ authorityHost: fake.urls.login, blobEndpoint: fake.blobEndpoint,
//                              managementEndpoint: fake.urls.management, agent: fake.agent, ... })
//   fake.requests          every request, in order, with what was parsed and the status answered
//   fake.state.tokens      access tokens issued (resource, app, the assertion's iss/sub/alg)
//   fake.state.keys        user delegation keys issued (account, start, expiry, value, revokedAt)
//   fake.state.revocations revokeUserDelegationKeys calls that succeeded
//   fake.state.blobs       blob contents by `<account>/<container>/<path>`; fake.putBlob(...) seeds one
//   fake.failNext('token' | 'userDelegationKey' | 'revoke' | 'blobData', status | 'drop', body?, times?)
//   fake.close()
//
// As Entra does for a federated identity credential, the token endpoint checks
// the client assertion: client_assertion_type jwt-bearer; alg among the RSA
// algorithms Entra accepts (RS256/384/512, PS256/384/512: ES256 and EdDSA are
// refused with AADSTS5002738); iss, sub and aud against the app's federated
// credentials (exact, case-sensitive: AADSTS700211/700213/700212); then the
// signature against the issuer's discovery document and JWKS (kid must be
// there: AADSTS7000272), exp/nbf (AADSTS700024), and `scope` = <resource>/.default.
// It fetches discovery over http as well, because the dev server's issuer is
// http://127.0.0.1:<port>/v1/tvm: Entra itself only fetches https issuers.
//
// Get User Delegation Key: a bearer token this fake issued for
// https://storage.azure.com and not expired (else 403 AuthenticationFailed),
// an app allowed to delegate (else 403 AuthorizationPermissionMismatch), a
// KeyInfo body with an Expiry after the Start and at most 7 days from now
// (else 400 InvalidXmlNodeValue). The key is 32 random bytes; SignedOid is
// the app's object id, SignedTid its tenant, SignedVersion the request's x-ms-version.
//
// The data plane takes a user delegation SAS only, and checks it as Blob Storage does (azure-sas.ts, written
// from Microsoft's documentation, independent of tvm's signing code): the signature over the documented
// string-to-sign with the resource the request names (sdd picks the signed directory), a key this fake issued
// and did not revoke, st/se/ske against the fake's clock, https allowed, and the permission the operation needs
// (read r; Put Blob c or w, w over an existing blob; delete d; list l). Refusals: 403 AuthenticationFailed
// (with AuthenticationErrorDetail), AuthorizationPermissionMismatch, AuthorizationResourceTypeMismatch;
// 401 NoAuthenticationInformation without a SAS.
//
// revokeUserDelegationKeys: a bearer token among `managementTokens` (else 401
// InvalidAuthenticationToken), an api-version ARM knows for Microsoft.Storage,
// a registered account in that subscription and resource group (else 404);
// every key of the account issued so far is marked revoked.

import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkServerIdentity } from 'node:tls';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { generateCertificate } from '../../../src/plugin/tls.ts';
import { authorizeSas, SasRefusal, type SasOperation } from './azure-sas.ts';
import { listenLoopback, readBody, type Listening } from './loopback.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const STORAGE_RESOURCE = 'https://storage.azure.com';
/** The algorithms Entra accepts on a federated client assertion. */
export const ENTRA_ASSERTION_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
/** Microsoft.Storage api-versions that have revokeUserDelegationKeys (a sample of the real list). */
export const STORAGE_API_VERSIONS = ['2019-04-01', '2021-09-01', '2022-09-01', '2023-01-01', '2023-05-01', '2024-01-01', '2025-01-01'];
const MAX_KEY_MS = 7 * 24 * 3600_000;

export type AzureFakeEndpoint = 'openidConfiguration' | 'token' | 'userDelegationKey' | 'revoke' | 'blobData';

export interface AzureFakeRequest {
  service: 'login' | 'blob' | 'management';
  endpoint: AzureFakeEndpoint | 'unknown';
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body. */
  body: string;
  /** token: the form fields. */
  form?: Record<string, string>;
  /** userDelegationKey: the KeyInfo's Start and Expiry as sent. */
  keyInfo?: { start?: string; expiry?: string };
  /** What the fake answered. */
  status?: number;
}

export interface AzureFakeFederatedCredential {
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface AzureFakeApp {
  tenantId: string;
  clientId: string;
  /** The service principal's object id (SignedOid). */
  objectId: string;
  federated: AzureFakeFederatedCredential[];
  /** Holds generateUserDelegationKey on the accounts (default true). */
  canDelegate?: boolean;
}

export interface AzureFakeAccount {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
}

export interface AzureFakeToken {
  access_token: string;
  resource: string;
  tenantId: string;
  clientId: string;
  objectId: string;
  expiresAt: number;
  /** The client assertion's claims and header, as verified. */
  assertion: { iss: string; sub: string; aud: string | string[]; alg: string; kid?: string; jti?: string };
}

export interface AzureFakeKey {
  account: string;
  signedOid: string;
  signedTid: string;
  signedStart: string;
  signedExpiry: string;
  signedService: 'b';
  signedVersion: string;
  /** Base64. */
  value: string;
  issuedAt: number;
  revokedAt: number | null;
}

export interface AzureFakeRevocation {
  account: string;
  subscriptionId: string;
  resourceGroup: string;
  apiVersion: string;
  at: number;
  keysRevoked: number;
}

export interface AzureFakeOptions {
  clock?: () => number;
  /** Bearer tokens the management endpoint accepts (the broker's own ARM tokens). */
  managementTokens?: string[];
  /** Lifetime of issued access tokens (default 3599 s). */
  tokenLifetimeS?: number;
}

export interface AzureFake {
  urls: { login: string; blob: string; management: string };
  /** `<urls.blob>/{account}`: the provider's blobEndpoint. */
  blobEndpoint: string;
  /** Trusts this fake's certificate (for the name localhost) and nothing else. */
  agent: Agent;
  /** The fake's certificate (PEM). */
  ca: string;
  requests: AzureFakeRequest[];
  state: {
    tokens: AzureFakeToken[];
    keys: AzureFakeKey[];
    revocations: AzureFakeRevocation[];
    apps: AzureFakeApp[];
    accounts: AzureFakeAccount[];
    blobs: Map<string, Buffer>;
  };
  /** Puts a blob into the data plane (no SAS needed: the test's own setup). */
  putBlob(account: string, container: string, path: string, content: string | Buffer): void;
  addApp(app: AzureFakeApp): void;
  addAccount(account: AzureFakeAccount): void;
  /** The next `times` calls to `endpoint` answer `status` (with `body`, else the service's usual error), or drop the connection. */
  failNext(endpoint: AzureFakeEndpoint, status: number | 'drop', body?: string, times?: number): void;
  /** Forgets requests, tokens, keys, revocations, blobs and pending failures (apps and accounts stay). */
  reset(): void;
  close(): Promise<void>;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly contentType: string,
    readonly headers: Record<string, string> = {},
  ) {
    super('refused');
  }
}

function entraError(status: number, error: string, code: number, description: string): Refusal {
  const trace = randomUUID();
  const body = {
    error,
    error_description: `AADSTS${code}: ${description} Trace ID: ${trace} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
    error_codes: [code],
    timestamp: new Date().toISOString(),
    trace_id: trace,
    correlation_id: randomUUID(),
  };
  return new Refusal(status, JSON.stringify(body), 'application/json; charset=utf-8');
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function storageError(status: number, code: string, message: string, detail?: string): Refusal {
  const extra = detail === undefined ? '' : `<AuthenticationErrorDetail>${xmlEscape(detail)}</AuthenticationErrorDetail>`;
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:${randomUUID()}\nTime:${new Date().toISOString()}</Message>${extra}</Error>`;
  return new Refusal(status, body, 'application/xml', { 'x-ms-error-code': code });
}

function armError(status: number, code: string, message: string): Refusal {
  return new Refusal(status, JSON.stringify({ error: { code, message } }), 'application/json; charset=utf-8');
}

function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m ? m[1] : undefined;
}

function bearer(req: IncomingMessage): string {
  const auth = String(req.headers.authorization ?? '');
  return auth.startsWith('Bearer ') ? auth.slice(7) : '';
}

export async function startAzureFake(options: AzureFakeOptions = {}): Promise<AzureFake> {
  const clock = options.clock ?? Date.now;
  const tokenLifetimeS = options.tokenLifetimeS ?? 3599;
  const requests: AzureFakeRequest[] = [];
  const tokens: AzureFakeToken[] = [];
  const keys: AzureFakeKey[] = [];
  const revocations: AzureFakeRevocation[] = [];
  const apps: AzureFakeApp[] = [];
  const accounts: AzureFakeAccount[] = [];
  const blobs = new Map<string, Buffer>();
  const failures: Record<AzureFakeEndpoint, Array<{ status: number | 'drop'; body?: string; remaining: number }>> = {
    openidConfiguration: [],
    token: [],
    userDelegationKey: [],
    revoke: [],
    blobData: [],
  };
  const urls = { login: '', blob: '', management: '' };
  let counter = 0;

  // ---- login (Entra) ----

  const verifyAssertion = async (app: AzureFakeApp, jwt: string): Promise<AzureFakeToken['assertion']> => {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(jwt);
      claims = decodeJwt(jwt);
    } catch {
      throw entraError(400, 'invalid_client', 50027, 'JWT token is invalid or malformed.');
    }
    const alg = String(header.alg);
    if (!ENTRA_ASSERTION_ALGORITHMS.includes(alg)) {
      throw entraError(400, 'invalid_client', 5002738, `Invalid JWT token. '${alg}' is not a supported signature algorithm.`);
    }
    const iss = typeof claims.iss === 'string' ? claims.iss : '';
    const sub = typeof claims.sub === 'string' ? claims.sub : '';
    const auds = Array.isArray(claims.aud) ? claims.aud : typeof claims.aud === 'string' ? [claims.aud] : [];
    const byIssuer = app.federated.filter((f) => f.issuer === iss);
    if (byIssuer.length === 0) {
      throw entraError(400, 'invalid_client', 700211, `No matching federated identity record found for presented assertion issuer '${iss}'.`);
    }
    const bySubject = byIssuer.filter((f) => f.subject === sub);
    if (bySubject.length === 0) {
      throw entraError(400, 'invalid_client', 700213, `No matching federated identity record found for presented assertion subject '${sub}'.`);
    }
    if (!bySubject.some((f) => f.audiences.some((a) => auds.includes(a)))) {
      throw entraError(400, 'invalid_client', 700212, `No matching federated identity record found for presented assertion audience '${auds.join(', ')}'.`);
    }
    let jwksUri: string;
    try {
      const res = await fetch(`${iss}/.well-known/openid-configuration`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (doc.issuer !== iss || typeof doc.jwks_uri !== 'string') throw new Error('the discovery document does not match the issuer');
      jwksUri = doc.jwks_uri;
    } catch (err) {
      throw entraError(400, 'invalid_client', 7000273, `Unable to fetch the metadata of identity provider ${iss}: ${(err as Error).message}.`);
    }
    try {
      await jwtVerify(jwt, createRemoteJWKSet(new URL(jwksUri)), {
        algorithms: ENTRA_ASSERTION_ALGORITHMS,
        issuer: iss,
        currentDate: new Date(clock()),
        requiredClaims: ['exp', 'sub', 'aud'],
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWKS_NO_MATCHING_KEY') {
        throw entraError(
          400,
          'invalid_client',
          7000272,
          `The certificate with identifier ${String(header.kid)} used to sign the federated credential could not be found in the metadata of identity provider ${iss}.`,
        );
      }
      if (code === 'ERR_JWT_EXPIRED' || (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && /nbf/.test((err as Error).message))) {
        throw entraError(400, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
      }
      throw entraError(400, 'invalid_client', 7000274, `Key was found, but use of the key to verify the signature failed (${(err as Error).message}).`);
    }
    return { iss, sub, aud: claims.aud ?? [], alg, kid: header.kid, jti: claims.jti };
  };

  const token = async (rec: AzureFakeRequest, tenant: string): Promise<unknown> => {
    const form = Object.fromEntries(new URLSearchParams(rec.body));
    rec.form = form;
    if (form.grant_type !== 'client_credentials') throw entraError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    const tenantApps = apps.filter((a) => a.tenantId === tenant);
    if (tenantApps.length === 0) throw entraError(400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
    const app = tenantApps.find((a) => a.clientId === form.client_id);
    if (!app) {
      throw entraError(400, 'unauthorized_client', 700016, `Application with identifier '${form.client_id}' was not found in the directory '${tenant}'.`);
    }
    if (form.client_assertion_type !== JWT_BEARER || !form.client_assertion) {
      throw entraError(400, 'invalid_request', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    const assertion = await verifyAssertion(app, form.client_assertion);
    const scopes = (form.scope ?? '').split(' ').filter((s) => s !== '');
    const resource = scopes.find((s) => s.endsWith('/.default'))?.slice(0, -'/.default'.length);
    if (!resource) throw entraError(400, 'invalid_scope', 1002012, `The provided value for scope ${form.scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`);
    counter += 1;
    const t: AzureFakeToken = {
      access_token: `fake-entra-at-${counter}-${randomBytes(8).toString('hex')}`,
      resource,
      tenantId: tenant,
      clientId: app.clientId,
      objectId: app.objectId,
      expiresAt: clock() + tokenLifetimeS * 1000,
      assertion,
    };
    tokens.push(t);
    return { token_type: 'Bearer', expires_in: tokenLifetimeS, ext_expires_in: tokenLifetimeS, access_token: t.access_token };
  };

  const openidConfiguration = (tenant: string): unknown => ({
    token_endpoint: `${urls.login}/${tenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${urls.login}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${urls.login}/${tenant}/v2.0`,
    authorization_endpoint: `${urls.login}/${tenant}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${urls.login}/${tenant}/oauth2/v2.0/logout`,
    tenant_region_scope: 'EU',
  });

  // ---- blob ----

  const userDelegationKey = (rec: AzureFakeRequest, req: IncomingMessage, account: string): string => {
    const t = tokens.find((x) => x.access_token === bearer(req));
    if (!t || t.resource !== STORAGE_RESOURCE) {
      throw storageError(403, 'AuthenticationFailed', 'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.');
    }
    if (t.expiresAt <= clock()) throw storageError(403, 'AuthenticationFailed', 'Lifetime validation failed. The token is expired.');
    const app = apps.find((a) => a.clientId === t.clientId && a.tenantId === t.tenantId);
    if (app?.canDelegate === false) {
      throw storageError(403, 'AuthorizationPermissionMismatch', 'This request is not authorized to perform this operation using this permission.');
    }
    const start = xmlText(rec.body, 'Start');
    const expiry = xmlText(rec.body, 'Expiry');
    rec.keyInfo = { start, expiry };
    if (!/<KeyInfo>/.test(rec.body) || expiry === undefined) throw storageError(400, 'InvalidXmlDocument', 'XML specified is not syntactically valid.');
    const now = clock();
    const startMs = start === undefined ? now : Date.parse(start);
    const expiryMs = Date.parse(expiry);
    if (Number.isNaN(startMs) || Number.isNaN(expiryMs) || expiryMs <= startMs || expiryMs <= now || expiryMs > now + MAX_KEY_MS) {
      throw storageError(400, 'InvalidXmlNodeValue', 'The value for one of the XML nodes is not in the correct format.');
    }
    const version = String(req.headers['x-ms-version'] ?? '');
    const key: AzureFakeKey = {
      account,
      signedOid: t.objectId,
      signedTid: t.tenantId,
      signedStart: start ?? new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      signedExpiry: expiry,
      signedService: 'b',
      signedVersion: version,
      value: randomBytes(32).toString('base64'),
      issuedAt: now,
      revokedAt: null,
    };
    keys.push(key);
    return (
      '<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>' +
      `<SignedOid>${key.signedOid}</SignedOid><SignedTid>${key.signedTid}</SignedTid>` +
      `<SignedStart>${key.signedStart}</SignedStart><SignedExpiry>${key.signedExpiry}</SignedExpiry>` +
      `<SignedService>${key.signedService}</SignedService><SignedVersion>${key.signedVersion}</SignedVersion>` +
      `<Value>${key.value}</Value></UserDelegationKey>`
    );
  };

  const SAS_MESSAGES: Record<string, string> = {
    AuthenticationFailed: 'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.',
    AuthorizationPermissionMismatch: 'This request is not authorized to perform this operation using this permission.',
    AuthorizationResourceTypeMismatch: 'This request is not authorized to perform this operation using this resource type.',
    AuthorizationProtocolMismatch: 'This request is not authorized to perform this operation using this protocol.',
  };

  /** The data plane: one blob operation authorized by the SAS in the query. */
  const blobData = (rec: AzureFakeRequest, req: IncomingMessage, res: ServerResponse): void => {
    const m = BLOB_DATA.exec(rec.path) as RegExpExecArray;
    const [account, container] = [m[1], m[2]];
    const blobPath = m[3] === undefined ? null : decodeURIComponent(m[3]);
    const method = rec.method;
    let operation: SasOperation;
    if (blobPath === null) {
      if (method !== 'GET' || rec.query.restype !== 'container' || rec.query.comp !== 'list') throw storageError(400, 'UnsupportedHttpVerb', "The resource doesn't support specified Http Verb.");
      operation = 'list';
    } else if (method === 'GET' || method === 'HEAD') operation = 'read';
    else if (method === 'PUT') operation = 'create';
    else if (method === 'DELETE') operation = 'delete';
    else throw storageError(405, 'UnsupportedHttpVerb', "The resource doesn't support specified Http Verb.");
    if (rec.query.sig === undefined) {
      throw storageError(401, 'NoAuthenticationInformation', 'Server failed to authenticate the request. Please refer to the information in the www-authenticate header.');
    }
    const id = `${account}/${container}/${blobPath ?? ''}`;
    try {
      authorizeSas({ account, container, blobPath, operation, blobExists: blobs.has(id), query: rec.query }, keys, clock());
    } catch (err) {
      if (!(err instanceof SasRefusal)) throw err;
      throw storageError(err.status, err.code, SAS_MESSAGES[err.code] ?? err.code, err.code === 'AuthenticationFailed' ? err.detail : undefined);
    }
    const reply = (status: number, body: string | Buffer, headers: Record<string, string> = {}) => {
      rec.status = status;
      res.writeHead(status, { 'x-ms-request-id': randomUUID(), 'x-ms-version': String(req.headers['x-ms-version'] ?? ''), ...headers });
      res.end(method === 'HEAD' ? undefined : body);
    };
    if (operation === 'list') {
      const prefix = `${account}/${container}/${rec.query.prefix ?? ''}`;
      const names = [...blobs.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(`${account}/${container}/`.length)).sort();
      const items = names
        .map((n) => `<Blob><Name>${xmlEscape(n)}</Name><Properties><Content-Length>${(blobs.get(`${account}/${container}/${n}`) as Buffer).length}</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>`)
        .join('');
      reply(200, `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="${urls.blob}/${account}" ContainerName="${container}"><Blobs>${items}</Blobs><NextMarker /></EnumerationResults>`, { 'content-type': 'application/xml' });
      return;
    }
    const existing = blobs.get(id);
    if (operation === 'create') {
      if (req.headers['x-ms-blob-type'] !== 'BlockBlob') throw storageError(400, 'MissingRequiredHeader', 'An HTTP header that\'s mandatory for this request is not specified.');
      blobs.set(id, Buffer.from(rec.body, 'utf8'));
      reply(201, '', { etag: `"0x${randomBytes(8).toString('hex').toUpperCase()}"`, 'last-modified': new Date(clock()).toUTCString() });
      return;
    }
    if (existing === undefined) throw storageError(404, 'BlobNotFound', 'The specified blob does not exist.');
    if (operation === 'delete') {
      blobs.delete(id);
      reply(202, '');
      return;
    }
    reply(200, existing, { 'content-type': 'application/octet-stream', 'content-length': String(existing.length), 'x-ms-blob-type': 'BlockBlob', 'last-modified': new Date(clock()).toUTCString() });
  };

  // ---- management (ARM) ----

  const BLOB_DATA = /^\/([a-z0-9]{3,24})\/([a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})(?:\/(.+))?$/;
  const REVOKE = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Storage\/storageAccounts\/([^/]+)\/revokeUserDelegationKeys$/i;

  const revoke = (rec: AzureFakeRequest, req: IncomingMessage): void => {
    if (!(options.managementTokens ?? []).includes(bearer(req))) {
      throw armError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    }
    const apiVersion = rec.query['api-version'];
    if (!apiVersion) throw armError(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
    if (!STORAGE_API_VERSIONS.includes(apiVersion)) {
      throw armError(400, 'InvalidApiVersionParameter', `The api-version '${apiVersion}' is invalid. The supported versions are '${STORAGE_API_VERSIONS.join(',')}'.`);
    }
    const m = REVOKE.exec(rec.path) as RegExpExecArray;
    const [subscriptionId, resourceGroup, name] = [m[1], decodeURIComponent(m[2]), m[3]];
    const account = accounts.find(
      (a) => a.name === name && a.subscriptionId.toLowerCase() === subscriptionId.toLowerCase() && a.resourceGroup.toLowerCase() === resourceGroup.toLowerCase(),
    );
    if (!account) {
      throw armError(404, 'ResourceNotFound', `The Resource 'Microsoft.Storage/storageAccounts/${name}' under resource group '${resourceGroup}' was not found.`);
    }
    const now = clock();
    let n = 0;
    for (const k of keys) {
      if (k.account === name && k.revokedAt === null) {
        k.revokedAt = now;
        n += 1;
      }
    }
    revocations.push({ account: name, subscriptionId, resourceGroup, apiVersion, at: now, keysRevoked: n });
  };

  // ---- plumbing ----

  const route = (service: AzureFakeRequest['service'], method: string, path: string, query: Record<string, string>): { endpoint: AzureFakeEndpoint | 'unknown'; arg: string } => {
    if (service === 'login') {
      let m = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
      if (m && method === 'GET') return { endpoint: 'openidConfiguration', arg: m[1] };
      m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
      if (m && method === 'POST') return { endpoint: 'token', arg: m[1] };
    } else if (service === 'blob') {
      const m = /^\/([a-z0-9]{3,24})\/?$/.exec(path);
      if (m && method === 'POST' && query.restype === 'service' && query.comp === 'userdelegationkey') return { endpoint: 'userDelegationKey', arg: m[1] };
      if (BLOB_DATA.test(path)) return { endpoint: 'blobData', arg: '' };
    } else if (REVOKE.test(path) && method === 'POST') {
      return { endpoint: 'revoke', arg: '' };
    }
    return { endpoint: 'unknown', arg: '' };
  };

  const defaultFailure = (endpoint: AzureFakeEndpoint, status: number): Refusal => {
    if (endpoint === 'userDelegationKey' || endpoint === 'blobData') return storageError(status, status >= 500 ? 'ServerBusy' : 'AuthorizationFailure', 'fake failure');
    if (endpoint === 'revoke') return armError(status, status >= 500 ? 'InternalServerError' : 'AuthorizationFailed', 'fake failure');
    return entraError(status, status >= 500 ? 'temporarily_unavailable' : 'invalid_request', status >= 500 ? 90033 : 90014, 'fake failure');
  };

  const handle = async (service: AzureFakeRequest['service'], req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const query = Object.fromEntries(url.searchParams);
    const method = req.method ?? '';
    const { endpoint, arg } = route(service, method, url.pathname, query);
    const rec: AzureFakeRequest = { service, endpoint, method, path: url.pathname, query, headers: { ...req.headers }, body: '' };
    requests.push(rec);
    rec.body = await readBody(req);
    const send = (status: number, body: string, contentType: string, headers: Record<string, string> = {}) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': contentType, 'x-ms-request-id': randomUUID(), ...headers });
      res.end(body);
    };
    try {
      if (endpoint === 'unknown') throw new Refusal(404, JSON.stringify({ error: 'not_found', path: url.pathname }), 'application/json');
      const failure = failures[endpoint][0];
      if (failure) {
        failure.remaining -= 1;
        if (failure.remaining <= 0) failures[endpoint].shift();
        if (failure.status === 'drop') {
          req.socket.destroy();
          return;
        }
        if (endpoint === 'userDelegationKey') rec.keyInfo = { start: xmlText(rec.body, 'Start'), expiry: xmlText(rec.body, 'Expiry') };
        if (endpoint === 'token') rec.form = Object.fromEntries(new URLSearchParams(rec.body));
        const f = defaultFailure(endpoint, failure.status);
        send(failure.status, failure.body ?? f.body, f.contentType, f.headers);
        return;
      }
      switch (endpoint) {
        case 'openidConfiguration':
          send(200, JSON.stringify(openidConfiguration(arg)), 'application/json; charset=utf-8');
          return;
        case 'token':
          send(200, JSON.stringify(await token(rec, arg)), 'application/json; charset=utf-8');
          return;
        case 'userDelegationKey':
          send(200, userDelegationKey(rec, req, arg), 'application/xml', { 'x-ms-version': String(req.headers['x-ms-version'] ?? '') });
          return;
        case 'revoke':
          revoke(rec, req);
          send(200, '', 'application/json');
          return;
        case 'blobData':
          blobData(rec, req, res);
          return;
      }
    } catch (err) {
      if (err instanceof Refusal) send(err.status, err.body, err.contentType, err.headers);
      else send(500, JSON.stringify({ error: 'server_error', message: (err as Error).message }), 'application/json');
    }
  };

  const { certPem, keyPem } = await generateCertificate();
  const servers: Listening[] = [];
  for (const service of ['login', 'blob', 'management'] as const) {
    const server = createServer({ key: keyPem, cert: certPem }, (req, res) => {
      handle(service, req, res).catch(() => res.destroy());
    });
    const listening = await listenLoopback(server);
    urls[service] = `https://127.0.0.1:${listening.port}`;
    servers.push(listening);
  }
  const agent = new Agent({
    ca: certPem,
    keepAlive: false,
    // The certificate names localhost; the fake listens on 127.0.0.1.
    checkServerIdentity: (_host, cert) => checkServerIdentity('localhost', cert),
  });

  return {
    urls,
    blobEndpoint: `${urls.blob}/{account}`,
    agent,
    ca: certPem,
    requests,
    state: { tokens, keys, revocations, apps, accounts, blobs },
    putBlob(account, container, path, content) {
      blobs.set(`${account}/${container}/${path}`, Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8'));
    },
    addApp(app) {
      const i = apps.findIndex((a) => a.tenantId === app.tenantId && a.clientId === app.clientId);
      if (i >= 0) apps.splice(i, 1);
      apps.push(app);
    },
    addAccount(account) {
      const i = accounts.findIndex((a) => a.name === account.name);
      if (i >= 0) accounts.splice(i, 1);
      accounts.push(account);
    },
    failNext(endpoint, status, body, times = 1) {
      failures[endpoint].push({ status, body, remaining: times });
    },
    reset() {
      requests.length = 0;
      tokens.length = 0;
      keys.length = 0;
      revocations.length = 0;
      blobs.clear();
      for (const f of Object.values(failures)) f.length = 0;
    },
    close: async () => {
      agent.destroy();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}
