// Structured JSON logs (pino). Fields that could hold a secret are redacted as
// a second line of defence; the broker never passes a token to a log call.

import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACT_PATHS = ['token', '*.token', 'secret_id', '*.secret_id', 'jwt', '*.jwt', 'client_token', '*.client_token'];

/**
 * `to`: "stderr" (the default: a daemon keeps stdout clean), "stdout", or a file
 * path (appended to). `destination`: any stream (tests); it wins over `to`.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream; to?: string } = {}): Logger {
  const base = { level: options.level ?? 'info', base: { svc: 'tvm-broker' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  const to = options.to ?? 'stderr';
  const dest = to === 'stderr' ? 2 : to === 'stdout' ? 1 : to;
  return pino(base, options.destination ?? pino.destination({ dest, sync: true, mkdir: typeof dest === 'string' }));
}
