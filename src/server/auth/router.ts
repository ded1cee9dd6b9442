// A declarative route table for auth methods, on the engine's field parser:
// each route has a pattern (named groups become fields), typed fields,
// handlers per operation and an optional existence check. Unlike the tvm
// engine, and like Vault's own auth methods, unknown request fields are
// ignored with a warning: the Terraform provider sends fields of newer Vault
// versions that an older server simply does not know.

import { EngineError, invalidField, showValue } from '../../engine/errors.ts';
import { parseFields, type FieldData, type Fields, type Route } from '../../engine/framework.ts';
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

export class AuthRouter {
  private readonly compiled: Compiled[];

  constructor(routes: AuthRoute[]) {
    this.compiled = routes.map((route) => ({ route, regex: new RegExp(`^(?:${route.pattern})$`) }));
  }

  async exists(req: AuthRequest): Promise<boolean | undefined> {
    const m = this.match(req.path);
    if (!m?.route.existenceCheck) return undefined;
    return m.route.existenceCheck(req, parseFields(asRoute(m.route), m.captures, {}, true));
  }

  async handle(req: AuthRequest): Promise<AuthResponse | null> {
    const m = this.match(req.path);
    if (!m) throw new EngineError('ERR_UNSUPPORTED_PATH', `unsupported path: ${showValue(req.path)}`);
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
    const fields = parseFields(asRoute(m.route), m.captures, parsed, true);
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

/** The engine parser wants its own Route shape; only the fields matter to it. */
function asRoute(route: AuthRoute): Route {
  return { pattern: route.pattern, fields: route.fields, operations: {}, synopsis: '', description: '' };
}
