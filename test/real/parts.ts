// The real parts scripts/real-parts installed into .cache/real (OpenBao,
// Terraform and its Vault provider, the Go conformance host, Vault itself):
// each part's status file says where it is, or why it is not there.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const REAL_DIR = join(REPO, '.cache/real');

export type PartName = 'openbao' | 'terraform' | 'provider' | 'go-host' | 'vault';

export interface RealPart {
  name: PartName;
  ok: boolean;
  version?: string;
  /** The binary (ok parts). */
  path?: string;
  /** Why the part is not here (a one-line skip reason), or '' when it is. */
  reason: string;
}

/** Reads `.cache/real/status/<name>`: `ok <version> <path>` or `unavailable: <reason>`. */
export function realPart(name: PartName): RealPart {
  const file = join(REAL_DIR, 'status', name);
  if (!existsSync(file)) return { name, ok: false, reason: `${name} is not installed: run scripts/real-parts ${name}` };
  const line = readFileSync(file, 'utf8').trim();
  const m = /^ok (\S+) (.+)$/.exec(line);
  if (m && existsSync(m[2])) return { name, ok: true, version: m[1], path: m[2], reason: '' };
  return { name, ok: false, reason: `${name}: ${line.replace(/^unavailable: /, '') || 'no status'}` };
}
