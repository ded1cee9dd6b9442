// TvmJwtAuth: the JWT auth method with its issuer (`vault_jwt_auth_backend`,
// which both enables `auth/<path>` and writes `auth/<path>/config`), shared by
// every workload that logs in with a token from that issuer: a Kubernetes
// service-account token, a CI system's OIDC token.

import { JwtAuthBackend } from '@cdktf/provider-vault/lib/jwt-auth-backend/index.js';
import { Construct } from 'constructs';

export interface TvmJwtAuthProps {
  /** Auth mount path without slashes. Default `jwt`. */
  path?: string;
  description?: string;
  /** The `iss` every login token must carry. */
  boundIssuer: string;
  /** Where the issuer publishes its keys (JWKS). Exactly one of jwksUrl and jwtValidationPubkeys. */
  jwksUrl?: string;
  /** PEM public keys that verify login tokens (for a Kubernetes cluster: the service-account signing key). */
  jwtValidationPubkeys?: string[];
  /** CA certificate (PEM) for jwksUrl. */
  jwksCaPem?: string;
  /** Accepted signing algorithms, e.g. ["RS256", "ES256"]. Default: Vault's (RS256). */
  supportedAlgs?: string[];
}

export class TvmJwtAuth extends Construct {
  readonly backend: JwtAuthBackend;
  /** The mount path as a Terraform reference (roles written under it depend on the backend). */
  readonly path: string;
  /** The mount path as configured (`jwt`). */
  readonly pathName: string;

  constructor(scope: Construct, id: string, props: TvmJwtAuthProps) {
    super(scope, id);
    const path = props.path ?? 'jwt';
    if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(path)) {
      throw new Error(`TvmJwtAuth: invalid path: ${JSON.stringify(path)}`);
    }
    if (props.boundIssuer.trim() === '') throw new Error('TvmJwtAuth: invalid bound_issuer: must not be empty');
    const keys = props.jwtValidationPubkeys;
    if ((props.jwksUrl === undefined) === (keys === undefined)) {
      throw new Error('TvmJwtAuth: set exactly one of jwks_url and jwt_validation_pubkeys');
    }
    if (props.jwksUrl !== undefined && !/^https?:\/\/\S+$/.test(props.jwksUrl)) {
      throw new Error(`TvmJwtAuth: invalid jwks_url: ${JSON.stringify(props.jwksUrl)} is not an http or https URL`);
    }
    if (keys !== undefined) {
      if (keys.length === 0) throw new Error('TvmJwtAuth: invalid jwt_validation_pubkeys: give at least one PEM public key');
      keys.forEach((k, i) => {
        if (!/^-----BEGIN (RSA )?PUBLIC KEY-----/.test(k.trim())) {
          throw new Error(`TvmJwtAuth: invalid jwt_validation_pubkeys[${i}]: expected a PEM public key (-----BEGIN PUBLIC KEY-----)`);
        }
      });
    }
    this.pathName = path;
    this.backend = new JwtAuthBackend(this, 'backend', {
      type: 'jwt',
      path,
      description: props.description ?? 'tvm workloads: JWT login',
      boundIssuer: props.boundIssuer,
      ...(props.jwksUrl !== undefined ? { jwksUrl: props.jwksUrl } : {}),
      ...(keys !== undefined ? { jwtValidationPubkeys: keys.map((k) => k.trim()) } : {}),
      ...(props.jwksCaPem !== undefined ? { jwksCaPem: props.jwksCaPem } : {}),
      ...(props.supportedAlgs !== undefined ? { jwtSupportedAlgs: props.supportedAlgs } : {}),
    });
    this.path = this.backend.path;
  }
}
