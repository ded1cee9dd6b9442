// What a SQLite error code says about the files, for the stores that use
// SQLite (the dev server's storage and the broker's registry).

/**
 * SQLite's codes for a write that may have reached the disk in part (an fsync
 * or a write that failed): the files' state is unknown, so a store stops
 * writing to them. Self-contained: the broker's writer thread runs it from its
 * source text.
 */
export function isIoFailure(code: unknown): boolean {
  return typeof code === 'string' && (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL' || code === 'SQLITE_CORRUPT');
}
