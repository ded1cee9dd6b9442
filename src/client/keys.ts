// Signing keys of a tvm mount: rotate, and check the issuer the clouds see.

import { issuerProblems, type IssuerDocuments } from '../iam/oidc.ts';
import type { CloudName } from '../iam/types.ts';
import type { VaultConnection } from './connection.ts';
import { UnexpectedResponseError } from './errors.ts';

export interface RotatedKey {
  /** The new signing key's id. */
  kid: string;
  alg: string;
}

/** Starts signing with a new key; the old one stays published until its tokens expire. */
export async function rotateKeys(conn: VaultConnection): Promise<RotatedKey> {
  const path = `${conn.mount}/keys/rotate`;
  const res = await conn.write(path);
  const d = res?.data;
  if (!d || typeof d.kid !== 'string') throw new UnexpectedResponseError(`POST ${path} answered without the new key id`);
  return { kid: d.kid, alg: typeof d.alg === 'string' ? d.alg : '' };
}

export interface IssuerCheck {
  issuer: string;
  signing_algorithm: string;
  /** Per cloud: every reason its federation would refuse this issuer's tokens (empty: none known). */
  clouds: Record<string, string[]>;
}

/**
 * Reads the mount's config, discovery document and JWKS (as a cloud would reach
 * them, through Vault) and checks them against each cloud's federation rules.
 */
export async function checkIssuer(conn: VaultConnection, clouds: readonly CloudName[]): Promise<IssuerCheck> {
  const configPath = `${conn.mount}/config`;
  const config = (await conn.read(configPath))?.data;
  if (!config || typeof config.issuer !== 'string' || typeof config.signing_algorithm !== 'string') {
    throw new UnexpectedResponseError(`GET ${configPath} answered without issuer and signing_algorithm`);
  }
  const discovery = await conn.readRaw(`${conn.mount}/.well-known/openid-configuration`);
  if (discovery === null || typeof discovery !== 'object') {
    throw new UnexpectedResponseError(`GET ${conn.mount}/.well-known/openid-configuration answered no JSON object`);
  }
  const jwks = (await conn.readRaw(`${conn.mount}/.well-known/jwks.json`)) as IssuerDocuments['jwks'];
  const docs: IssuerDocuments = {
    issuer: config.issuer,
    discovery: discovery as Record<string, unknown>,
    jwks: jwks ?? {},
    signingAlgorithm: config.signing_algorithm,
  };
  const out: IssuerCheck = { issuer: config.issuer, signing_algorithm: config.signing_algorithm, clouds: {} };
  for (const cloud of clouds) out.clouds[cloud] = issuerProblems(cloud, docs).map((p) => p.problem);
  return out;
}
