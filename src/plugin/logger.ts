// Logs as go-hclog's JSON format, one object per line on stderr, which is what
// go-plugin's host parses and re-emits under the plugin's name:
//   {"@level":"info","@message":"...","@module":"tvm","@timestamp":"2026-01-02T03:04:05.123456Z", ...fields}
// Timestamps carry six fractional digits (microseconds) as hclog's do.
// Secrets never reach a log line: callers pass names and codes, not values.

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

export interface Logger {
  trace(message: string, fields?: Record<string, unknown>): void;
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  module?: string;
  write?: (line: string) => void;
  /** Microseconds since the epoch; injectable for tests. */
  nowMicros?: () => bigint;
}

/** Microseconds since the epoch, from the high-resolution clock. */
export function nowMicros(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

/** RFC 3339 UTC with exactly six fractional digits, as hclog prints. */
export function formatTimestamp(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (micros % 1_000_000n).toString().padStart(6, '0');
  return `${base}.${frac}Z`;
}

export function parseLevel(raw: string | undefined): LogLevel {
  const v = (raw ?? '').trim().toLowerCase();
  return v in RANK ? (v as LogLevel) : 'info';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? 'info'];
  const module = options.module ?? 'tvm';
  const write = options.write ?? ((line: string) => void process.stderr.write(line));
  const clock = options.nowMicros ?? nowMicros;
  const emit = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < min) return;
    const record: Record<string, unknown> = {
      '@level': level,
      '@message': message,
      '@module': module,
      '@timestamp': formatTimestamp(clock()),
    };
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (k.startsWith('@')) continue;
      record[k] = v instanceof Error ? v.message : v;
    }
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ '@level': level, '@message': message, '@module': module, '@timestamp': record['@timestamp'] });
    }
    write(`${line}\n`);
  };
  return {
    trace: (m, f) => emit('trace', m, f),
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
