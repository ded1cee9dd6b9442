import { Mount } from '@cdktf/provider-vault/lib/mount/index.js';
import { Plugin } from '@cdktf/provider-vault/lib/plugin/index.js';
import { Testing } from 'cdktf';
import { describe, expect, it } from 'vitest';
import { TvmMount, TvmPlugin } from '../../../cdktf/constructs/index.ts';
import { expectNoResource, expectResource } from '../helpers.ts';

const SHA = 'def71d1981e8451af8d1ab2e6e545e59bef7570634eed8258c38e1367ec3cc0d';

describe('TvmPlugin', () => {
  it('creates nothing for the dev server, whose engine is built in', () => {
    let plugin: TvmPlugin | undefined;
    const synth = Testing.synthScope((scope) => {
      plugin = new TvmPlugin(scope, 'plugin', { target: 'dev' });
    });
    expectNoResource(synth, Plugin.tfResourceType);
    expect(plugin?.resource).toBeUndefined();
    expect(plugin?.name).toBe('tvm');
  });

  it('registers the plugin in a real Vault\'s catalog with its sha256, command and api address', () => {
    const synth = Testing.synthScope((scope) => {
      new TvmPlugin(scope, 'plugin', { target: 'vault', sha256: SHA.toUpperCase(), apiAddr: 'https://vault.example.com:8200' });
    });
    expectResource(synth, Plugin.tfResourceType, {
      type: 'secret',
      name: 'tvm',
      command: 'tvm-plugin',
      sha256: SHA,
      env: ['VAULT_API_ADDR=https://vault.example.com:8200'],
    });
  });

  it('makes the mount wait for the catalog entry and use its name as the mount type', () => {
    const synth = Testing.synthScope((scope) => {
      const plugin = new TvmPlugin(scope, 'plugin', { target: 'vault', sha256: SHA, name: 'tvm-v2', command: 'tvm-plugin-v2' });
      new TvmMount(scope, 'mount', { plugin });
    });
    expectResource(synth, Plugin.tfResourceType, { name: 'tvm-v2', command: 'tvm-plugin-v2' });
    const mounts = Object.values(JSON.parse(synth).resource.vault_mount) as Record<string, unknown>[];
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatchObject({ type: 'tvm-v2' });
    expect(mounts[0].depends_on).toEqual([expect.stringMatching(/^vault_plugin\./)]);
    expectResource(synth, Mount.tfResourceType, { path: 'tvm', type: 'tvm-v2' });
  });

  it('refuses a sha256 that is not 64 hex digits and a command that is a path', () => {
    expect(() => Testing.synthScope((s) => new TvmPlugin(s, 'p', { target: 'vault', sha256: 'abc' }))).toThrow(
      'TvmPlugin: invalid sha256: expected 64 hex digits, got "abc"',
    );
    expect(() =>
      Testing.synthScope((s) => new TvmPlugin(s, 'p', { target: 'vault', sha256: SHA, command: '/usr/bin/tvm-plugin' })),
    ).toThrow(/invalid command: "\/usr\/bin\/tvm-plugin" must be a file name in Vault's plugin_directory/);
  });
});
