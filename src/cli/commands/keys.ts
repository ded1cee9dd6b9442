// tvm keys rotate: start signing with a new key.

import type { Command } from 'commander';
import { rotateKeys } from '../../client/index.ts';
import type { CommandContext } from '../context.ts';
import { formatOption, mountOption } from '../options.ts';
import { OUTPUT_FORMATS, printRecord, type OutputFormat } from '../output.ts';

export function registerKeysCommands(program: Command, ctx: CommandContext): void {
  const keys = program.command('keys').description("manage the mount's signing keys");

  keys
    .command('rotate')
    .description('sign with a new key from now on; older keys stay published until their tokens expire')
    .addOption(mountOption())
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .action(async (flags: { mount: string; format: OutputFormat }) => {
      const key = await rotateKeys(ctx.connect({ mount: flags.mount }));
      printRecord(ctx.io, flags.format, { ...key });
    });
}
