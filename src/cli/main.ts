// The `tvm` entry point: builds the commander program, runs it, and is the one
// place that turns errors into an exit code and a single `tvm: <message>` line.

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { normaliseArgv } from './argv.ts';
import { registerAuditCommands } from './commands/audit.ts';
import { registerUnwrapCommand } from './commands/unwrap.ts';
import { registerBrokerCommands } from './commands/broker.ts';
import { registerCredsCommand } from './commands/creds.ts';
import { registerKeysCommands } from './commands/keys.ts';
import { registerLeaseCommands } from './commands/lease.ts';
import { registerOperatorCommands } from './commands/operator.ts';
import { registerPluginCommands } from './commands/plugin.ts';
import { registerRoleCommands } from './commands/role.ts';
import { registerServerCommand } from './commands/server.ts';
import { registerTokenCommands } from './commands/token.ts';
import { commandContext, type CliIo } from './context.ts';
import { EXIT_OK, EXIT_USAGE, errorLine, exitCodeFor } from './errors.ts';

/** What tests (or embedders) may replace; anything left out uses the process. */
export type MainIo = Partial<CliIo>;

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function processSignals(handler: (signal: string) => void): () => void {
  const onSignal = (signal: NodeJS.Signals) => handler(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

async function readProcessStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function withDefaults(io: MainIo): CliIo {
  return {
    stdout: io.stdout ?? ((text) => void process.stdout.write(text)),
    stderr: io.stderr ?? ((text) => void process.stderr.write(text)),
    env: io.env ?? process.env,
    readStdin: io.readStdin ?? readProcessStdin,
    onSignal: io.onSignal ?? processSignals,
    exit: io.exit ?? ((code) => process.exit(code)),
    startServer: io.startServer,
  };
}

export function buildProgram(io: CliIo): Command {
  const program = new Command('tvm');
  // Set before adding commands: subcommands inherit both.
  program
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text),
      writeErr: (text) => io.stderr(text),
      // main prints the one error line itself.
      outputError: () => undefined,
    })
    .description(
      'tvm: a token vending machine for HashiCorp Vault. Reads VAULT_ADDR and VAULT_TOKEN (or ~/.vault-token) as the vault CLI does.',
    )
    .version(version(), '--version', 'print the version')
    .helpCommand(true)
    .addHelpText(
      'after',
      `
Exit codes: 0 success; 1 the request failed (server error, permission denied,
unreachable server, invalid token); 2 bad usage or input (including Vault's 400 answers).

Quick start:
  $ tvm server -dev                 # in one shell
  $ export VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=<root token>
  $ tvm creds demo`,
    );

  const ctx = commandContext(io);
  registerServerCommand(program, ctx);
  registerRoleCommands(program, ctx);
  registerCredsCommand(program, ctx);
  registerLeaseCommands(program, ctx);
  registerKeysCommands(program, ctx);
  registerTokenCommands(program, ctx);
  registerPluginCommands(program, ctx);
  registerBrokerCommands(program, ctx);
  registerOperatorCommands(program, ctx);
  registerAuditCommands(program, ctx);
  registerUnwrapCommand(program, ctx);
  return program;
}

/** Every long option name of the program and its subcommands, without dashes (plus `help`). */
function longFlagNames(program: Command): Set<string> {
  const names = new Set<string>(['help', 'version']);
  const walk = (cmd: Command) => {
    for (const opt of cmd.options) if (opt.long) names.add(opt.long.replace(/^--/, ''));
    for (const sub of cmd.commands) walk(sub);
  };
  walk(program);
  return names;
}

/** Runs the CLI with `argv` as process.argv holds it (node, script, args...). Resolves the exit code. */
export async function main(argv: readonly string[], ioOverrides: MainIo = {}): Promise<number> {
  const io = withDefaults(ioOverrides);
  try {
    const program = buildProgram(io);
    const args = normaliseArgv(argv.slice(2), longFlagNames(program));
    await program.parseAsync(args, { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end parsing with an "error" that is a success.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
      // Help printed because the command line was incomplete (`tvm role`).
      if (err.code === 'commander.help') return EXIT_USAGE;
      const message = err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      io.stderr(errorLine(`${message} (see --help)`));
      return EXIT_USAGE;
    }
    io.stderr(errorLine(err));
    if (io.env.TVM_DEBUG && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
    return exitCodeFor(err);
  }
}
