// tvm creds <role>: issue a short-lived signed token under a lease; with
// --cloud, through the broker, a cloud credential beside it whose life follows the lease;
// with --dpop-key, a token bound to that key (cnf.jkt).

import { readFileSync } from 'node:fs';
import type { JsonWebKey } from 'node:crypto';
import { Option, type Command } from 'commander';
import { issueCreds, issueWrappedCreds } from '../../client/creds.ts';
import { parseDurationMs } from '../../sdk/duration.ts';
import { createDpopProver, loadDpopKey } from '../../pep/dpop.ts';
import { CLOUDS, type CloudName } from '../../iam/types.ts';
import { collect } from '../argv.ts';
import type { CommandContext } from '../context.ts';
import { CliUsageError } from '../errors.ts';
import { invokingShellPid } from '../liveness.ts';
import { formatOption, mountOption } from '../options.ts';
import { CREDS_FORMATS, printCreds, printJson, type CredsFormat } from '../output.ts';
import { BrokerAnswerError, callBroker, type BrokerTarget } from './broker.ts';

interface CredsFlags {
  mount: string;
  format: CredsFormat;
  ttl?: string;
  read?: string[];
  write?: string[];
  audience?: string[];
  cloud?: CloudName;
  broker?: string;
  workload?: string;
  pid?: string;
  dpopKey?: string;
  wrapTtl?: string;
}

/** The public JWK of the private key in `file` (PEM or JWK); a problem is a usage error naming the file, never the key. */
export function dpopPublicJwk(file: string): JsonWebKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    throw new CliUsageError(`--dpop-key ${JSON.stringify(file)} cannot be read${typeof code === 'string' ? ` (${code})` : ''}`);
  }
  try {
    return createDpopProver(loadDpopKey(text)).publicJwk;
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/^(loadDpopKey|createDpopProver): /, '') : 'not a usable key';
    throw new CliUsageError(`--dpop-key ${JSON.stringify(file)}: ${reason}`);
  }
}

/** What the broker answers for POST /v1/tokens with a cloud. */
interface CloudAnswer {
  token: string;
  jti: string;
  lease_id: string;
  expires_at: string;
  cloud_credential?: { cloud: string; expires_at: string; env?: Record<string, string> };
  [key: string]: unknown;
}

