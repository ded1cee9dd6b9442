// tvm plugin register: the vault commands that install the bundled plugin in a
// real Vault, or (--apply) the same through Vault's API.

import type { Command } from 'commander';
import { VaultRequestError } from '../../client/errors.ts';
import { applyRegistration, planRegistration, PluginRegisterError } from '../../plugin/register.ts';
import type { CommandContext } from '../context.ts';
import { CliUsageError } from '../errors.ts';
import { mountOption } from '../options.ts';

interface RegisterFlags {
  mount: string;
  plugin?: string;
  apiAddr?: string;
  apply?: boolean;
}

export function registerPluginCommands(program: Command, ctx: CommandContext): void {
  const plugin = program.command('plugin').description('run tvm inside a real Vault as a secrets-engine plugin');

  plugin
    .command('register')
    .description('print the vault commands that register and mount the bundled plugin, or run them with --apply')
    .option('--plugin <file>', 'the bundled plugin (default: dist/plugin/tvm-plugin from `npm run build:plugin`)')
    .option('--api-addr <url>', "Vault's external address, passed to the plugin as its --api-addr argument for the token issuer")
    .option('--apply', 'register and mount through the Vault API (VAULT_ADDR, VAULT_TOKEN) instead of printing')
    .addOption(mountOption())
    .addHelpText(
      'after',
      `
Copy the plugin file into Vault's plugin_directory first (see vault-config/plugin.hcl).

Examples:
  $ npm run build:plugin && cp dist/plugin/tvm-plugin /etc/vault/plugins/
  $ tvm plugin register
  vault plugin register -sha256=<sha256 of the file> -command=tvm-plugin secret tvm   (works with bao as well)
  vault secrets enable -path=tvm tvm
  $ tvm plugin register --apply --api-addr https://vault.example.com:8200`,
    )
    .action(async (flags: RegisterFlags) => {
      let plan;
      try {
        plan = planRegistration({ pluginPath: flags.plugin, mount: flags.mount, apiAddr: flags.apiAddr });
      } catch (err) {
        if (err instanceof PluginRegisterError) throw new CliUsageError(err.message, { cause: err });
        throw err;
      }
      if (flags.apiAddr === undefined) {
        // Not an error (a mount can set its issuer in tvm/config), but never silent.
        ctx.io.stderr(
          'tvm: note: no --api-addr: the plugin is not told Vault\'s address, so the default token issuer will not be a URL resource servers can reach; pass --api-addr <Vault\'s external URL>, or set tvm/config issuer\n',
        );
      }
      if (!flags.apply) {
        ctx.io.stdout(`${plan.lines.join('\n')}\n`);
        return;
      }
      let result;
      try {
        result = await applyRegistration(ctx.connect({ mount: flags.mount }), plan);
      } catch (err) {
        if (err instanceof VaultRequestError && err.status === 404 && err.path.startsWith('sys/plugins/')) {
          throw new CliUsageError(
            `${err.path}: this server has no plugin catalog. The dev server (tvm server -dev) runs the engine built in, already mounted at tvm/; register the plugin with a real Vault or OpenBao`,
            { cause: err },
          );
        }
        throw err;
      }
      ctx.io.stdout(
        `registered secret plugin ${plan.name} (sha256 ${plan.sha256})\n` +
          (result.mount === 'enabled' ? `enabled ${plan.name} at ${plan.mount}/\n` : `reloaded the ${plan.name} plugin behind ${plan.mount}/\n`),
      );
    });
}
