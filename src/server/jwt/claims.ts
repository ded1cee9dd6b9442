// Claims of a verified JWT as a login reads them: by name or JSON pointer,
// and checked against a role's bound claims (exact values, or globs).

import { showValue } from '../../sdk/errors.ts';
import type { JwtRoleEntry } from './roles.ts';

/** A claim by name, or by JSON pointer (`/a/b`, RFC 6901) when the name starts with `/`. */
export function claimAt(claims: Record<string, unknown>, name: string): unknown {
  if (!name.startsWith('/')) return claims[name];
  let cur: unknown = claims;
  for (const raw of name.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = Array.isArray(cur) ? cur[Number(key)] : (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** The first unmet bound claim, described; null when all are met. */
export function boundClaimsProblem(role: JwtRoleEntry, claims: Record<string, unknown>): string | null {
  for (const [name, bound] of Object.entries(role.bound_claims ?? {})) {
    const actual = claimAt(claims, name);
    if (actual === undefined || actual === null) return `claim ${showValue(name)} is missing`;
    const actualValues = Array.isArray(actual) ? actual : [actual];
    if (!actualValues.every((v) => ['string', 'boolean', 'number'].includes(typeof v))) {
      return `claim ${showValue(name)} is not a string, bool, number or list of them`;
    }
    const expected = Array.isArray(bound) ? bound : [bound];
    const found = expected.some((e) =>
      actualValues.some((a) =>
        role.bound_claims_type === 'glob' ? typeof a === 'string' && globMatch(String(e), a) : sameValue(e, a),
      ),
    );
    if (!found) return `claim ${showValue(name)} does not match any associated bound claim values`;
  }
  return null;
}

function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(value);
}

function sameValue(expected: unknown, actual: unknown): boolean {
  if (typeof expected === typeof actual) return expected === actual;
  // Bound claims written through Terraform are strings: let them match a numeric or boolean claim.
  if (typeof expected === 'string' && (typeof actual === 'number' || typeof actual === 'boolean')) return expected === String(actual);
  return false;
}
