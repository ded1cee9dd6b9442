// What a command gets from main: where to print, the environment, how to reach
// Vault, and the process hooks `server` needs. All injectable for tests.

import { connect, type Env, type VaultConnection } from '../client/connection.ts';
import type { RunningServer, ServerOptions } from '../server/index.ts';

/** The dev server's entry point (src/server/index.ts), narrowed to what the CLI uses so tests can stand in. */
export type StartServer = (options: ServerOptions) => Promise<Pick<RunningServer, 'address' | 'rootToken' | 'close'>>;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Env;
  /** Reads all of stdin (for `token verify -`). */
  readStdin?(): Promise<string>;
  /** Subscribes to SIGINT/SIGTERM; returns the unsubscribe function. */
  onSignal(handler: (signal: string) => void): () => void;
  /** Ends the process at once (a second signal during shutdown). */
  exit(code: number): void;
  /** Starts the dev server; defaults to src/server/index.ts. */
  startServer?: StartServer;
}

export interface CommandContext {
  io: CliIo;
  /** A connection to Vault from the environment, for the given mount. */
  connect(options?: { mount?: string; wrapTtl?: string; token?: string }): VaultConnection;
}

export function commandContext(io: CliIo): CommandContext {
  return {
    io,
    connect: (options = {}) =>
      connect({
        env: io.env,
        mount: options.mount,
        ...(options.wrapTtl !== undefined ? { wrapTtl: options.wrapTtl } : {}),
        ...(options.token !== undefined ? { token: options.token } : {}),
      }),
  };
}
