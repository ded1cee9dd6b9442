import { GenericEndpoint } from '@cdktf/provider-vault/lib/generic-endpoint/index.js';
import { Mount } from '@cdktf/provider-vault/lib/mount/index.js';
import { Testing } from 'cdktf';
import { describe, expect, it } from 'vitest';
import { TvmMount } from '../../../cdktf/constructs/index.ts';
import { expectResource, resourcesOf } from '../helpers.ts';

describe('TvmMount', () => {
  it('mounts the tvm engine with the default lease limits and writes the same limits into the engine config', () => {
    let mount: TvmMount | undefined;
    const synth = Testing.synthScope((scope) => {
      mount = new TvmMount(scope, 'mount');
    });
    expectResource(synth, Mount.tfResourceType, {
      path: 'tvm',
      type: 'tvm',
      default_lease_ttl_seconds: 900,
      max_lease_ttl_seconds: 3600,
    });
    expectResource(synth, GenericEndpoint.tfResourceType, {
      path: 'tvm/config',
      data_json: JSON.stringify({ default_ttl: 900, max_ttl: 3600 }),
      ignore_absent_fields: true,
      disable_delete: true,
    });
    const mountAddress = `vault_mount.${Object.keys(JSON.parse(synth).resource.vault_mount)[0]}`;
    expectResource(synth, GenericEndpoint.tfResourceType, { path: 'tvm/config', depends_on: [mountAddress] });
    expect(mount?.limits).toEqual({ default_ttl: 900, max_ttl: 3600 });
    expect(mount?.path).toBe('tvm');
  });

  it('takes a path, durations, an issuer and a signing algorithm', () => {
    const synth = Testing.synthScope((scope) => {
      new TvmMount(scope, 'mount', {
        path: '/team-a/tvm/',
        defaultTtl: '5m',
        maxTtl: 7200,
        issuer: 'https://tokens.example.com',
        signingAlgorithm: 'EdDSA',
      });
    });
    expectResource(synth, Mount.tfResourceType, { path: 'team-a/tvm', default_lease_ttl_seconds: 300, max_lease_ttl_seconds: 7200 });
    const [config] = resourcesOf(synth, GenericEndpoint.tfResourceType);
    expect(config.path).toBe('team-a/tvm/config');
    expect(JSON.parse(config.data_json as string)).toEqual({
      default_ttl: 300,
      max_ttl: 7200,
      issuer: 'https://tokens.example.com',
      signing_algorithm: 'EdDSA',
    });
  });

  it('refuses limits the engine would refuse', () => {
    const mount = (props: ConstructorParameters<typeof TvmMount>[2]) => () => Testing.synthScope((s) => new TvmMount(s, 'm', props));
    expect(mount({ defaultTtl: '2h' })).toThrow("TvmMount: invalid default_ttl: 7200s is longer than max_ttl 3600s");
    expect(mount({ maxTtl: 'forever' })).toThrow('invalid max_ttl: "forever" is not a duration');
    expect(mount({ maxTtl: '1500ms' })).toThrow('invalid max_ttl: "1500ms" is not a whole number of seconds');
    expect(mount({ maxTtl: 0 })).toThrow('TvmMount: invalid max_ttl: must be greater than zero');
    expect(mount({ signingAlgorithm: 'HS256' as 'ES256' })).toThrow('invalid signing_algorithm: "HS256" is not one of ES256, EdDSA, RS256');
    expect(mount({ issuer: 'tokens.example.com' })).toThrow('invalid issuer');
    expect(mount({ path: 'a//b' })).toThrow('TvmMount: invalid path');
  });
});
