// What the clouds' scope translations share (pure): walking a grant's patterns
// of one scheme, each refused with its field (`read[i]` / `write[i]`) when the
// cloud cannot express it exactly.

import { IamFieldError } from './errors.ts';
import type { Scopes } from './types.ts';

/**
 * Visits each read, then each write pattern of one cloud's scheme (`ours`), in
 * order, parsed: `parse` gives the pattern's meaning or why the cloud cannot
 * express it exactly (refused as IamFieldError naming the field, with the
 * pattern). Other schemes are skipped.
 */
export function forEachScope<T extends object>(
  scopes: Scopes,
  ours: (pattern: string) => boolean,
  parse: (pattern: string) => T | string,
  visit: (access: 'read' | 'write', parsed: T, field: string, pattern: string) => void,
): void {
  for (const access of ['read', 'write'] as const) {
    scopes[access].forEach((pattern, i) => {
      if (!ours(pattern)) return;
      const field = `${access}[${i}]`;
      const parsed = parse(pattern);
      if (typeof parsed === 'string') throw new IamFieldError(field, `${pattern}: ${parsed}`);
      visit(access, parsed, field, pattern);
    });
  }
}
