// tvm operator seal-migrate -config <file>: seal, once and offline, a database
// written by a tvm without encryption at rest (the server refuses it until then).

import type { Command } from 'commander';
import type { CommandContext } from '../context.ts';
import { CliUsageError } from '../errors.ts';

interface SealMigrateFlags {
  config?: string;
}

export function registerOperatorCommands(program: Command, ctx: CommandContext): void {
  const operator = program.command('operator').description("operate on a persistent server's storage (the server stopped)");
  operator
    .command('seal-migrate')
    .description('seal every value of a database written without encryption at rest, under the config\'s seal key')
    .option('--config <file>', 'the server config: its storage path and its seal stanza')
    .addHelpText(
      'after',
      `
Stop the server and back up the database first. Every value is sealed in one
transaction and the file is rewritten, so no clear value stays in free pages or
the WAL. Earlier copies of the file still hold the signing key in clear: destroy
them, and rotate the signing key (tvm keys rotate) once the server runs again.

Example:
  $ tvm operator seal-migrate -config /etc/tvm/server.hcl
  sealed 42 values of /var/lib/tvm/tvm.db under key id "2025-06"`,
    )
    .action(async (flags: SealMigrateFlags) => {
      if (!flags.config) throw new CliUsageError('operator seal-migrate needs -config <file>');
      // Loaded on demand, as the server is: other commands never need the storage code.
      const { sealStorageOfConfig } = await import('../../server/seal_migrate.ts');
      const done = await sealStorageOfConfig(flags.config, { warn: (m) => ctx.io.stderr(`tvm: warning: ${m}\n`) });
      ctx.io.stdout(`sealed ${done.count} values of ${done.path} under key id ${JSON.stringify(done.keyId)}\n`);
    });
}
