// What the storage suites share: a temp folder of fresh database paths, and
// text to and from the bytes storage holds.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temp folder whose freshDbPath() names a new database each call; remove() at the end. */
export function dbPaths(prefix: string): { dir: string; freshDbPath: () => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let counter = 0;
  return { dir, freshDbPath: () => join(dir, `db-${++counter}`, 'tvm.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (value: Uint8Array | null): string | null => (value === null ? null : new TextDecoder().decode(value));
