// The seal stanza for tests that start a persistent server: a fresh 32-byte
// key (crypto.randomBytes) in a 0600 file in the test's temp dir.
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The path of `dir`'s seal key `id`, created on first use (a restart in the same dir reuses it). */
export function sealKeyFile(dir: string, id = 'test-1'): string {
  const path = join(dir, `seal-${id}.key`);
  if (!existsSync(path)) writeFileSync(path, randomBytes(32), { mode: 0o600 });
  return path;
}

/** A `seal "static"` stanza reading `dir`'s key `id` (see sealKeyFile). */
export function sealStanza(dir: string, id = 'test-1'): string {
  return `seal "static" {\n  current_key_id = "${id}"\n  current_key = "file://${sealKeyFile(dir, id)}"\n}\n`;
}
