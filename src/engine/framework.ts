// A small declarative backend framework in the spirit of Vault's sdk/framework:
// routes are declared as a table (pattern, typed fields, operations, help), and
// secrets by type (renew, revoke). The framework parses and validates fields
// before any handler runs, so handlers only see well-typed data.

import { parseDurationMs } from './duration.ts';
import { describeType, EngineError, invalidField, showValue } from './errors.ts';
import { parseJsonBounded } from './json.ts';
import { openApiDocument } from './openapi.ts';
import type {
  Backend,
  ExistenceResult,
  LogicalRequest,
  LogicalResponse,
  Operation,
  SpecialPaths,
  Storage,
} from './types.ts';

export type FieldType =
  | 'string'
  | 'int'
  | 'bool'
  | 'duration' // Vault duration string ("90s", "1h30m") or integer seconds; parsed to ms
  | 'string_list' // a JSON list of strings, or one comma-separated string
  | 'string_map' // an object of string values
  | 'object'; // any JSON object, kept as given

export interface FieldSchema {
  type: FieldType;
  description: string;
  default?: unknown;
  required?: boolean;
  /** The field can hold a secret (a token, a secret id, a key): errors name it, never show its value. */
  secret?: boolean;
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

export type Handler = (req: LogicalRequest, fields: FieldData) => Promise<LogicalResponse | null>;

export interface Route {
  /** Regular-expression source for the path, anchored by the framework; named groups become fields. */
  pattern: string;
  fields: Fields;
  operations: Partial<Record<Operation, Handler>>;
  /** Decides create vs update for ACL checks; omit for paths that are never created. */
  existenceCheck?: (req: LogicalRequest, fields: FieldData) => Promise<boolean>;
  synopsis: string;
  description: string;
}

export interface SecretType {
  type: string;
  renew: (req: LogicalRequest) => Promise<LogicalResponse | null>;
  revoke: (req: LogicalRequest) => Promise<LogicalResponse | null>;
}

export interface FrameworkOptions {
  /** The backend's type (`tvm`): names its OpenAPI operations. */
  name?: string;
  /** The backend's version, shown in its OpenAPI document. */
  version?: string;
  help: string;
  routes: Route[];
  secrets: SecretType[];
  specialPaths: SpecialPaths;
  /** Runs on the `rollback` operation, as Vault's PeriodicFunc: housekeeping. */
  periodic?: (storage: Storage) => Promise<void>;
  initialize?: (storage: Storage) => Promise<void>;
  invalidate?: (key: string) => void;
  cleanup?: () => Promise<void>;
}

interface CompiledRoute {
  route: Route;
  regex: RegExp;
}

/** Reads handled by these operations take their fields from the query string; any are accepted there. */
const MAX_FIELD_BYTES = 64 * 1024;

export class FrameworkBackend implements Backend {
  readonly type = 'secret' as const;
  private readonly options: FrameworkOptions;
  private readonly compiled: CompiledRoute[];

  constructor(options: FrameworkOptions) {
    this.options = options;
    this.compiled = options.routes.map((route) => ({ route, regex: new RegExp(`^(?:${route.pattern})$`) }));
  }

  specialPaths(): SpecialPaths {
    return this.options.specialPaths;
  }

  async initialize(storage: Storage): Promise<void> {
    await this.options.initialize?.(storage);
  }

  invalidateKey(key: string): void {
    this.options.invalidate?.(key);
  }

  async cleanup(): Promise<void> {
    await this.options.cleanup?.();
  }

  async handleExistenceCheck(req: LogicalRequest): Promise<ExistenceResult> {
    const match = this.match(req.path);
    if (!match || !match.route.existenceCheck) return { checkFound: false, exists: false };
    const fields = parseFields(match.route, match.captures, {}, true);
    return { checkFound: true, exists: await match.route.existenceCheck(req, fields) };
  }

