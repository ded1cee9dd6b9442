// A small declarative backend framework in the spirit of Vault's sdk/framework:
// routes are declared as a table (pattern, typed fields, operations, help), and
// secrets by type (renew, revoke). The framework parses and validates fields
// before any handler runs, so handlers only see well-typed data.

import { lowerCaptures } from './canonical.ts';
import { EngineError, showValue } from './errors.ts';
import { parseFields } from './fields.ts';
import type { Backend, ExistenceResult, LogicalRequest, LogicalResponse, Operation, SpecialPaths, Storage } from './logical.ts';
import { openApiDocument } from './openapi.ts';
import type { FrameworkOptions, Route } from './route.ts';

interface CompiledRoute {
  route: Route;
  /** With the `d` flag (capture positions), for the canonical path only: slower to run. */
  regex: RegExp;
  /** The same pattern without `d`, for routing. */
  plain: RegExp;
}

/** Paths whose route was found lately (a pure function of the path), so a hot path is matched once. */
const MATCH_CACHE_LIMIT = 1024;


export class FrameworkBackend implements Backend {
  readonly type = 'secret' as const;
  private readonly options: FrameworkOptions;
  private readonly compiled: CompiledRoute[];
  private readonly matched = new Map<string, { route: Route; groups: Record<string, string> } | null>();

  constructor(options: FrameworkOptions) {
    this.options = options;
    // `d`: the captures' positions, for the canonical path.
    this.compiled = options.routes.map((route) => ({
      route,
      regex: new RegExp(`^(?:${route.pattern})$`, 'd'),
      plain: new RegExp(`^(?:${route.pattern})$`),
    }));
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
    const fields = parseFields(match.route, match.captures, {}, { unknown: 'skip', required: false });
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
          ...(this.options.description === undefined ? {} : { description: this.options.description }),
          ...(this.options.tag === undefined ? {} : { tag: this.options.tag }),
        });
        return { data: { help: this.helpText(req.path), openapi } };
      }
      case 'resolve-path': {
        const found = this.canonicalPath(req.path);
        return found === null ? null : { data: { path: found } };
      }
      default:
        break;
    }
    const match = this.match(req.path);
    if (!match) throw new EngineError('ERR_UNSUPPORTED_PATH', 'unsupported path');
    let op: Operation = req.operation;
    let handler = match.route.operations[op];
    // Vault's framework: a create with no create handler falls back to update, and the other way round.
    if (!handler && op === 'create') {
      op = 'update';
      handler = match.route.operations.update;
    } else if (!handler && op === 'update' && match.route.operations.create) {
      op = 'create';
      handler = match.route.operations.create;
    }
    if (!handler) {
      throw new EngineError('ERR_UNSUPPORTED_OPERATION', `unsupported operation ${req.operation} on ${req.path}`);
    }
    const writing = op === 'create' || op === 'update';
    const mode = this.options.unknownFields ?? 'refuse';
    const data = req.data ?? {};
    // Reads, lists and deletes take padded query strings: their unknown fields are never refused.
    const unknown = mode === 'refuse' && writing ? 'refuse' : 'skip';
    const fields = parseFields(match.route, match.captures, data, { unknown, required: writing });
    const response = await handler(req, fields);
    const ignored = mode === 'warn' && writing ? Object.keys(data).filter((k) => !(k in match.route.fields)) : [];
    if (ignored.length === 0) return response;
    // Vault's words for fields a route does not know.
    const warning = `Endpoint ignored these unrecognized parameters: [${ignored.sort().join(' ')}]`;
    return { ...(response ?? {}), warnings: [...(response?.warnings ?? []), warning] };
  }

  /**
   * The canonical form of a routed path, as resolve-path answers it: its
   * case-insensitive captures trimmed and lower-cased, the rest exact as it
   * matched; null when no route matches. Synchronous, for callers inside the
   * server that cannot wait on a request.
   */
  canonicalPath(path: string): string | null {
    for (const { route, regex } of this.compiled) {
      const m = regex.exec(path);
      if (!m) continue;
      return lowerCaptures(path, m, route.caseInsensitive ?? [], (name) => {
        const canonical = name.trim().toLowerCase();
        // A name of spaces only would leave the path of another route, or of none.
        if (canonical === '') throw new EngineError('ERR_INVALID_FIELD', 'invalid name: empty once surrounding whitespace is removed');
        return canonical;
      });
    }
    return null;
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
    let found = this.matched.get(path);
    if (found === undefined) {
      found = null;
      for (const { route, plain } of this.compiled) {
        const m = plain.exec(path);
        if (m) {
          found = { route, groups: { ...(m.groups ?? {}) } };
          break;
        }
      }
      if (this.matched.size >= MATCH_CACHE_LIMIT) this.matched.clear();
      this.matched.set(path, found);
    }
    // Each caller gets its own captures object.
    return found === null ? null : { route: found.route, captures: { ...found.groups } };
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
        lines.push(`  ${name} (${f.shownAs ?? f.type})${def}: ${f.description}`);
      }
    }
    return lines.join('\n');
  }
}

