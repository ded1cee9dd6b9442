// Field checks for the server's own backends (sys, the token store): they
// read the raw request data with the words Vault's clients know ("missing
// required field token", "invalid ttl: ..."). A value that may be a secret (a
// token, an accessor, a wrapping token) is never shown, only its type. The
// routes declare these fields (`raw`, shownAs the type) for help and OpenAPI.

import { parseDurationMs } from '../sdk/duration.ts';
import { describeType, showValue } from '../sdk/errors.ts';
import type { FieldSchema, FieldType } from '../sdk/fields.ts';
import { badRequest } from './errors.ts';

type Data = Record<string, unknown>;

export function stringField(data: Data, name: string, required = false): string | undefined {
  const v = data[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw badRequest(`missing required field ${name}`);
    return undefined;
  }
  if (typeof v !== 'string') throw badRequest(`invalid ${name}: expected a string, got ${describeType(v)}`);
  return v;
}

export function durationField(data: Data, name: string): number | undefined {
  const v = data[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw badRequest(`invalid ${name}: expected a duration such as "90s", "1h" or integer seconds, got ${describeType(v)}`);
  }
  try {
    return parseDurationMs(v);
  } catch (err) {
    throw badRequest(`invalid ${name}: ${(err as Error).message}`);
  }
}

export function boolField(data: Data, name: string, fallback: boolean): boolean {
  const v = data[name];
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 1) return true;
  if (v === 'false' || v === '0' || v === 0) return false;
  throw badRequest(`invalid ${name}: expected true or false`);
}

export function intField(data: Data, name: string, fallback: number): number {
  const v = data[name];
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw badRequest(`invalid ${name}: expected a non-negative integer`);
  return n;
}

export function stringListField(data: Data, name: string): string[] | undefined {
  const v = data[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? [] : v.split(',').map((s) => s.trim());
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw badRequest(`invalid ${name}: expected a list of strings`);
}

export function stringMapField(data: Data, name: string): Record<string, string> | null {
  const v = data[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`invalid ${name}: expected an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Data)) {
    if (typeof val !== 'string') throw badRequest(`invalid ${name}.${showValue(k, 40)}: expected a string, got ${describeType(val)}`);
    out[k] = val;
  }
  return Object.keys(out).length > 0 ? out : null;
}

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/** A field the handler checks itself with the helpers above, declared as the type clients see. */
export function checked(type: Exclude<FieldType, 'raw'>, description: string, options: { secret?: boolean; required?: boolean } = {}): FieldSchema {
  return { type: 'raw', shownAs: type, description, ...options };
}
