// tvm lease lookup|renew|revoke|list: Vault's lease API for tvm leases.

import { Option, type Command } from 'commander';
import { DEFAULT_LEASE_PREFIX, listLeases, lookupLease, renewLease, revokeLease } from '../../client/leases.ts';
import type { CommandContext } from '../context.ts';
import { formatOption } from '../options.ts';
import { CREDS_FORMATS, OUTPUT_FORMATS, printCreds, printList, printRecord, type CredsFormat, type OutputFormat } from '../output.ts';

export function registerLeaseCommands(program: Command, ctx: CommandContext): void {
  const lease = program.command('lease').description("look up, renew, revoke and list leases (Vault's sys/leases API)");

  lease
    .command('lookup')
    .description('show a lease: issue and expire time, ttl, renewable')
    .argument('<lease-id>', 'e.g. tvm/creds/demo/<id>')
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .action(async (leaseId: string, flags: { format: OutputFormat }) => {
      printRecord(ctx.io, flags.format, await lookupLease(ctx.connect(), leaseId));
    });

  lease
    .command('renew')
    .description('extend a lease; prints the freshly signed token (same jti, later exp)')
    .argument('<lease-id>', 'e.g. tvm/creds/demo/<id>')
    .option('--increment <duration>', "requested extension from now, e.g. 10m (capped at the role's max_ttl)")
    .addOption(formatOption(CREDS_FORMATS, 'json'))
    .addHelpText('after', '\nExample:\n  $ tvm lease renew "$TVM_LEASE_ID" --increment 10m --format env')
    .action(async (leaseId: string, flags: { increment?: string; format: CredsFormat }) => {
      const creds = await renewLease(ctx.connect(), leaseId, { increment: flags.increment });
      printCreds(ctx.io, flags.format, creds);
    });

  lease
    .command('revoke')
    .description('revoke a lease now: its token enters the revocation list (revoking twice succeeds)')
    .argument('<lease-id>', 'e.g. tvm/creds/demo/<id>')
    .action(async (leaseId: string) => {
      await revokeLease(ctx.connect(), leaseId);
      ctx.io.stdout(`Success! Revoked lease: ${leaseId}\n`);
    });

  lease
    .command('list')
    .description('list lease ids under a prefix, one level into role folders')
    .argument('[prefix]', `lease id prefix (default: "${DEFAULT_LEASE_PREFIX}", or <mount>/creds/ with --mount)`)
    .addOption(new Option('--mount <path>', 'the tvm mount whose creds leases to list when no prefix is given'))
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .addHelpText('after', '\nExamples:\n  $ tvm lease list\n  $ tvm lease list tvm/creds/demo/')
    .action(async (prefix: string | undefined, flags: { mount?: string; format: OutputFormat }) => {
      const conn = ctx.connect({ mount: flags.mount });
      printList(ctx.io, flags.format, 'Leases', await listLeases(conn, prefix ?? `${conn.mount}/creds/`));
    });
}
