// HMAC of audited values, as Vault's audit devices do it: every secret string
// becomes `hmac-sha256:<hex>` of HMAC-SHA256 under the device's salt, so an
// operator holding a value can find it (sys/audit-hash answers its HMAC) and
// nobody reading the log can learn one.

import { createHmac } from 'node:crypto';

export const HMAC_PREFIX = 'hmac-sha256:';

export class AuditHasher {
  private readonly salt: Buffer;

  constructor(salt: Uint8Array) {
    if (salt.length < 16) throw new Error('an audit salt is at least 16 bytes');
    this.salt = Buffer.from(salt);
  }

  hash(value: string): string {
    return HMAC_PREFIX + createHmac('sha256', this.salt).update(value, 'utf8').digest('hex');
  }

  /**
   * A copy of the value with every string HMAC'd, at any depth, except a
   * top-level string (or list of strings) under a key in `clear` (values known
   * not to be secret, such as a jti or a role name). Numbers, booleans and
   * nulls are kept, as Vault does.
   */
  hashValue(value: unknown, clear: ReadonlySet<string> = NO_KEYS, depth = 0): unknown {
    if (typeof value === 'string') return this.hash(value);
    if (value === null || typeof value !== 'object') return value;
    // Deeper than any answer of ours goes: the rest as one HMAC of its JSON, never in clear.
    if (depth > 64) return this.hash(JSON.stringify(value));
    if (Array.isArray(value)) return value.map((v) => this.hashValue(v, NO_KEYS, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // Clear keys hold a string or a list of strings at the top level only; anything else under them is hashed.
      out[k] = depth === 0 && clear.has(k) && isPlain(v) ? v : this.hashValue(v, NO_KEYS, depth + 1);
    }
    return out;
  }
}

function isPlain(v: unknown): boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
}

const NO_KEYS: ReadonlySet<string> = new Set();
