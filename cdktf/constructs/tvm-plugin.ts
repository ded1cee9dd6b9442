// TvmPlugin: registers the bundled tvm plugin in a real Vault's plugin catalog
// (`vault_plugin`, i.e. sys/plugins/catalog/secret/<name>). The dev server has
// the engine built in, so for the dev target this construct creates nothing.

import { Plugin } from '@cdktf/provider-vault/lib/plugin/index.js';
import { Construct } from 'constructs';

export const TVM_PLUGIN_NAME = 'tvm';
export const TVM_PLUGIN_COMMAND = 'tvm-plugin';

export type TvmPluginProps =
  | {
      /** The tvm dev server: the engine is built in; nothing to register. */
      target: 'dev';
    }
  | {
      /** A real Vault with tvm-plugin in its plugin_directory. */
      target: 'vault';
      /** SHA-256 of the plugin file, 64 hex digits (`npm run build:plugin` prints it). */
      sha256: string;
      /** File name in Vault's plugin_directory. Default `tvm-plugin`. */
      command?: string;
      /** Catalog name, which is also the mount type. Default `tvm`. */
      name?: string;
      /**
       * Vault's externally reachable address, passed to the plugin as
       * VAULT_API_ADDR (Vault does not tell plugins its api_addr; the tokens'
       * default issuer is `<apiAddr>/v1/<mount>`).
       */
      apiAddr?: string;
      /** Semantic version to register under, e.g. `v0.1.0`. */
      version?: string;
    };

export class TvmPlugin extends Construct {
  /** The plugin's catalog name: the `type` a mount of this engine uses. */
  readonly name: string;
  /** The catalog entry, or undefined for the dev target. */
  readonly resource: Plugin | undefined;

  constructor(scope: Construct, id: string, props: TvmPluginProps) {
    super(scope, id);
    if (props.target === 'dev') {
      this.name = TVM_PLUGIN_NAME;
      this.resource = undefined;
      return;
    }
    const name = props.name ?? TVM_PLUGIN_NAME;
    const command = props.command ?? TVM_PLUGIN_COMMAND;
    if (!/^[0-9a-fA-F]{64}$/.test(props.sha256)) {
      throw new Error(`TvmPlugin: invalid sha256: expected 64 hex digits, got ${JSON.stringify(props.sha256)}`);
    }
    if (command === '' || /[\s/\\]/.test(command)) {
      throw new Error(`TvmPlugin: invalid command: ${JSON.stringify(command)} must be a file name in Vault's plugin_directory`);
    }
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(name)) {
      throw new Error(`TvmPlugin: invalid name: ${JSON.stringify(name)}`);
    }
    this.name = name;
    this.resource = new Plugin(this, 'catalog', {
      type: 'secret',
      name,
      command,
      sha256: props.sha256.toLowerCase(),
      ...(props.apiAddr !== undefined ? { env: [`VAULT_API_ADDR=${props.apiAddr}`] } : {}),
      ...(props.version !== undefined ? { version: props.version } : {}),
    });
  }
}
