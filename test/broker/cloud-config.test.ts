// The broker config's `cloud "<name>" { ... }` blocks: parsed (HCL and JSON),
// mapped onto each provider's options, refused with the block and key named;
// the providers built are the clouds' real ones, and only those configured.

import { writeFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { BrokerError, loadConfig, parseConfig } from '../../src/broker/index.ts';
import { createProviders, parseCloudBlocks } from '../../src/iam/providers.ts';
import { run } from '../cli/helpers.ts';
import { tempDir } from './helpers.ts';

const dir = tempDir();
afterAll(() => dir.remove());

const base = { vault: { address: 'http://127.0.0.1:8200', auth: { token: { token: 't' } } } };

describe('cloud blocks', () => {
  it('HCL: each block maps onto its provider options; relative files resolve against the config file', async () => {
    writeFileSync(`${dir.path}/aws-secret`, 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n');
    writeFileSync(`${dir.path}/k8s-token`, 'broker-token\n');
    writeFileSync(`${dir.path}/ca.pem`, rootCertificates[0]);
    writeFileSync(
      `${dir.path}/broker.hcl`,
      `vault {
  address = "http://127.0.0.1:8200"
}
cloud "aws" {
  region                 = "eu-west-1"
  sts_endpoint           = "http://127.0.0.1:4566"
  iam_endpoint           = "http://127.0.0.1:4566"
  access_key_id          = "AKIAEXAMPLE"
  secret_access_key_file = "aws-secret"
  max_attempts           = 2
  deny_skew              = "3m"
}
cloud "gcp" {
  sts_endpoint       = "http://127.0.0.1:9001"
  max_token_lifetime = "2h"
}
cloud "azure" {
  authority_host = "https://127.0.0.1:9002"
  blob_endpoint  = "https://127.0.0.1:9003/{account}"
  ca_file        = "ca.pem"
}
cloud "kubernetes" {
  cluster {
    server     = "https://k8s-a.internal:6443"
    token_file = "k8s-token"
    ca_file    = "ca.pem"
  }
  cluster {
    server = "http://127.0.0.1:6443"
    token  = "inline"
  }
}
`,
    );
    const config = await loadConfig(`${dir.path}/broker.hcl`, { VAULT_TOKEN: 'x' });
    expect(config.clouds).toEqual({
      aws: {
        region: 'eu-west-1',
        stsEndpoint: 'http://127.0.0.1:4566',
        iamEndpoint: 'http://127.0.0.1:4566',
        accessKeyId: 'AKIAEXAMPLE',
        secretAccessKey: { file: 'aws-secret' },
        sessionToken: undefined,
        maxAttempts: 2,
        denySkewMs: 180_000,
      },
      gcp: { stsEndpoint: 'http://127.0.0.1:9001', iamCredentialsEndpoint: undefined, universeDomain: undefined, maxTokenLifetimeS: 7200, credentialsFile: undefined },
      azure: expect.objectContaining({ authorityHost: 'https://127.0.0.1:9002', blobEndpoint: 'https://127.0.0.1:9003/{account}', caFile: 'ca.pem' }),
      kubernetes: {
        kubeconfig: undefined,
        clusters: [
          expect.objectContaining({ server: 'https://k8s-a.internal:6443', token: { file: 'k8s-token' }, caFile: 'ca.pem' }),
          expect.objectContaining({ server: 'http://127.0.0.1:6443', token: { value: 'inline' } }),
        ],
      },
    });
    const read: string[] = [];
    const providers = await createProviders(config.clouds, {
      baseDir: config.baseDir,
      readFile: (p) => {
        read.push(p);
        return (p.endsWith('.pem') ? rootCertificates[0] : 'secret-from-file');
      },
    });
    expect(Object.keys(providers).sort()).toEqual(['aws', 'azure', 'gcp', 'kubernetes']);
    for (const [name, p] of Object.entries(providers)) {
      expect(p!.cloud).toBe(name);
      expect(p!.module.cloud).toBe(name);
    }
    expect(read.sort()).toEqual([`${dir.path}/aws-secret`, `${dir.path}/ca.pem`, `${dir.path}/ca.pem`, `${dir.path}/k8s-token`]);
  });

  it('JSON gives the same shape; no block: no provider (and no cloud SDK loaded)', async () => {
    const json = parseConfig({ ...base, cloud: { kubernetes: { kubeconfig: '/etc/tvm/kubeconfig' } } }, '/etc/tvm', {});
    expect(json.clouds).toEqual({ kubernetes: { kubeconfig: '/etc/tvm/kubeconfig', clusters: [] } });
    expect(parseConfig(base, '/', {}).clouds).toEqual({});
    expect(await createProviders({})).toEqual({});
    // The shipped example keeps its cloud blocks commented out.
    expect((await loadConfig('vault-config/broker.hcl', { VAULT_TOKEN: 'x' })).clouds).toEqual({});
  });

  it('refuses an unknown cloud, an unknown key, a half-given key pair, a bad value: the block and key named', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ibm: {} }, 'cloud "ibm" is not one of "aws", "gcp", "azure", "kubernetes"'],
      [{ aws: { regoin: 'x' } }, 'cloud "aws".regoin is not a setting; expected one of region, sts_endpoint, iam_endpoint, access_key_id, secret_access_key, secret_access_key_file, session_token, session_token_file, max_attempts, deny_skew'],
      [{ aws: { access_key_id: 'AKIA' } }, 'cloud "aws": access_key_id and secret_access_key(_file) go together'],
      [{ aws: { secret_access_key: 'a', secret_access_key_file: 'b', access_key_id: 'c' } }, 'cloud "aws": give secret_access_key or secret_access_key_file, not both'],
      [{ aws: { sts_endpoint: 'ftp://x' } }, 'cloud "aws".sts_endpoint must be an http(s) URL'],
      [{ gcp: { max_token_lifetime: '13h' } }, 'cloud "gcp".max_token_lifetime must be between 1s and 12h'],
      [{ azure: { max_retries: -1 } }, 'cloud "azure".max_retries must be an integer of at least 0'],
      [{ kubernetes: {} }, 'cloud "kubernetes" needs a kubeconfig or at least one cluster { server = ... } block'],
      [{ kubernetes: { cluster: [{ token: 'x' }] } }, 'cloud "kubernetes".cluster[0].server is required'],
      [{ kubernetes: { cluster: { server: 'https://k', client_key_file: 'k.pem' } } }, 'cloud "kubernetes".cluster[0]: client_certificate_file and client_key_file go together'],
    ];
    for (const [cloud, message] of cases) {
      let err: unknown;
      try {
        parseConfig({ ...base, cloud }, '/', {});
      } catch (e) {
        err = e;
      }
      expect(err, message).toBeInstanceOf(BrokerError);
      expect((err as BrokerError).code).toBe('ERR_CONFIG');
      expect((err as BrokerError).message).toBe(message);
    }
    expect(() => parseCloudBlocks({ aws: { deny_skew: 'soon' } })).toThrow('cloud "aws".deny_skew must be a duration such as 90s, 2m or 1h');
  });

  it('tvm broker run: a secret file that cannot be read exits 2 with one line naming it', async () => {
    writeFileSync(
      `${dir.path}/missing.json`,
      JSON.stringify({ ...base, listener: { address: '127.0.0.1:0' }, store: { sqlite: { path: `${dir.path}/m.db` } }, cloud: { kubernetes: { cluster: { server: 'https://k', token_file: 'nope' } } } }),
    );
    const r = await run(['broker', 'run', '--config', `${dir.path}/missing.json`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`tvm: broker config ${dir.path}/missing.json: cloud blocks: cannot read the Kubernetes token file ${dir.path}/nope: ENOENT\n`);
  });
});
