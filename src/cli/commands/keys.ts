// tvm keys rotate: start signing with a new key.
// tvm keys check-issuer: would AWS, GCP and Azure federation trust this issuer?

import type { Command } from 'commander';
import { checkIssuer, rotateKeys } from '../../client/keys.ts';
import { CLOUDS, type CloudName } from '../../iam/types.ts';
import { CheckFailedError, CliUsageError } from '../errors.ts';
import type { CommandContext } from '../context.ts';
import { formatOption, mountOption } from '../options.ts';
import { OUTPUT_FORMATS, printJson, printRecord, type OutputFormat } from '../output.ts';

const FEDERATING: CloudName[] = ['aws', 'gcp', 'azure'];

function cloudList(raw: string): CloudName[] {
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(CLOUDS as readonly string[]).includes(n)) throw new CliUsageError(`--cloud: ${JSON.stringify(n)} is not one of ${CLOUDS.join(', ')}`);
  }
  if (names.length === 0) throw new CliUsageError('--cloud needs at least one cloud');
  return names as CloudName[];
}

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

  keys
    .command('check-issuer')
    .description("check the mount's issuer, discovery document and JWKS against each cloud's federation rules (exit 1 on a problem)")
    .addOption(mountOption())
    .option('--cloud <list>', 'comma-separated clouds to check', FEDERATING.join(','))
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .action(async (flags: { mount: string; cloud: string; format: OutputFormat }) => {
      const clouds = cloudList(flags.cloud);
      const result = await checkIssuer(ctx.connect({ mount: flags.mount }), clouds);
      if (flags.format === 'json') {
        printJson(ctx.io, result);
      } else {
        ctx.io.stdout(`issuer ${result.issuer} (${result.signing_algorithm})\n`);
        for (const [cloud, problems] of Object.entries(result.clouds)) {
          ctx.io.stdout(problems.length === 0 ? `${cloud}: ok\n` : problems.map((p) => `${cloud}: ${p}\n`).join(''));
        }
      }
      const failing = Object.entries(result.clouds).filter(([, p]) => p.length > 0).map(([c]) => c);
      if (failing.length > 0) throw new CheckFailedError(`the issuer does not meet the federation rules of ${failing.join(', ')}`);
    });
}
