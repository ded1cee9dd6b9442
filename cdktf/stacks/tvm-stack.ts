// TvmStack: a whole tvm setup from a StackConfig: the Vault provider, the
// plugin (real Vault only), the mount, the roles, the auth methods the
// workloads use, and one consumer per workload.

import { VaultProvider } from '@cdktf/provider-vault/lib/provider/index.js';
import { TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import type { StackConfig } from '../config.ts';
import {
  TvmAppRoleAuth,
  TvmConsumer,
  TvmJwtAuth,
  TvmMount,
  TvmPlugin,
  TvmRole,
  type AppRoleLogin,
  type JwtLogin,
} from '../constructs/index.ts';

export class TvmStack extends TerraformStack {
  readonly mount: TvmMount;
  readonly roles: ReadonlyMap<string, TvmRole>;
  readonly consumers: ReadonlyMap<string, TvmConsumer>;

  constructor(scope: Construct, id: string, config: StackConfig) {
    super(scope, id);
    // address only: the provider takes the token from VAULT_TOKEN when it runs,
    // so no secret is written into the synthesized Terraform.
    new VaultProvider(this, 'vault', { address: config.vault.address });

    let plugin: TvmPlugin;
    if (config.target === 'vault') {
      if (!config.plugin) throw new Error('the vault target needs plugin settings (sha256, command)');
      plugin = new TvmPlugin(this, 'plugin', { target: 'vault', ...config.plugin });
    } else {
      plugin = new TvmPlugin(this, 'plugin', { target: 'dev' });
    }
    this.mount = new TvmMount(this, 'mount', { ...config.mount, plugin });

    const roles = new Map<string, TvmRole>();
    for (const spec of config.roles) {
      if (roles.has(spec.name)) throw new Error(`role ${JSON.stringify(spec.name)} is declared twice`);
      roles.set(spec.name, new TvmRole(this, `role-${spec.name}`, { mount: this.mount, ...spec }));
    }
    this.roles = roles;

    // Auth methods exist only when a workload logs in with them.
    let approle: TvmAppRoleAuth | undefined;
    let jwt: TvmJwtAuth | undefined;
    const consumers = new Map<string, TvmConsumer>();
    for (const w of config.workloads) {
      if (consumers.has(w.name)) throw new Error(`workload ${JSON.stringify(w.name)} is declared twice`);
      const vended = w.roles.map((name) => {
        const role = roles.get(name);
        if (!role) throw new Error(`workload ${JSON.stringify(w.name)}: unknown role ${JSON.stringify(name)} (declare it in roles)`);
        return role;
      });
      let login: AppRoleLogin | JwtLogin;
      if (w.login.method === 'approle') {
        approle ??= new TvmAppRoleAuth(this, 'approle', { path: config.approle?.path ?? 'approle' });
        login = { ...w.login, auth: approle };
      } else {
        if (!config.jwt) throw new Error(`workload ${JSON.stringify(w.name)} logs in with JWT, but the config has no jwt issuer`);
        jwt ??= new TvmJwtAuth(this, 'jwt', config.jwt);
        login = { ...w.login, auth: jwt };
      }
      consumers.set(w.name, new TvmConsumer(this, `consumer-${w.name}`, { workload: w.name, roles: vended, login }));
    }
    this.consumers = consumers;
  }
}
