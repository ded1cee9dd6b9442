// tvm creds <role>: issue a short-lived signed token under a lease.

import type { Command } from 'commander';
import { issueCreds } from '../../client/index.ts';
import { collect } from '../argv.ts';
import type { CommandContext } from '../context.ts';
import { formatOption, mountOption } from '../options.ts';
import { CREDS_FORMATS, printCreds, type CredsFormat } from '../output.ts';

interface CredsFlags {
  mount: string;
  format: CredsFormat;
  ttl?: string;
  read?: string[];
  write?: string[];
  audience?: string[];
}

export function registerCredsCommand(program: Command, ctx: CommandContext): void {
  program
    .command('creds')
    .description("issue a signed token for a role, under a renewable lease (narrow it with --ttl, --read, --write, --audience)")
    .argument('<role>', 'the role to issue from')
    .option('--ttl <duration>', "requested ttl, at most the role's max_ttl, e.g. 2m")
    .option('--read <pattern>', "narrow the read scope; must be covered by the role's patterns (repeatable)", collect)
    .option('--write <pattern>', "narrow the write scope; must be covered by the role's patterns (repeatable)", collect)
    .option('--audience <aud>', "a subset of the role's audiences (repeatable)", collect)
    .addOption(formatOption(CREDS_FORMATS, 'json'))
    .addOption(mountOption())
    .addHelpText(
      'after',
      `
Formats:
  json   the creds data plus lease_id, lease_duration, renewable (default)
  token  only the JWT
  env    TVM_TOKEN=..., TVM_LEASE_ID=..., TVM_EXPIRES_AT=... lines, quoted for a POSIX shell

Examples:
  $ tvm creds demo
  $ tvm creds app --ttl 2m --read 'db://orders/2024/*' --format token
  $ eval "$(tvm creds app --format env)"`,
    )
    .action(async (role: string, flags: CredsFlags) => {
      const creds = await issueCreds(ctx.connect({ mount: flags.mount }), role, {
        ttl: flags.ttl,
        read: flags.read,
        write: flags.write,
        audience: flags.audience,
      });
      printCreds(ctx.io, flags.format, creds);
    });
}
