// tvm unwrap: open a wrapped creds answer (tvm creds --wrap-ttl) with its
// single-use wrapping token, and print the creds as tvm creds does.

import type { Command } from 'commander';
import { unwrapCreds } from '../../client/creds.ts';
import type { CommandContext } from '../context.ts';
import { CliUsageError } from '../errors.ts';
import { formatOption } from '../options.ts';
import { CREDS_FORMATS, printCreds, type CredsFormat } from '../output.ts';

export function registerUnwrapCommand(program: Command, ctx: CommandContext): void {
  program
    .command('unwrap')
    .description('open a wrapped creds answer with its wrapping token (single use); prints the creds as tvm creds does')
    .argument('[token]', 'the wrapping token; "-" reads it from stdin; default $VAULT_WRAPPING_TOKEN (never needs VAULT_TOKEN)')
    .addOption(formatOption(CREDS_FORMATS, 'json'))
    .action(async (arg: string | undefined, flags: { format: CredsFormat }) => {
      let token = arg;
      if (token === '-') {
        if (!ctx.io.readStdin) throw new CliUsageError('cannot read the wrapping token from stdin here');
        token = await ctx.io.readStdin();
      }
      token = (token ?? ctx.io.env.VAULT_WRAPPING_TOKEN ?? '').trim();
      if (token === '') throw new CliUsageError('no wrapping token: pass it as an argument, "-" for stdin, or set VAULT_WRAPPING_TOKEN');
      printCreds(ctx.io, flags.format, await unwrapCreds(ctx.connect({ token })));
    });
}
