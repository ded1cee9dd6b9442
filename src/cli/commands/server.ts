// tvm server -dev | -config <file>: run the Vault-compatible server with the
// tvm engine until SIGINT/SIGTERM (graceful), a second signal forcing the exit.

import { Option, type Command } from 'commander';
import type { ServerOptions } from '../../server/index.ts';
import type { CommandContext, StartServer } from '../context.ts';
import { CliUsageError } from '../errors.ts';

interface ServerFlags {
  dev?: boolean;
  devRootTokenId?: string;
  devListenAddress?: string;
  config?: string;
  quiet?: boolean;
}

/** The server options from flags, with Vault's VAULT_DEV_* environment variables as fallbacks. */
export function serverOptions(flags: ServerFlags, env: Record<string, string | undefined>): ServerOptions {
  if (!flags.dev && !flags.config) throw new CliUsageError('server needs -dev (in-memory) or -config <file> (persistent)');
  if (flags.dev && flags.config) {
    throw new CliUsageError('-dev and -config exclude each other: -dev runs in memory with a printed root token, -config runs from the file\'s storage and listener');
  }
  if (!flags.dev && (flags.devRootTokenId !== undefined || flags.devListenAddress !== undefined)) {
    throw new CliUsageError('-dev-root-token-id and -dev-listen-address need -dev');
  }
  const options: ServerOptions = { dev: flags.dev === true, quiet: flags.quiet === true };
  if (flags.config) options.configPath = flags.config;
  if (flags.dev) {
    const rootTokenId = flags.devRootTokenId ?? env.VAULT_DEV_ROOT_TOKEN_ID;
    const listenAddress = flags.devListenAddress ?? env.VAULT_DEV_LISTEN_ADDRESS;
    if (rootTokenId !== undefined) {
      if (rootTokenId.trim() === '') throw new CliUsageError('-dev-root-token-id must not be empty');
      options.rootTokenId = rootTokenId;
    }
    if (listenAddress !== undefined) {
      if (!/^(\[[0-9A-Fa-f:.]+\]|[^\s:/]+):\d{1,5}$/.test(listenAddress)) {
        throw new CliUsageError(`-dev-listen-address ${JSON.stringify(listenAddress)} must be host:port, e.g. 127.0.0.1:8200`);
      }
      options.listenAddress = listenAddress;
    }
  }
  return options;
}

const defaultStartServer: StartServer = async (options) => {
  // Loaded on demand: the other commands never need the server's code.
  const { startServer } = await import('../../server/index.ts');
  return startServer(options);
};

/**
 * Runs until the first signal, then closes the server once and resolves 0.
 * A second signal while closing forces the exit.
 */
export async function runServer(ctx: CommandContext, options: ServerOptions, start: StartServer): Promise<void> {
  const { io } = ctx;
  // The server prints the banner (address, root token when this start created it,
  // the commands to try): it alone knows whether this start initialised storage.
  const handle = await start({ ...options, output: (text) => io.stdout(text) });

  await new Promise<void>((resolve, reject) => {
    let closing = false;
    const off = io.onSignal((signal) => {
      if (closing) {
        io.stderr(`tvm: ${signal} again, exiting without waiting for shutdown\n`);
        off();
        io.exit(1);
        return;
      }
      closing = true;
      if (!options.quiet) io.stdout(`${signal} received, shutting down (send it again to force)\n`);
      handle.close().then(
        () => {
          off();
          if (!options.quiet) io.stdout(`tvm server at ${handle.address} stopped\n`);
          resolve();
        },
        (err: unknown) => {
          off();
          reject(err);
        },
      );
    });
  });
}

export function registerServerCommand(program: Command, ctx: CommandContext): void {
  program
    .command('server')
    .description('run a Vault-compatible server with the tvm engine mounted at tvm/ (Vault-style flags: -dev, -config)')
    .option('--dev', 'in-memory dev mode: unsealed, root token printed, a demo role')
    .option('--dev-root-token-id <id>', 'the root token to use in dev mode (env VAULT_DEV_ROOT_TOKEN_ID)')
    .option('--dev-listen-address <host:port>', 'where dev mode listens (env VAULT_DEV_LISTEN_ADDRESS), default 127.0.0.1:8200')
    .option('--config <file>', 'run from a config file: persistent storage, listener, api_addr, TLS')
    .addOption(new Option('--quiet', 'print no banner'))
    .addHelpText(
      'after',
      `
Flags may be written with one dash, as Vault's are (-dev) or two (--dev).

Examples:
  $ tvm server -dev
  $ tvm server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:8200
  $ TVM_SEAL_KEY=$(openssl rand -hex 32) tvm server -config vault-config/dev.hcl`,
    )
    .action(async (flags: ServerFlags) => {
      const options = serverOptions(flags, ctx.io.env);
      await runServer(ctx, options, ctx.io.startServer ?? defaultStartServer);
    });
}
