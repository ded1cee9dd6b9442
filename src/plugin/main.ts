// The plugin's entry point, the file Vault runs (bundled by
// scripts/build-plugin.mjs into dist/plugin/tvm-plugin).
//
// Environment read here and below:
//   VAULT_BACKEND_PLUGIN, PLUGIN_PROTOCOL_VERSIONS, PLUGIN_CLIENT_CERT,
//   PLUGIN_UNIX_SOCKET_DIR  set by Vault (go-plugin)
//   VAULT_API_ADDR          the issuer's base address (default http://127.0.0.1:8200);
//                           pass it with `vault plugin register -env=VAULT_API_ADDR=...`,
//                           or as the argument --api-addr=<url> (`-args=--api-addr=<url>`:
//                           OpenBao's plugin register has -args but no -env); the argument wins
//   TVM_LOG_LEVEL           trace|debug|info|warn|error (default info)

import * as grpc from '@grpc/grpc-js';
import { HandshakeError } from './handshake.ts';
import { createLogger, parseLevel } from './logger.ts';
import { withArguments } from './backend_service.ts';
import { startPlugin } from './server.ts';

export async function main(): Promise<void> {
  // Nothing but the handshake may reach stdout, and stderr carries only hclog JSON.
  const early = createLogger({ level: parseLevel(process.env.TVM_LOG_LEVEL) });
  console.log = console.info = console.debug = (...args: unknown[]) => early.debug(args.map(String).join(' '));
  console.warn = console.error = (...args: unknown[]) => early.warn(args.map(String).join(' '));
  process.emitWarning = ((warning: string | Error) =>
    early.warn(typeof warning === 'string' ? warning : warning.message, { warning: 'node' })) as typeof process.emitWarning;
  // Vault stops its plugins itself; a terminal's Ctrl-C must not kill them first.
  process.on('SIGINT', () => undefined);
  // Listening for SIGTERM from the start: the handshake line goes out inside startPlugin, and a host
  // that stops the plugin right after reading it must not find the default action (death, socket left).
  let plugin: Awaited<ReturnType<typeof startPlugin>> | undefined;
  let terminated = false;
  process.on('SIGTERM', () => {
    terminated = true;
    if (plugin) void plugin.stop('SIGTERM');
  });

  try {
    plugin = await startPlugin({
      env: withArguments(process.env, process.argv.slice(2)),
      stdout: (text) => void process.stdout.write(text),
      stderr: (text) => void process.stderr.write(text),
    });
  } catch (err) {
    const message = err instanceof HandshakeError ? err.message : `cannot start: ${(err as Error).message}`;
    process.stderr.write(`tvm-plugin: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    process.exit(1);
  }
  const { log } = plugin;
  grpc.setLogger({
    error: (...a: unknown[]) => log.error(a.map(String).join(' ')),
    info: (...a: unknown[]) => log.debug(a.map(String).join(' ')),
    debug: (...a: unknown[]) => log.trace(a.map(String).join(' ')),
  } as Console);
  if (terminated) void plugin.stop('SIGTERM');
  // The server went away (its end of our pipes closed): stop, rather than log the failure
  // into the same closed pipe forever (an orphaned plugin spun on EPIPE at a core's worth of CPU).
  const orphaned = (): void => process.exit(0);
  process.stdout.on('error', orphaned);
  process.stderr.on('error', orphaned);
  process.on('uncaughtException', (err) => {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') orphaned();
    log.error('uncaught exception', { error: err.message });
  });
  process.on('unhandledRejection', (err) => log.error('unhandled rejection', { error: (err as Error)?.message ?? String(err) }));
  await plugin.stopped;
  process.exit(0);
}

void main();
