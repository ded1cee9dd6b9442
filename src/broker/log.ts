// Structured JSON logs (pino). Fields that could hold a secret are redacted as
// a second line of defence; the broker never passes a token to a log call.

import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACT_PATHS = ['token', '*.token', 'secret_id', '*.secret_id', 'jwt', '*.jwt', 'client_token', '*.client_token'];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const base = { level: options.level ?? 'info', base: { svc: 'tvm-broker' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  return options.destination ? pino(base, options.destination) : pino(base);
}
