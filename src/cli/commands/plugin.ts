// tvm plugin register: the vault commands that install the bundled plugin in a
// real Vault, or (--apply) the same through Vault's API.

import type { Command } from 'commander';
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
      if (!flags.apply) {
        ctx.io.stdout(`${plan.lines.join('\n')}\n`);
        return;
      }
      const result = await applyRegistration(ctx.connect({ mount: flags.mount }), plan);
      ctx.io.stdout(
        `registered secret plugin ${plan.name} (sha256 ${plan.sha256})\n` +
          (result.mount === 'enabled' ? `enabled ${plan.name} at ${plan.mount}/\n` : `reloaded the ${plan.name} plugin behind ${plan.mount}/\n`),
      );
    });
}
