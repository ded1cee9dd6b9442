// cdktf app: the example tvm stack from the typed config. `npm run cdktf:synth`
// writes cdktf.out/stacks/tvm/cdk.tf.json (plain Terraform JSON).

import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from 'cdktf';
import { exampleConfig } from './config.ts';
import { TvmStack } from './stacks/tvm-stack.ts';

try {
  const config = exampleConfig();
  const app = new App();
  new TvmStack(app, config.stackName, config);
  app.synth();
  const file = resolve(app.outdir, 'stacks', config.stackName, 'cdk.tf.json');
  console.log(`synthesized ${relative(fileURLToPath(new URL('..', import.meta.url)), file)} (target ${config.target}, Vault ${config.vault.address})`);
} catch (err) {
  console.error(`synth failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
