// How the server's parts log: a level, a message and structured fields.

/** Structured fields, never a secret (tokens, lease ids and secret ids are left out or hashed). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}
