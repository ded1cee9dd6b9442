// Test helper: the example stack synthesized into a directory of its own and
// driven by the real `terraform` (scripts/real-parts terraform) with the real
// Vault provider (scripts/real-parts provider), installed from a filesystem
// mirror named in a CLI config file the helper writes. No registry is asked.
//
// The synthesized JSON pins provider 5.6.0 (the version of the cdktf
// bindings); the Go module proxy serves the provider's v5.9.0 commit, the
// closest v5, so the helper pins 5.9.0 in required_providers. The local
// backend's state goes into the directory too (synth writes an absolute path
// in the checkout).

import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App } from 'cdktf';
import { exampleConfig } from '../../cdktf/config.ts';
import { TvmStack } from '../../cdktf/stacks/tvm-stack.ts';
import { newPrivateKey } from '../../src/engine/jwk.ts';
import { realPart } from '../real/parts.ts';

/** Why real Terraform cannot run here (terraform or the provider is missing), or ''. */
export function terraformUnavailable(): string {
  for (const name of ['terraform', 'provider'] as const) {
    const part = realPart(name);
    if (!part.ok) return part.reason;
  }
  return '';
}

/** The provider version the mirror holds (scripts/real/provider.sh). */
export function providerVersion(): string {
  return realPart('provider').version!;
}

export interface TerraformRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Stack {
  dir: string;
  /** What the config put in the stack: the mount path, the JWT issuer. */
  mountPath: string;
  /** Runs `terraform <args>` in the stack's directory against the given Vault. */
  terraform(args: string[]): Promise<TerraformRun>;
  /** The synthesized resources, `<type>.<name>`. */
  addresses: string[];
}

export interface StackOptions {
  address: string;
  token: string;
  /** Extra exampleConfig environment (TVM_TARGET, TVM_PLUGIN_FILE, ...). */
  env?: Record<string, string>;
}

/** An RSA public key in PEM for the stack's JWT auth method (no test here logs in with JWT). */
function issuerPublicKey(file: string): void {
  const publicKey = createPublicKey(newPrivateKey('rsa', { modulusLength: 2048 }));
  writeFileSync(file, publicKey.export({ type: 'spki', format: 'pem' }));
}

interface TerraformJson {
  terraform: { backend?: { local?: { path: string } }; required_providers: { vault: { version: string } } };
  resource: Record<string, Record<string, unknown>>;
}

export function synthStack(options: StackOptions): Stack {
  const terraformBin = realPart('terraform').path!;
  const providerBin = realPart('provider').path!;
  // <mirror>/registry.terraform.io/hashicorp/vault/<version>/<os_arch>/terraform-provider-vault
  const mirror = dirname(dirname(dirname(dirname(dirname(dirname(providerBin))))));
  const dir = mkdtempSync(join(tmpdir(), 'tvm-terraform-'));
  const stackDir = join(dir, 'stack');
  const pubkey = join(dir, 'issuer.pem');
  issuerPublicKey(pubkey);

  const config = exampleConfig({
    VAULT_ADDR: options.address,
    TVM_JWT_ISSUER: 'https://kubernetes.test.invalid',
    TVM_JWT_PUBKEY_FILE: pubkey,
    ...options.env,
  });
  const app = new App({ outdir: join(dir, 'cdktf.out') });
  new TvmStack(app, config.stackName, config);
  app.synth();
  const tf = JSON.parse(readFileSync(join(dir, 'cdktf.out', 'stacks', config.stackName, 'cdk.tf.json'), 'utf8')) as TerraformJson;
  tf.terraform.required_providers.vault.version = providerVersion();
  if (tf.terraform.backend?.local) tf.terraform.backend.local.path = join(dir, 'terraform.tfstate');
  mkdirSync(stackDir);
  writeFileSync(join(stackDir, 'cdk.tf.json'), JSON.stringify(tf, null, 2));

  const cliConfig = join(dir, 'terraform.tfrc');
  writeFileSync(
    cliConfig,
    `provider_installation {\n  filesystem_mirror {\n    path    = ${JSON.stringify(mirror)}\n    include = ["registry.terraform.io/hashicorp/vault"]\n  }\n}\n`,
  );
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(TF|VAULT|BAO)_/.test(k)) env[k] = v;
  Object.assign(env, {
    TF_CLI_CONFIG_FILE: cliConfig,
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
    TF_DATA_DIR: join(dir, 'tf-data'),
    CHECKPOINT_DISABLE: '1',
    VAULT_ADDR: options.address,
    VAULT_TOKEN: options.token,
  });

  const addresses = Object.entries(tf.resource).flatMap(([type, byName]) => Object.keys(byName).map((name) => `${type}.${name}`));
  return {
    dir,
    mountPath: config.mount.path,
    addresses,
    terraform: (args) =>
      new Promise((resolve) => {
        execFile(terraformBin, [...args, '-no-color'], { cwd: stackDir, env, timeout: 240_000, maxBuffer: 32 << 20 }, (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
          resolve({ code, stdout, stderr });
        });
      }),
  };
}
