// What every <cloud>/target.ts parser does first with `iam.<cloud>` as the
// user wrote it, before it reads its own fields.

import { IamFieldError } from './errors.ts';

export interface TargetShape {
  /** What the object should hold, after "expected an object with ". */
  expected: string;
  /** Every field the target knows. */
  fields: readonly string[];
  /** The unknown-field message lists them as "any of ..." (fields that may each be absent). */
  anyOf?: boolean;
}

/**
 * `raw` as an object whose keys are all fields of `shape`. Throws
 * IamFieldError naming `field` when it is not an object, or `<field>.<key>`
 * for a key the target does not know.
 */
export function targetObject(raw: unknown, field: string, shape: TargetShape): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new IamFieldError(field, `expected an object with ${shape.expected}`);
  }
  const input = raw as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!shape.fields.includes(key)) {
      throw new IamFieldError(`${field}.${key}`, `unknown field; expected ${shape.anyOf ? 'any of ' : ''}${shape.fields.join(', ')}`);
    }
  }
  return input;
}
