// tvm token verify|introspect: check a tvm token offline with the PEP library
// (JWKS, claims, status list; with --op/--resource also scope and context) or
// ask the mount about it (RFC 7662).

import { isIP } from 'node:net';
import { Option, type Command } from 'commander';
import type { VerifyOptions } from '../../client/tokens.ts';
import { collect } from '../argv.ts';
import type { CommandContext } from '../context.ts';
import { CliUsageError, TokenInvalidError } from '../errors.ts';
import { formatOption, mountOption } from '../options.ts';
import { OUTPUT_FORMATS, printRecord, type OutputFormat } from '../output.ts';

const TOKEN_ARG_HELP = 'the JWT; "-" reads it from stdin; default $TVM_TOKEN';

/** The token from the argument, stdin (`-`) or $TVM_TOKEN, so it need not appear in the process list. */
async function tokenFrom(arg: string | undefined, ctx: CommandContext): Promise<string> {
  let token = arg;
  if (token === '-') {
    if (!ctx.io.readStdin) throw new CliUsageError('cannot read the token from stdin here');
    token = await ctx.io.readStdin();
  }
  token ??= ctx.io.env.TVM_TOKEN;
  if (!token || token.trim() === '') throw new CliUsageError('no token: pass it as an argument, "-" for stdin, or set TVM_TOKEN');
  return token.trim();
}

interface VerifyFlags {
  mount: string;
  format: OutputFormat;
  audience?: string[];
  issuer?: string;
  op?: 'read' | 'write';
  resource?: string;
  remoteAddr?: string;
}

/** The expectations the flags give, refusing empty values (usage errors, exit 2). */
function expectations(flags: VerifyFlags): VerifyOptions {
  const options: VerifyOptions = {};
  if (flags.audience) {
    if (flags.audience.some((a) => a.trim() === '')) throw new CliUsageError('--audience must not be empty');
    options.audiences = flags.audience;
  }
  if (flags.issuer !== undefined) {
    if (flags.issuer.trim() === '') throw new CliUsageError('--issuer must not be empty');
    options.issuer = flags.issuer;
  }
  if ((flags.op === undefined) !== (flags.resource === undefined)) throw new CliUsageError('--op and --resource go together: give both or neither');
  if (flags.op !== undefined && flags.resource !== undefined) {
    if (flags.resource.trim() === '') throw new CliUsageError('--resource must not be empty');
    options.op = flags.op;
    options.resource = flags.resource;
  }
  if (flags.remoteAddr !== undefined) {
    if (options.op === undefined) throw new CliUsageError('--remote-addr goes with --op and --resource');
    if (isIP(flags.remoteAddr) === 0) throw new CliUsageError(`--remote-addr ${JSON.stringify(flags.remoteAddr)} is not an IP address`);
    options.remoteAddr = flags.remoteAddr;
  }
  return options;
}

export function registerTokenCommands(program: Command, ctx: CommandContext): void {
  const token = program.command('token').description('check tvm tokens');

  token
    .command('verify')
    .description(
      'verify a token as a resource server would: signature against the published JWKS, typ at+jwt, issuer, audience, exp/nbf/iat, its status list; with --op and --resource also scope and context',
    )
    .argument('[jwt]', TOKEN_ARG_HELP)
    .option('--audience <aud>', 'an audience this resource server answers to; the token\'s aud must hold one of them (repeatable; default: the issuer)', collect)
    .option('--issuer <iss>', "the expected issuer (default: the one the mount publishes)")
    .addOption(new Option('--op <op>', 'with --resource: check the token grants this operation, as a resource server about to do it would').choices(['read', 'write']))
    .option('--resource <name>', 'with --op: the concrete resource, e.g. db://orders/42')
    .option('--remote-addr <ip>', "with --op: the client address the token's bound_cidrs are checked against (default: none, so a token with bound_cidrs fails)")
    .addOption(mountOption())
    .addOption(formatOption(OUTPUT_FORMATS, 'json'))
    .addHelpText(
      'after',
      `
Exits 0 and prints the claims when the token is valid; exits 1 with "tvm: token invalid: <reason>" otherwise.
Without --audience the token's aud must include the issuer, as it does for a role without audiences;
a token minted for another service (a role with audiences) passes only with --audience naming one of them.

With --op and --resource the token must also grant that operation on that resource, and its
context must hold: bound_cidrs against --remote-addr, allowed_hours against the clock.
A DPoP-bound token (cnf.jkt) always fails --op (ERR_BINDING: there is no DPoP proof of its key
here): verify it without --op, and leave its proofs to the resource server.`,
    )
    .action(async (jwt: string | undefined, flags: VerifyFlags) => {
      const options = expectations(flags);
      // jose and the enforcement point load with the command that uses them, not with every tvm process.
      const { verifyToken } = await import('../../client/tokens.ts');
      const result = await verifyToken(ctx.connect({ mount: flags.mount }), await tokenFrom(jwt, ctx), { ...options, env: ctx.io.env });
      if (!result.valid || !result.claims) {
        let reason = result.reason ?? 'unknown reason';
        // The token names an audience, just not the default one: say how to accept it.
        if (result.claim === 'aud' && !options.audiences && result.claims?.aud !== undefined) {
          reason += '; pass --audience to accept another audience';
        }
        throw new TokenInvalidError(reason);
      }
      printRecord(ctx.io, flags.format, { ...result.claims });
    });

  token
    .command('introspect')
    .description('ask the mount whether a token is active (RFC 7662); revoked, expired or foreign tokens answer {"active": false}')
    .argument('[jwt]', TOKEN_ARG_HELP)
    .addOption(mountOption())
    .addOption(formatOption(OUTPUT_FORMATS, 'json'))
    .action(async (jwt: string | undefined, flags: { mount: string; format: OutputFormat }) => {
      const { introspectToken } = await import('../../client/tokens.ts');
      const answer = await introspectToken(ctx.connect({ mount: flags.mount }), await tokenFrom(jwt, ctx));
      printRecord(ctx.io, flags.format, answer);
    });
}
