// Is the mount's issuer one a cloud's federation will trust? Checks the OIDC
// discovery document and JWKS tvm publishes against what each cloud states it
// requires of an external OIDC provider, offline. Pure: the caller fetches.

import { FEDERATION_ALGORITHMS } from './mapping.ts';
import type { CloudName } from './types.ts';

export interface IssuerDocuments {
  /** The issuer the tokens carry (`iss`), as configured on the mount. */
  issuer: string;
  /** `<issuer>/.well-known/openid-configuration`. */
  discovery: Record<string, unknown>;
  /** The JWK set at the discovery document's `jwks_uri`. */
  jwks: { keys?: Array<Record<string, unknown>> };
  /** The algorithm the mount signs with now (config `signing_algorithm`). */
  signingAlgorithm: string;
}

export interface IssuerProblem {
  cloud: CloudName;
  /** What is wrong, naming the document field. */
  problem: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function httpsProblem(field: string, value: unknown): string | null {
  if (typeof value !== 'string' || value === '') return `${field} is missing`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${field} ${JSON.stringify(value)} is not a URL`;
  }
  if (url.protocol !== 'https:') {
    const where = LOOPBACK.has(url.hostname) ? ' (a loopback dev server: fine for tests, never reachable by a cloud)' : '';
    return `${field} ${JSON.stringify(value)} is not https: clouds fetch discovery and keys over https only${where}`;
  }
  if (url.search || url.hash) return `${field} may not carry a query or fragment`;
  return null;
}

/** Every reason `cloud` would refuse tokens from this issuer; empty when none is known. */
export function issuerProblems(cloud: CloudName, docs: IssuerDocuments): IssuerProblem[] {
  if (cloud === 'kubernetes') return []; // the broker's own cluster credentials act; the token is not presented
  const out: IssuerProblem[] = [];
  const add = (problem: string) => out.push({ cloud, problem });
  const d = docs.discovery;

  const issuerProblem = httpsProblem('issuer', docs.issuer);
  if (issuerProblem) add(issuerProblem);
  if (d.issuer !== docs.issuer) add(`discovery issuer ${JSON.stringify(d.issuer)} differs from the tokens' iss ${JSON.stringify(docs.issuer)}`);
  const jwksProblem = httpsProblem('jwks_uri', d.jwks_uri);
  if (jwksProblem) add(jwksProblem);
  for (const field of ['response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported']) {
    if (!Array.isArray(d[field]) || (d[field] as unknown[]).length === 0) add(`discovery ${field} is missing (OpenID Connect Discovery requires it)`);
  }

  const accepted = FEDERATION_ALGORITHMS[cloud] ?? [];
  if (!accepted.includes(docs.signingAlgorithm)) {
    add(`tokens are signed with ${docs.signingAlgorithm}; ${cloud} accepts ${accepted.join(', ')}`);
  }
  const advertised = Array.isArray(d.id_token_signing_alg_values_supported) ? (d.id_token_signing_alg_values_supported as unknown[]) : [];
  if (!advertised.includes(docs.signingAlgorithm)) {
    add(`discovery id_token_signing_alg_values_supported does not list ${docs.signingAlgorithm}`);
  }

  const keys = Array.isArray(docs.jwks.keys) ? docs.jwks.keys : [];
  if (keys.length === 0) add('the JWKS holds no key');
  const signing = keys.filter((k) => k.alg === docs.signingAlgorithm);
  if (keys.length > 0 && signing.length === 0) add(`no JWKS key has alg ${docs.signingAlgorithm}`);
  keys.forEach((k, i) => {
    if (typeof k.kid !== 'string' || k.kid === '') add(`JWKS key ${i} has no kid (tokens name their key by kid)`);
    if (k.use !== undefined && k.use !== 'sig') add(`JWKS key ${i} has use ${JSON.stringify(k.use)}, not "sig"`);
    if ('d' in k || 'p' in k || 'q' in k) add(`JWKS key ${i} carries private key material`);
    if (k.kty === 'RSA' && typeof k.n === 'string' && Buffer.from(k.n, 'base64url').length * 8 < 2048) {
      add(`JWKS key ${i} is an RSA key shorter than 2048 bits`);
    }
  });

  return out;
}