/** `--broker` or TVM_BROKER_ADDR: an http(s) URL, or else a unix socket path. */
function brokerTarget(flags: CredsFlags, env: Record<string, string | undefined>): BrokerTarget {
  const addr = flags.broker ?? env.TVM_BROKER_ADDR;
  if (addr === undefined || addr.trim() === '') {
    throw new CliUsageError('--cloud goes through the broker: give --broker <url or unix socket path> or set TVM_BROKER_ADDR');
  }
  return /^https?:\/\//i.test(addr) ? { broker: addr } : { socket: addr };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `export KEY='value'` lines a POSIX shell can eval (single quotes, embedded ones closed and escaped). */
export function exportLines(vars: Record<string, string>): string {
  return Object.entries(vars)
    .filter(([k]) => ENV_NAME.test(k))
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'\n`)
    .join('');
}

async function cloudCreds(ctx: CommandContext, role: string, flags: CredsFlags): Promise<void> {
  const target = brokerTarget(flags, ctx.io.env);
  const call = async (method: string, path: string, body: unknown) => {
    try {
      return await callBroker(target, ctx.io.env, method, path, body);
    } catch (err) {
      // The broker's 400 names the caller's field: an input mistake, exit 2.
      if (err instanceof BrokerAnswerError && err.status === 400) throw new CliUsageError(err.message, { cause: err });
      throw err;
    }
  };
  let workload = flags.workload;
  if (workload === undefined) {
    // The invoking shell (or CI step) is the workload: when it exits the broker revokes the lease and the grant.
    // Launchers that exit with tvm (npx's `npm exec` and `sh -c`) are skipped.
    const pid = flags.pid !== undefined ? Number(flags.pid) : invokingShellPid(process.ppid);
    if (flags.pid !== undefined && !/^[1-9]\d*$/.test(flags.pid)) throw new CliUsageError(`--pid: ${JSON.stringify(flags.pid)} is not a process id`);
    if (!Number.isInteger(pid) || pid <= 1) throw new CliUsageError(`cannot tie the credential to the invoking shell (parent pid ${pid}); pass --pid <pid> or --workload <id>`);
    const w = (await call('POST', '/v1/workloads', { name: 'tvm-cli', pid })) as { id: string };
    workload = w.id;
  }
  const answer = (await call('POST', '/v1/tokens', {
    workload,
    role,
    cloud: flags.cloud,
    ...(flags.ttl !== undefined ? { ttl: flags.ttl } : {}),
    ...(flags.read ? { read: flags.read } : {}),
    ...(flags.write ? { write: flags.write } : {}),
    ...(flags.audience ? { audience: flags.audience } : {}),
  })) as CloudAnswer;
  if (flags.format === 'token') ctx.io.stdout(`${answer.token}\n`);
  else if (flags.format === 'env') ctx.io.stdout(exportLines(answer.cloud_credential?.env ?? {}));
  else printJson(ctx.io, answer);
}

export function registerCredsCommand(program: Command, ctx: CommandContext): void {
  program
    .command('creds')
    .description("issue a signed token for a role, under a renewable lease (narrow it with --ttl, --read, --write, --audience; bind it to a key with --dpop-key); --cloud: a cloud credential through the broker")
    .argument('<role>', 'the role to issue from')
    .option('--ttl <duration>', "requested ttl, at most the role's max_ttl, e.g. 2m")
    .option('--read <pattern>', "narrow the read scope; must be covered by the role's patterns (repeatable)", collect)
    .option('--write <pattern>', "narrow the write scope; must be covered by the role's patterns (repeatable)", collect)
    .option('--audience <aud>', "a subset of the role's audiences (repeatable)", collect)
    .addOption(new Option('--cloud <cloud>', "a cloud credential for the role's iam.<cloud> target, through the broker").choices(CLOUDS))
    .addOption(new Option('--broker <address>', 'with --cloud: the broker, an http://127.0.0.1:<port> URL or a unix socket path (default: TVM_BROKER_ADDR)'))
    .addOption(new Option('--workload <id>', "with --cloud: a registered workload (default: a new 'tvm-cli' workload that lives as long as the invoking shell)"))
    .option('--wrap-ttl <duration>', 'have Vault wrap the answer: print a single-use wrapping token (valid this long) instead of the token; `tvm unwrap` opens it')
    .option('--dpop-key <file>', 'bind the token to this private key (PEM PKCS8 or JWK JSON): its public JWK goes with the request, and resource servers then want a DPoP proof of it')
    .addOption(new Option('--pid <pid>', 'with --cloud and no --workload: the process whose exit revokes the credential (default: the invoking shell, past npx)'))
    .addOption(formatOption(CREDS_FORMATS, 'json'))
    .addOption(mountOption())
    .addHelpText(
      'after',
      `
Formats:
  json   the creds data plus lease_id, lease_duration, renewable (default);
         with --cloud, the broker's answer: token, lease and cloud_credential;
         with --dpop-key, also cnf_jkt: the key's thumbprint the token is bound to
  token  only the JWT
  env    TVM_TOKEN=..., TVM_LEASE_ID=..., TVM_EXPIRES_AT=... lines, quoted for a POSIX shell;
         with --cloud, export lines of the cloud's variables (AWS_ACCESS_KEY_ID, ...)

With --cloud the credential is the broker's: it is refreshed while the lease is
renewed and torn down when the lease is revoked, by default when the shell
that ran tvm exits.

Examples:
  $ tvm creds demo
  $ tvm creds app --ttl 2m --read 'db://orders/2024/*' --format token
  $ eval "$(tvm creds app --format env)"
  $ eval "$(tvm creds logs --cloud aws --format env --broker http://127.0.0.1:8300)"
  $ openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem
  $ tvm creds app --dpop-key key.pem --format token
  $ tvm creds app --wrap-ttl 5m --format token | ssh ci-runner 'tvm unwrap -'`,
    )
    .action(async (role: string, flags: CredsFlags) => {
      if (flags.cloud) {
        if (flags.dpopKey !== undefined) throw new CliUsageError('--dpop-key does not go with --cloud: a cloud exchanges the token without a DPoP proof');
        await cloudCreds(ctx, role, flags);
        return;
      }
      if (flags.broker !== undefined || flags.workload !== undefined) throw new CliUsageError('--broker and --workload go with --cloud');
      const dpopJwk = flags.dpopKey !== undefined ? dpopPublicJwk(flags.dpopKey) : undefined;
      const request = {
        ttl: flags.ttl,
        read: flags.read,
        write: flags.write,
        audience: flags.audience,
        ...(dpopJwk ? { dpop_jwk: dpopJwk } : {}),
      };
      if (flags.wrapTtl !== undefined) {
        try {
          if (parseDurationMs(flags.wrapTtl) < 1000) throw new Error('too short');
        } catch {
          throw new CliUsageError(`--wrap-ttl: ${JSON.stringify(flags.wrapTtl)} is not a duration of a second or more, e.g. 5m`);
        }
        const wrapped = await issueWrappedCreds(ctx.connect({ mount: flags.mount, wrapTtl: flags.wrapTtl }), role, request);
        if (flags.format === 'token') ctx.io.stdout(`${wrapped.token}\n`);
        else if (flags.format === 'json') printJson(ctx.io, wrapped);
        else ctx.io.stdout(`TVM_WRAPPING_TOKEN=${wrapped.token}\nTVM_WRAPPING_ACCESSOR=${wrapped.accessor}\n`);
        return;
      }
      const creds = await issueCreds(ctx.connect({ mount: flags.mount }), role, request);
      printCreds(ctx.io, flags.format, creds);
    });
}
