import { createServer } from 'node:net';
import { main, type MainIo } from '../../src/cli/main.ts';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tvm <args...>` in-process with the given env (nothing from the real process env). */
export async function run(args: string[], env: Record<string, string | undefined> = {}, extra: MainIo = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'tvm', ...args], {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env,
    readStdin: async () => '',
    onSignal: () => () => undefined,
    exit: () => undefined,
    ...extra,
  });
  return { code, stdout, stderr };
}

/** A local port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** stderr is exactly one `tvm: ...` line, with no stack trace. */
export function expectOneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  if (lines.length !== 1) throw new Error(`expected one stderr line, got ${lines.length}: ${JSON.stringify(stderr)}`);
  if (!lines[0].startsWith('tvm: ')) throw new Error(`stderr line does not start with "tvm: ": ${lines[0]}`);
  if (/\n\s+at |Error:\s|\.ts:\d+/.test(stderr)) throw new Error(`stack trace in stderr: ${stderr}`);
  return lines[0];
}
