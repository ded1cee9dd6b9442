// A declarative route table for auth methods, on the engine's field parser:
// each route has a pattern (named groups become fields), typed fields,
// handlers per operation and an optional existence check. Unlike the tvm
// engine, and like Vault's own auth methods, unknown request fields are
// ignored with a warning: the Terraform provider sends fields of newer Vault
// versions that an older server simply does not know.

import { EngineError, invalidField } from '../../sdk/errors.ts';
import { parseFields, type FieldData, type Fields } from '../../sdk/fields.ts';
import { type Route } from '../../sdk/route.ts';
import type { AuthRequest, AuthResponse } from './types.ts';

export type AuthHandler = (req: AuthRequest, fields: FieldData) => Promise<AuthResponse | null>;

export interface AuthRoute {
  /** Regular-expression source, anchored by the router. */
  pattern: string;
  fields: Fields;
  operations: Partial<Record<'read' | 'list' | 'create' | 'update' | 'delete', AuthHandler>>;
  existenceCheck?: (req: AuthRequest, fields: FieldData) => Promise<boolean>;
  /** Fields that must be present on create and update. */
  required?: string[];
  /** Fields accepted without parsing (handlers read them from req.data). */
  raw?: string[];
  /** Fields holding secrets (secret IDs, JWTs): a wrong type is refused without echoing the value. */
  secret?: string[];
}

interface Compiled {
  route: AuthRoute;
  regex: RegExp;
}

export interface AuthRouterOptions {
  /**
   * Path captures whose values are names compared without case (AppRole's
   * `role_name`, JWT's role `name`): canonicalPath lower-cases them, so the
   * ACL sees the one form the handler uses.
   */
  caseInsensitive?: string[];
}

export class AuthRouter {
  private readonly compiled: Compiled[];
  private readonly caseInsensitive: readonly string[];

  constructor(routes: AuthRoute[], options: AuthRouterOptions = {}) {
    // `d`: the captures' positions, for canonicalPath.
    this.compiled = routes.map((route) => ({ route, regex: new RegExp(`^(?:${route.pattern})$`, 'd') }));
    this.caseInsensitive = options.caseInsensitive ?? [];
  }

  /**
   * The canonical form of a path under this method (relative to its mount):
   * case-insensitive names lower-cased. Paths no route matches are returned as
   * they are (they answer 404 or 405 whatever their case).
   */
  canonicalPath(path: string): string {
    if (this.caseInsensitive.length === 0) return path;
    for (const { regex } of this.compiled) {
      const m = regex.exec(path);
      if (!m) continue;
      return lowerCaptures(path, m, this.caseInsensitive);
    }
    return path;
  }

  async exists(req: AuthRequest): Promise<boolean | undefined> {
    const m = this.match(req.path);
    if (!m?.route.existenceCheck) return undefined;
    return m.route.existenceCheck(req, parseFields(asRoute(m.route), m.captures, {}, { unknown: 'skip', required: false }));
  }

  async handle(req: AuthRequest): Promise<AuthResponse | null> {
    const m = this.match(req.path);
    if (!m) throw new EngineError('ERR_UNSUPPORTED_PATH', 'unsupported path');
    let op = req.operation === 'help' ? 'read' : req.operation;
    let handler = m.route.operations[op];
    if (!handler && op === 'create') {
      op = 'update';
      handler = m.route.operations.update;
    }
    if (!handler && op === 'update' && m.route.operations.create) {
      op = 'create';
      handler = m.route.operations.create;
    }
    if (!handler) throw new EngineError('ERR_UNSUPPORTED_OPERATION', `unsupported operation ${req.operation} on ${req.path}`);

    const data = req.data ?? {};
    for (const name of m.route.secret ?? []) {
      const v = data[name];
      if (v !== undefined && v !== null && typeof v !== 'string') throw invalidField(name, 'expected a string');
    }
    const parsed = Object.fromEntries(Object.entries(data).filter(([k]) => !(m.route.raw ?? []).includes(k)));
    const fields = parseFields(asRoute(m.route), m.captures, parsed, { unknown: 'skip', required: false });
    const writing = op === 'create' || op === 'update';
    if (writing) {
      for (const name of m.route.required ?? []) {
        const v = data[name];
        if (v === undefined || v === null || v === '') {
          throw new EngineError('ERR_MISSING_FIELD', `missing required field ${name}`, { field: name });
        }
      }
    }
    const response = await handler(req, fields);
    const known = (k: string): boolean => k in m.route.fields || (m.route.raw ?? []).includes(k);
    const ignored = writing ? Object.keys(data).filter((k) => !known(k)) : [];
    if (ignored.length === 0) return response;
    const warning = `Endpoint ignored these unrecognized parameters: [${ignored.sort().join(' ')}]`;
    return { ...(response ?? {}), warnings: [...(response?.warnings ?? []), warning] };
  }

  private match(path: string): { route: AuthRoute; captures: Record<string, string> } | null {
    for (const { route, regex } of this.compiled) {
      const m = regex.exec(path);
      if (m) return { route, captures: { ...(m.groups ?? {}) } };
    }
    return null;
  }
}

/** `path` with the named captures rewritten in place by `canonical` (lower-cased by default), the rest untouched. */
export function lowerCaptures(
  path: string,
  m: RegExpExecArray,
  names: readonly string[],
  canonical: (name: string) => string = (name) => name.toLowerCase(),
): string {
  const spans: Array<[number, number]> = [];
  for (const name of names) {
    const at = m.indices?.groups?.[name];
    if (at) spans.push(at);
  }
  if (spans.length === 0) return path;
  spans.sort((a, b) => b[0] - a[0]);
  let out = path;
  for (const [start, end] of spans) out = out.slice(0, start) + canonical(out.slice(start, end)) + out.slice(end);
  return out;
}

/** The engine parser wants its own Route shape; only the fields matter to it. */
function asRoute(route: AuthRoute): Route {
  return { pattern: route.pattern, fields: route.fields, operations: {}, synopsis: '', description: '' };
}
