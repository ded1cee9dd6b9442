// tvm broker run|status|leases|revoke: the broker daemon and its local API.

import { UNREACHABLE_REASONS } from '../../client/connection.ts';
import { request } from 'node:http';
import { Option, type Command } from 'commander';
import type { CommandContext } from '../context.ts';
import { CliError, CliUsageError } from '../errors.ts';
import { OUTPUT_FORMATS, formatTable, printJson, type OutputFormat } from '../output.ts';
import { formatOption } from '../options.ts';

const DEFAULT_BROKER = 'http://127.0.0.1:8300';

export interface BrokerTarget {
  broker?: string;
  socket?: string;
}

/** The broker answered 4xx/5xx: its message, and the status (400: the caller's input). */
export class BrokerAnswerError extends CliError {
  readonly status: number;

  constructor(status: number, message: string) {
    super('ERR_NOT_FOUND', message);
    this.name = 'BrokerAnswerError';
    this.status = status;
  }
}

/** Calls the broker's local API (TCP or unix socket), with a JSON body when given. */
export async function callBroker(target: BrokerTarget, env: Record<string, string | undefined>, method: string, path: string, body?: unknown): Promise<unknown> {
  const socket = target.socket ?? (target.broker ? undefined : env.TVM_BROKER_SOCKET);
  // With a socket the address is not read (it may be the socket path itself, from TVM_BROKER_ADDR).
  const base = new URL(socket ? DEFAULT_BROKER : (target.broker ?? env.TVM_BROKER_ADDR ?? DEFAULT_BROKER));
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
  return new Promise((resolve, reject) => {
    const req = request(
      socket ? { socketPath: socket, path, method, headers } : { host: base.hostname, port: base.port, path, method, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            body = null;
          }
          if ((res.statusCode ?? 500) >= 400) {
            const errors = (body as { errors?: string[] } | null)?.errors ?? [`HTTP ${res.statusCode}`];
            reject(new BrokerAnswerError(res.statusCode ?? 500, `broker: ${errors.join('; ')}`));
          } else resolve(body);
        });
      },
    );
    req.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      // The Vault client's words for the same failure (connection refused, host not found, ...).
      const why = UNREACHABLE_REASONS[code] ?? (code ? `request failed (${code})` : err.message);
      reject(new CliError('ERR_NOT_FOUND', `cannot reach the broker at ${socket ?? base.origin}: ${why}`));
    });
    req.end(payload);
  });
}

function targetOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--broker <url>', `the broker's local API (default: TVM_BROKER_ADDR, then ${DEFAULT_BROKER})`))
    .addOption(new Option('--socket <path>', "the broker's unix socket (default: TVM_BROKER_SOCKET)"));
}

/** Sends process warnings to `to` instead of Node's stderr printer; returns the function that puts the printer back. */
export function routeProcessWarnings(to: (warning: Error) => void): () => void {
  const previous = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', to);
  return () => {
    process.off('warning', to);
    for (const listener of previous) process.on('warning', listener);
  };
}

export function registerBrokerCommands(program: Command, ctx: CommandContext): void {
  const broker = program.command('broker').description('the lease broker: keeps workloads\' leases alive while they live and revokes them when they should die');

  broker
    .command('run')
    .description('run the broker daemon (SIGTERM: stop, revoking leases when revoke_on_shutdown)')
    .requiredOption('--config <file>', 'broker config (HCL or JSON), e.g. vault-config/broker.hcl')
    .action(async (flags: { config: string }) => {
      // Loaded here, not at start-up: the broker and its stores are needed by this command alone.
      const { BrokerError, createLogger, loadConfig, startBroker } = await import('../../broker/index.ts');
      // An unusable config file (or a file it names) is bad input: exit 2 with the one line naming the problem.
      const usable = <T>(p: Promise<T>): Promise<T> =>
        p.catch((err: unknown) => {
          if (err instanceof BrokerError && err.code === 'ERR_CONFIG') {
            const where = err.message.includes(flags.config) ? '' : ` ${flags.config}`;
            throw new CliUsageError(`broker config${where}: ${err.message}`, { cause: err });
          }
          throw err;
        });
      const config = await usable(loadConfig(flags.config, ctx.io.env));
      const log = createLogger({ level: config.logLevel, to: config.logTo });
      // Its log is JSON lines: Node's warnings (the AWS SDK's notice about the Node version, say) become lines of it too.
      const restoreWarnings = routeProcessWarnings((warning) => log.warn({ warning: warning.name, detail: warning.message.replace(/\s*\n\s*/g, ' ') }, 'node warning'));
      try {
        const running = await usable(startBroker(config, { log }));
        ctx.io.stderr(`tvm broker: listening on ${[running.url, running.socket].filter(Boolean).join(' and ')}\n`);
        await new Promise<void>((resolve) => {
          let signals = 0;
          const off = ctx.io.onSignal(() => {
            signals++;
            // First signal: graceful; second: forced.
            void running.stop({ force: signals > 1 }).then(() => {
              off();
              resolve();
            });
          });
        });
      } finally {
        restoreWarnings();
      }
    });

  targetOptions(broker.command('status').description('replica, store and lease counts by state'))
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .action(async (flags: BrokerTarget & { format: OutputFormat }) => {
      const s = (await callBroker(flags, ctx.io.env, 'GET', '/v1/status')) as Record<string, unknown>;
      if (flags.format === 'json') printJson(ctx.io, s);
      else ctx.io.stdout(formatTable(s));
    });

  targetOptions(broker.command('leases').description('leases in the registry (default: live ones; irrevocable ones are always shown)'))
    .option('--state <states>', 'comma-separated states, e.g. active,irrevocable')
    .option('--limit <n>', 'at most this many', '1000')
    .addOption(formatOption(OUTPUT_FORMATS, 'table'))
    .action(async (flags: BrokerTarget & { state?: string; limit: string; format: OutputFormat }) => {
      const q = new URLSearchParams({ limit: flags.limit });
      if (flags.state) q.set('state', flags.state);
      const { leases } = (await callBroker(flags, ctx.io.env, 'GET', `/v1/leases?${q}`)) as { leases: Record<string, unknown>[] };
      if (flags.format === 'json') {
        printJson(ctx.io, leases);
        return;
      }
      const cols = ['id', 'workload', 'role', 'state', 'expires_at', 'renewals', 'reason', 'cloud'];
      // cloud: the lease's grant as <cloud>:<state> (aws:active, kubernetes:cleanup, ...).
      const cell = (l: Record<string, unknown>, c: string) => (c === 'cloud' && l.cloud ? `${String(l.cloud)}:${String(l.cloud_state)}` : String(l[c] ?? '-'));
      const rows = [cols, ...leases.map((l) => cols.map((c) => cell(l, c)))];
      const widths = cols.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      ctx.io.stdout(rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n');
    });

  targetOptions(broker.command('revoke').description('revoke now: a token (jti), a lease (id or Vault lease id), or with --workload all of a workload\'s leases'))
    .argument('<id>', 'jti, lease id, or workload id with --workload')
    .option('--workload', 'the id is a workload: end it and revoke all its leases')
    .action(async (id: string, flags: BrokerTarget & { workload?: boolean }) => {
      if (id.trim() === '') throw new CliUsageError('an id is required');
      if (flags.workload) {
        const r = (await callBroker(flags, ctx.io.env, 'DELETE', `/v1/workloads/${encodeURIComponent(id)}`)) as { revoking: number };
        ctx.io.stdout(`Success! Workload ${id} ended; revoking ${r.revoking} lease(s)\n`);
        return;
      }
      const r = (await callBroker(flags, ctx.io.env, 'DELETE', `/v1/tokens/${encodeURIComponent(id)}`)) as { id: string; state: string };
      ctx.io.stdout(`Success! Lease ${r.id} is ${r.state}\n`);
    });
}
