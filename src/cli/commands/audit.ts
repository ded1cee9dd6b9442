// tvm audit verify|search: check an audit file's chain and checkpoints, and
// tell a token's story from audit files (the dev server's devices, the
// broker's, the PEP's sink).

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { searchAudit, type AuditQuery } from '../../audit/search.ts';
import { verifyAuditFile } from '../../audit/verify.ts';
import { parseDurationMs } from '../../sdk/duration.ts';
import type { CommandContext } from '../context.ts';
import { CheckFailedError, CliUsageError } from '../errors.ts';
import { printJson } from '../output.ts';

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliUsageError(`${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be read'}`);
  }
}

/** A time given as RFC 3339, or as a duration before now (15m, 2h). */
function timeOf(flag: string, value: string, now: number): number {
  const at = Date.parse(value);
  if (!Number.isNaN(at) && /\d{4}-\d{2}-\d{2}/.test(value)) return at;
  try {
    return now - parseDurationMs(value);
  } catch {
    throw new CliUsageError(`${flag}: ${JSON.stringify(value)} is neither an RFC 3339 time nor a duration such as 15m`);
  }
}

export function registerAuditCommands(program: Command, ctx: CommandContext): void {
  const audit = program.command('audit').description('check audit files and read a token\'s story from them');

  audit
    .command('verify')
    .description("check every line, the chain and the signed checkpoints of an audit file; exit 1 naming the first line that fails")
    .argument('<file>', 'the audit file')
    .option('--key <key>', "pin the checkpoint key: the device's checkpoint_public_key (base64) or a PEM file; default: the file's own device line")
    .option('--trust-file-key', "check against the key the file names itself (anyone who can rewrite the file can name another): only without --key")
    .option('--at <time>', 'judge the file as of this time (RFC 3339; default now): its last checkpoint must be recent then')
    .option('--format <format>', 'table or json', 'table')
    .action((file: string, flags: { key?: string; trustFileKey?: boolean; at?: string; format: string }) => {
      if (flags.key === undefined && !flags.trustFileKey) {
        throw new CliUsageError("pin the device's checkpoint key with --key (its checkpoint_public_key in sys/audit, or a PEM file), or pass --trust-file-key to accept the key the file names");
      }
      if (flags.key !== undefined && flags.trustFileKey) throw new CliUsageError('--key and --trust-file-key exclude each other');
      const content = readText(file, 'audit file');
      let key: string | undefined;
      if (flags.key !== undefined) key = /^[A-Za-z0-9+/=\s]+$/.test(flags.key) && flags.key.length > 40 ? flags.key : readText(flags.key, '--key file');
      const at = flags.at === undefined ? Date.now() : timeOf('--at', flags.at, Date.now());
      let report;
      try {
        report = verifyAuditFile(content, { ...(key ? { key } : {}), at });
      } catch (err) {
        throw new CliUsageError(`--key: not an Ed25519 public key (${(err as Error).message})`);
      }
      if (flags.format === 'json') printJson(ctx.io, report);
      else {
        if (report.ok) ctx.io.stdout(`ok: ${report.lines} lines, ${report.checkpoints} checkpoints${key ? ', pinned key' : ", checked with the file's own key (pass --key to pin it)"}\n`);
        for (const note of report.notes) ctx.io.stdout(`note: ${note}\n`);
      }
      if (!report.ok) throw new CheckFailedError(`${file}: line ${report.failure!.line} ${report.failure!.reason}`);
    });

  audit
    .command('search')
    .description("a token's story from audit files, in time order: issued to whom, scopes, renewals, each use allowed or denied, revocation")
    .argument('<files...>', 'audit files (the server\'s devices, the broker\'s, the PEP\'s sink)')
    .option('--jti <jti>', 'the token')
    .option('--lease <lease_id>', 'the lease (finds its token)')
    .option('--role <role>', "every token of the role")
    .option('--since <time>', 'RFC 3339, or a duration before now (15m)')
    .option('--format <format>', 'table or json', 'table')
    .action((files: string[], flags: { jti?: string; lease?: string; role?: string; since?: string; format: string }) => {
      const given = [flags.jti, flags.lease, flags.role].filter((v) => v !== undefined);
      if (given.length !== 1) throw new CliUsageError('name exactly one of --jti, --lease or --role');
      for (const f of files) readText(f, 'audit file');
      const query: AuditQuery = {
        ...(flags.jti ? { jti: flags.jti } : {}),
        ...(flags.lease ? { lease: flags.lease } : {}),
        ...(flags.role ? { role: flags.role } : {}),
        ...(flags.since ? { sinceMs: timeOf('--since', flags.since, Date.now()) } : {}),
      };
      const story = searchAudit(files, query);
      if (flags.format === 'json') {
        printJson(ctx.io, story);
        return;
      }
      if (story.length === 0) {
        ctx.io.stdout('no audit line names it\n');
        return;
      }
      // Fields come from files anyone may have written: no control character reaches the terminal.
      const plain = (v: string) => v.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
      for (const e of story) ctx.io.stdout(plain(`${e.time}  ${e.what.padEnd(9)} ${e.jti ?? ''}  ${e.detail}`) + '\n');
    });
}