  async handleRequest(req: LogicalRequest): Promise<LogicalResponse | null> {
    switch (req.operation) {
      case 'renew':
      case 'revoke':
        return this.handleSecret(req);
      case 'rollback':
        await this.options.periodic?.(req.storage);
        return null;
      case 'help': {
        // As Vault's framework: the text, and the OpenAPI document of the named path (all of them at the root).
        const match = req.path === '' ? null : this.match(req.path);
        const routes = match ? [match.route] : req.path === '' ? this.options.routes : [];
        const openapi = openApiDocument({
          routes,
          mountType: this.options.name ?? 'backend',
          title: this.options.name ?? 'backend',
          version: this.options.version ?? '',
          unauthenticated: this.options.specialPaths.unauthenticated,
        });
        return { data: { help: this.helpText(req.path), openapi } };
      }
      case 'resolve-path': {
        // The engine's paths are canonical as they match (names are exact, case-sensitive,
        // with no optional slashes), so a routed path is its own canonical form.
        return this.match(req.path) ? { data: { path: req.path } } : null;
      }
      default:
        break;
    }
    const match = this.match(req.path);
    if (!match) throw new EngineError('ERR_UNSUPPORTED_PATH', 'unsupported path');
    let op: Operation = req.operation;
    let handler = match.route.operations[op];
    // Vault's framework: a create with no create handler falls back to update.
    if (!handler && op === 'create') {
      op = 'update';
      handler = match.route.operations.update;
    }
    if (!handler) {
      throw new EngineError('ERR_UNSUPPORTED_OPERATION', `unsupported operation ${req.operation} on ${req.path}`);
    }
    const lenient = op === 'read' || op === 'list' || op === 'delete';
    const fields = parseFields(match.route, match.captures, req.data ?? {}, lenient);
    return handler(req, fields);
  }

  private async handleSecret(req: LogicalRequest): Promise<LogicalResponse | null> {
    if (!req.secret) throw new EngineError('ERR_INVALID_REQUEST', `${req.operation} needs the lease's secret`);
    const secretType = this.options.secrets.find((s) => s.type === req.secret!.type);
    if (!secretType) {
      throw new EngineError('ERR_INVALID_REQUEST', `unknown secret type ${showValue(req.secret.type)}`);
    }
    return req.operation === 'renew' ? secretType.renew(req) : secretType.revoke(req);
  }

  private match(path: string): { route: Route; captures: Record<string, string> } | null {
    for (const { route, regex } of this.compiled) {
      const m = regex.exec(path);
      if (m) return { route, captures: { ...(m.groups ?? {}) } };
    }
    return null;
  }

  private helpText(path: string): string {
    const match = this.match(path);
    if (!match) return this.options.help;
    const { route } = match;
    const lines = [route.synopsis, '', route.description.trim(), ''];
    const names = Object.keys(route.fields);
    if (names.length > 0) {
      lines.push('Fields:');
      for (const name of names) {
        const f = route.fields[name];
        const def = f.default === undefined ? '' : ` (default: ${JSON.stringify(f.default)})`;
        lines.push(`  ${name} (${f.type})${def}: ${f.description}`);
      }
    }
    return lines.join('\n');
  }
}

/**
 * Validates the request against the route's fields: unknown fields are refused
 * (except on reads, lists and deletes, whose query strings clients pad freely),
 * every supplied value is parsed to its type, and required fields must be there.
 */
export function parseFields(
  route: Route,
  captures: Record<string, string>,
  data: Record<string, unknown>,
  lenient: boolean,
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
      if (lenient) continue;
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
  if (!lenient) {
    for (const [name, schema] of Object.entries(route.fields)) {
      if (schema.required && !values.has(name)) {
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
  }
}

/** A value as an error message may show it: a secret field's only by its type. */
function shown(schema: FieldSchema, raw: unknown): string {
  return schema.secret ? describeType(raw) : showValue(raw);
}

function parseField(name: string, schema: FieldSchema, raw: unknown): unknown {
  const got = (v: unknown): string => shown(schema, v);
  if (typeof raw === 'string' && raw.length > MAX_FIELD_BYTES) {
    throw invalidField(name, `value is ${raw.length} characters; at most ${MAX_FIELD_BYTES} are accepted`);
  }
  switch (schema.type) {
    case 'string':
      if (typeof raw === 'string') return raw;
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
      let obj: unknown = raw;
      if (typeof raw === 'string') {
        try {
          obj = parseJsonBounded(raw);
        } catch {
          throw invalidField(name, `expected an object of strings, got ${got(raw)}`);
        }
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        throw invalidField(name, `expected an object of strings, got ${got(raw)}`);
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
        if (typeof v !== 'string') throw invalidField(`${name}.${k.length > 40 ? `${k.slice(0, 40)}...` : k}`, `expected a string, got ${got(v)}`);
        out[k] = v;
      }
      return out;
    }
    case 'object': {
      let obj: unknown = raw;
      if (typeof raw === 'string') {
        try {
          obj = parseJsonBounded(raw);
        } catch {
          throw invalidField(name, `expected a JSON object, got ${got(raw)}`);
        }
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        throw invalidField(name, `expected a JSON object, got ${got(raw)}`);
      }
      return obj;
    }
  }
}
