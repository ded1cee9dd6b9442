// Typed request fields, as Vault's framework declares and parses them: each
// route names its fields (type, default, description, whether the value is
// a secret), and every supplied value is parsed to its type before any
// handler runs, so handlers only see well-typed data.

import { parseDurationMs } from './duration.ts';
import { describeType, EngineError, invalidField, showValue } from './errors.ts';
import { parseJsonBounded } from './json.ts';

/** The longest string a field takes. */
const MAX_FIELD_BYTES = 64 * 1024;

export type FieldType =
  | 'string'
  | 'int'
  | 'bool'
  | 'duration' // Vault duration string ("90s", "1h30m") or integer seconds; parsed to ms
  | 'string_list' // a JSON list of strings, or one comma-separated string
  | 'string_map' // an object of string values
  | 'object' // any JSON object, kept as given
  | 'raw'; // any JSON value, kept as given (the handler checks it)

export interface FieldSchema {
  type: FieldType;
  description: string;
  default?: unknown;
  required?: boolean;
  /** The field can hold a secret (a token, a secret id, a key): errors name it, never show its value. */
  secret?: boolean;
  /**
   * For a `raw` field the handler checks itself (the server's own backends,
   * whose error words clients match): the type help and OpenAPI show.
   */
  shownAs?: Exclude<FieldType, 'raw'>;
}

export type Fields = Record<string, FieldSchema>;

/** Parsed, validated request fields (path captures and body). */
export class FieldData {
  private readonly values: Map<string, unknown>;
  private readonly schema: Fields;

  constructor(schema: Fields, values: Map<string, unknown>) {
    this.schema = schema;
    this.values = values;
  }

  /** Whether the caller supplied the field (Vault's GetOk). */
  has(name: string): boolean {
    return this.values.has(name);
  }

  /** The parsed value, or the declared default (or the type's zero value). */
  get<T>(name: string): T {
    if (this.values.has(name)) return this.values.get(name) as T;
    const field = this.schema[name];
    if (!field) throw new EngineError('ERR_INTERNAL', `field ${name} is not declared`);
    if (field.default !== undefined) return parseField(name, field, field.default) as T;
    return zeroValue(field.type) as T;
  }

  /** The supplied value, or undefined. */
  optional<T>(name: string): T | undefined {
    return this.values.has(name) ? (this.values.get(name) as T) : undefined;
  }
}

/** How parseFields treats what the route does not declare, and whether required fields are checked. */
export interface ParseMode {
  /** Fields no route declares: refused with a 400 naming them, or skipped (the caller may warn). */
  unknown: 'refuse' | 'skip';
  /** Check required fields (writes); an empty string counts as missing, as in Vault's auth methods. */
  required: boolean;
}

/**
 * Validates the request against the route's fields: unknown fields are refused
 * or skipped as the mode says, every supplied value is parsed to its type, and
 * required fields must be there (on writes).
 */
export function parseFields(
  route: { fields: Fields },
  captures: Record<string, string>,
  data: Record<string, unknown>,
  mode: ParseMode,
): FieldData {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new EngineError('ERR_INVALID_REQUEST', 'request body must be a JSON object');
  }
  const values = new Map<string, unknown>();
  for (const [name, raw] of Object.entries(captures)) {
    if (raw === undefined) continue;
    values.set(name, raw);
  }
  for (const [name, raw] of Object.entries(data)) {
    const schema = route.fields[name];
    if (!schema) {
      if (mode.unknown === 'skip') continue;
      const known = Object.keys(route.fields).filter((k) => !(k in captures));
      throw new EngineError(
        'ERR_UNKNOWN_FIELD',
        `unknown field ${showValue(name)}${known.length ? `; this path accepts: ${known.join(', ')}` : ''}`,
        { field: name },
      );
    }
    if (name in captures) {
      if (raw !== captures[name]) throw invalidField(name, `body value ${shown(schema, raw)} contradicts the path`);
      continue;
    }
    if (raw === null || raw === undefined) continue;
    values.set(name, parseField(name, schema, raw));
  }
  if (mode.required) {
    for (const [name, schema] of Object.entries(route.fields)) {
      if (schema.required && (!values.has(name) || values.get(name) === '')) {
        throw new EngineError('ERR_MISSING_FIELD', `missing required field ${name}`, { field: name });
      }
    }
  }
  return new FieldData(route.fields, values);
}

function zeroValue(type: FieldType): unknown {
  switch (type) {
    case 'string':
      return '';
    case 'int':
    case 'duration':
      return 0;
    case 'bool':
      return false;
    case 'string_list':
      return [];
    case 'string_map':
    case 'object':
      return {};
    case 'raw':
      return undefined;
  }
}

/** A value as an error message may show it: a secret field's only by its type. */
function shown(schema: FieldSchema, raw: unknown): string {
  return schema.secret ? describeType(raw) : showValue(raw);
}

function parseField(name: string, schema: FieldSchema, raw: unknown): unknown {
  const got = (v: unknown): string => shown(schema, v);
  // A raw value is the handler's to check (a policy document may be long).
  if (schema.type === 'raw') return raw;
  if (typeof raw === 'string' && raw.length > MAX_FIELD_BYTES) {
    throw invalidField(name, `value is ${raw.length} characters; at most ${MAX_FIELD_BYTES} are accepted`);
  }
  switch (schema.type) {
    case 'string':
      if (typeof raw === 'string') return raw;
      // A secret is never a number: refused, and nothing of the value is shown.
      if (schema.secret) throw invalidField(name, 'expected a string');
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      throw invalidField(name, `expected a string, got ${got(raw)}`);
    case 'int': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
        throw invalidField(name, `expected an integer, got ${got(raw)}`);
      }
      return n;
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw invalidField(name, `expected true or false, got ${got(raw)}`);
    case 'duration':
      if (typeof raw !== 'string' && typeof raw !== 'number') {
        throw invalidField(name, `expected a duration such as "90s", "15m", "1h" or integer seconds, got ${got(raw)}`);
      }
      try {
        return parseDurationMs(raw);
      } catch (err) {
        throw invalidField(name, (err as Error).message);
      }
    case 'string_list': {
      let list: unknown[];
      if (typeof raw === 'string') list = raw === '' ? [] : raw.split(',').map((s) => s.trim());
      else if (Array.isArray(raw)) list = raw;
      else throw invalidField(name, `expected a list of strings, got ${got(raw)}`);
      if (list.length > 256) throw invalidField(name, `${list.length} entries; at most 256 are accepted`);
      return list.map((item, i) => {
        if (typeof item !== 'string') throw invalidField(`${name}[${i}]`, `expected a string, got ${got(item)}`);
        return item;
      });
    }
    case 'string_map': {
      const obj = jsonObject(raw, () => invalidField(name, `expected an object of strings, got ${got(raw)}`));
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(obj)) {
        if (typeof v !== 'string') throw invalidField(`${name}.${k.length > 40 ? `${k.slice(0, 40)}...` : k}`, `expected a string, got ${got(v)}`);
        out[k] = v;
      }
      return out;
    }
    case 'object':
      return jsonObject(raw, () => invalidField(name, `expected a JSON object, got ${got(raw)}`));
  }
}

/** A JSON object given as one, or as its JSON text; anything else is `refused()`. */
function jsonObject(raw: unknown, refused: () => Error): Record<string, unknown> {
  let obj: unknown = raw;
  if (typeof raw === 'string') {
    try {
      obj = parseJsonBounded(raw);
    } catch {
      throw refused();
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw refused();
  return obj as Record<string, unknown>;
}
