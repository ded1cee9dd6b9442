// tvm role write|read|list|delete: manage the roles of a tvm mount.

import type { Command } from 'commander';
import { deleteRole, listRoles, readRole, writeRole, type RoleWrite } from '../../client/roles.ts';
import { collect, parseCount, parseKeyValuePairs, splitPair } from '../argv.ts';
import type { CommandContext } from '../context.ts';
import { CliUsageError } from '../errors.ts';
import { formatOption, mountOption } from '../options.ts';
import { OUTPUT_FORMATS, printList, printRecord, type OutputFormat } from '../output.ts';

interface RoleWriteFlags {
  mount: string;
  read?: string[];
  write?: string[];
  ttl?: string;
  maxTtl?: string;
  audience?: string[];
  boundCidr?: string[];
  maxActiveLeases?: string;
  extraClaim?: string[];
  iam?: string;
}

const LIST_FIELDS = new Set(['read', 'write', 'audiences', 'bound_cidrs']);

/** Builds the `roles/<name>` body from flags and `key=value` pairs (vault CLI style). */
export function roleWriteBody(flags: RoleWriteFlags, pairs: readonly string[]): RoleWrite {
  const body: RoleWrite = {};
  if (flags.read) body.read = flags.read;
  if (flags.write) body.write = flags.write;
  if (flags.ttl !== undefined) body.ttl = flags.ttl;
  if (flags.maxTtl !== undefined) body.max_ttl = flags.maxTtl;
  if (flags.audience) body.audiences = flags.audience;
  if (flags.boundCidr) body.bound_cidrs = flags.boundCidr;
  if (flags.maxActiveLeases !== undefined) body.max_active_leases = parseCount(flags.maxActiveLeases, '--max-active-leases');
  if (flags.extraClaim) {
    const claims: Record<string, string> = {};
    for (const pair of flags.extraClaim) {
      const [k, v] = splitPair(pair, '--extra-claim');
      claims[k] = v;
    }
    body.extra_claims = claims;
  }
  if (flags.iam !== undefined) {
    let iam: unknown;
    try {
      iam = JSON.parse(flags.iam);
    } catch {
      throw new CliUsageError('--iam must be a JSON object');
    }
    if (iam === null || typeof iam !== 'object' || Array.isArray(iam)) throw new CliUsageError('--iam must be a JSON object');
    body.iam = iam as Record<string, unknown>;
  }

  for (const [key, values] of parseKeyValuePairs(pairs)) {
    if (LIST_FIELDS.has(key)) {
      // Like `vault write`: repeat a key or separate with commas.
      const items = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
      const previous = body[key];
      body[key] = [...(Array.isArray(previous) ? (previous as string[]) : []), ...items];
      continue;
    }
    if (values.length > 1) throw new CliUsageError(`${key} is given ${values.length} times; it takes one value`);
    if (body[key] !== undefined) throw new CliUsageError(`${key} is given both as an option and as ${key}=...`);
    // Passed as typed: the engine parses durations, integers and JSON maps, and names any bad field.
    body[key] = values[0];
  }
  if (Object.keys(body).length === 0) {
    throw new CliUsageError('nothing to write: give at least --read or --write (or read=... / write=...)');
  }
  return body;
}

export function registerRoleCommands(program: Command, ctx: CommandContext): void {
  const role = program
    .command('role')
    .description('manage the roles of a tvm mount: what their tokens may read and write, and for how long');

  role
    .command('write')
    .description('create a role, or update the fields given (others are kept)')
    .argument('<name>', 'role name: 1 to 128 characters of A-Z a-z 0-9 . _ -')
    .argument('[fields...]', 'vault CLI style key=value fields, e.g. read=db://a/* ttl=5m')
    .option('--read <pattern>', 'a resource pattern tokens may read (repeatable)', collect)
    .option('--write <pattern>', 'a resource pattern tokens may write (repeatable)', collect)
    .option('--ttl <duration>', 'default token ttl, e.g. 5m (0 = the mount default)')
    .option('--max-ttl <duration>', 'longest a lease may live with renewals, e.g. 1h')
    .option('--audience <aud>', 'an audience of the tokens (repeatable)', collect)
    .option('--bound-cidr <cidr>', 'issue only to callers in this CIDR (repeatable)', collect)
    .option('--max-active-leases <n>', 'live leases allowed at once (0 = unlimited)')
    .option('--extra-claim <key=value>', 'an extra string claim in every token (repeatable)', collect)
    .option('--iam <json>', 'cloud IAM mapping, a JSON object (stored as given)')
    .addOption(mountOption())
    .addHelpText(
      'after',
      `
Examples:
  $ tvm role write app --read 'db://orders/*' --write db://orders/outbox --ttl 5m --max-ttl 1h
  $ tvm role write app 'read=db://orders/*' ttl=5m audiences=orders-api`,
    )
    .action(async (name: string, fields: string[], flags: RoleWriteFlags) => {
      const body = roleWriteBody(flags, fields);
      const conn = ctx.connect({ mount: flags.mount });
      await writeRole(conn, name, body);
      ctx.io.stdout(`Success! Data written to: ${conn.mount}/roles/${name}\n`);
    });

  role
    .command('read')
    .description('show a role')
    .argument('<name>', 'role name')
    .addOption(mountOption())
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .action(async (name: string, flags: { mount: string; format: OutputFormat }) => {
      const conn = ctx.connect({ mount: flags.mount });
      const found = await readRole(conn, name);
      // The engine's words and exit code for the same mistake (creds of an unknown role is a 400: exit 2).
      if (!found) throw new CliUsageError(`unknown role ${JSON.stringify(name)} (nothing at ${conn.mount}/roles/${name})`);
      printRecord(ctx.io, flags.format, found);
    });

  role
    .command('list')
    .description('list the role names of a tvm mount')
    .addOption(mountOption())
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .action(async (flags: { mount: string; format: OutputFormat }) => {
      const names = await listRoles(ctx.connect({ mount: flags.mount }));
      printList(ctx.io, flags.format, 'Keys', names);
    });

  role
    .command('delete')
    .description('delete a role (its live leases stay valid until they expire or are revoked)')
    .argument('<name>', 'role name')
    .addOption(mountOption())
    .action(async (name: string, flags: { mount: string }) => {
      const conn = ctx.connect({ mount: flags.mount });
      await deleteRole(conn, name);
      ctx.io.stdout(`Success! Data deleted (if it existed) at: ${conn.mount}/roles/${name}\n`);
    });
}
