// A small declarative backend framework in the spirit of Vault's sdk/framework:
// routes are declared as a table (pattern, typed fields, operations, help), and
// secrets by type (renew, revoke). The framework parses and validates fields
// before any handler runs, so handlers only see well-typed data.

import { EngineError, showValue } from './errors.ts';
import { parseFields } from './fields.ts';
import type { Backend, ExistenceResult, LogicalRequest, LogicalResponse, Operation, SpecialPaths, Storage } from './logical.ts';
import { openApiDocument } from './openapi.ts';
import type { FrameworkOptions, Route } from './route.ts';

interface CompiledRoute {
  route: Route;
  regex: RegExp;
}


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

