import { AuthBackend } from '@cdktf/provider-vault/lib/auth-backend/index.js';
import { JwtAuthBackend } from '@cdktf/provider-vault/lib/jwt-auth-backend/index.js';
import { Testing } from 'cdktf';
import { describe, expect, it } from 'vitest';
import { TvmAppRoleAuth, TvmJwtAuth, type TvmJwtAuthProps } from '../../../cdktf/constructs/index.ts';
import { expectNoResource, expectResource } from '../helpers.ts';

const PEM = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----';

describe('TvmAppRoleAuth', () => {
  it('enables AppRole at approle/ (or the path given)', () => {
    const synth = Testing.synthScope((scope) => {
      new TvmAppRoleAuth(scope, 'approle');
      new TvmAppRoleAuth(scope, 'approle-ci', { path: 'ci/approle', description: 'CI jobs' });
    });
    expectResource(synth, AuthBackend.tfResourceType, { type: 'approle', path: 'approle' });
    expectResource(synth, AuthBackend.tfResourceType, { type: 'approle', path: 'ci/approle', description: 'CI jobs' });
  });

  it('refuses a path with slashes at the ends', () => {
    expect(() => Testing.synthScope((s) => new TvmAppRoleAuth(s, 'a', { path: '/approle/' }))).toThrow('TvmAppRoleAuth: invalid path: "/approle/"');
  });
});

describe('TvmJwtAuth', () => {
  it('enables JWT auth and configures its issuer with a JWKS URL, in one vault_jwt_auth_backend', () => {
    const synth = Testing.synthScope((scope) => {
      new TvmJwtAuth(scope, 'jwt', {
        boundIssuer: 'https://kubernetes.default.svc.cluster.local',
        jwksUrl: 'https://kubernetes.default.svc.cluster.local/openid/v1/jwks',
        supportedAlgs: ['RS256', 'ES256'],
      });
    });
    expectResource(synth, JwtAuthBackend.tfResourceType, {
      type: 'jwt',
      path: 'jwt',
      bound_issuer: 'https://kubernetes.default.svc.cluster.local',
      jwks_url: 'https://kubernetes.default.svc.cluster.local/openid/v1/jwks',
      jwt_supported_algs: ['RS256', 'ES256'],
    });
    // The provider's vault_jwt_auth_backend enables auth/jwt itself: a vault_auth_backend beside it would collide.
    expectNoResource(synth, AuthBackend.tfResourceType);
  });

  it('takes PEM public keys instead of a JWKS URL', () => {
    const synth = Testing.synthScope((scope) => {
      new TvmJwtAuth(scope, 'jwt', { path: 'k8s', boundIssuer: 'https://issuer.example', jwtValidationPubkeys: [`${PEM}\n`] });
    });
    expectResource(synth, JwtAuthBackend.tfResourceType, { path: 'k8s', jwt_validation_pubkeys: [PEM] });
  });

  it('needs exactly one key source and a bound issuer', () => {
    const jwt = (props: TvmJwtAuthProps) => () => Testing.synthScope((s) => new TvmJwtAuth(s, 'j', props));
    expect(jwt({ boundIssuer: 'https://i' })).toThrow('set exactly one of jwks_url and jwt_validation_pubkeys');
    expect(jwt({ boundIssuer: 'https://i', jwksUrl: 'https://i/keys', jwtValidationPubkeys: [PEM] })).toThrow('set exactly one');
    expect(jwt({ boundIssuer: ' ', jwksUrl: 'https://i/keys' })).toThrow('invalid bound_issuer: must not be empty');
    expect(jwt({ boundIssuer: 'https://i', jwtValidationPubkeys: ['not a key'] })).toThrow('invalid jwt_validation_pubkeys[0]: expected a PEM public key');
    expect(jwt({ boundIssuer: 'https://i', jwksUrl: 'keys.json' })).toThrow('invalid jwks_url: "keys.json"');
  });
});
