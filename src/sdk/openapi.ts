// The OpenAPI document of a backend's routes, in the shape Vault's framework
// gives in a help response (`data.openapi`): Vault and OpenBao merge it into
// sys/internal/specs/openapi under the mount's path. Built from the declared
// routes, so the document never drifts from what the backend serves.

import type { FieldSchema, FieldType } from './fields.ts';
import type { Route } from './route.ts';
import type { Operation } from './logical.ts';

/** An OpenAPI 3 schema, as much of it as fields need. */
interface Schema {
  type: string;
  description?: string;
  format?: string;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  default?: unknown;
}

export interface OpenApiDocument {
  openapi: '3.0.2';
  info: { title: string; description: string; version: string; license: { name: string; url: string } };
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, unknown> };
}

function schemaOf(field: FieldSchema): Schema {
  const base: Record<FieldType, Schema> = {
    string: { type: 'string' },
    int: { type: 'integer' },
    bool: { type: 'boolean' },
    // Vault's framework.TypeDurationSecond: a duration string or seconds.
    duration: { type: 'string', format: 'duration' },
    string_list: { type: 'array', items: { type: 'string' } },
    string_map: { type: 'object' },
    object: { type: 'object' },
    raw: { type: 'object' },
  };
  const s: Schema = { ...base[field.shownAs ?? field.type], description: field.description };
  if (field.default !== undefined) s.default = field.default;
  return s;
}

/**
 * A route's pattern as an OpenAPI path template: named captures become
 * `{name}`, escapes and an optional trailing slash are dropped
 * (`creds/(?<role>[^/]+)` is `/creds/{role}`).
 */
export function templateOf(pattern: string): string {
  const path = pattern
    .replace(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>[^)]*\)/g, '{$1}')
    .replace(/\/\?$/, '')
    .replace(/\\(.)/g, '$1');
  return `/${path}`;
}

/**
 * Every path template a pattern stands for: an optional group `(?:...)?` is
 * taken with and without its contents, as Vault's framework expands optional
 * parameters (`(?:leases/)?renew(?:/(?<url_lease_id>.+))?` is four paths).
 */
export function templatesOf(pattern: string): string[] {
  const group = optionalGroup(pattern);
  if (!group) return [templateOf(pattern)];
  const before = pattern.slice(0, group.start);
  const after = pattern.slice(group.end + 2);
  const inner = pattern.slice(group.start + 3, group.end);
  return [...templatesOf(before + after), ...templatesOf(before + inner + after)];
}

/** The first `(?:...)?` group at any depth: where its `(` and its `)` are. */
function optionalGroup(pattern: string): { start: number; end: number } | null {
  const open: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      // A character class: skip to its end (no groups inside).
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
    } else if (c === '(') {
      open.push(i);
    } else if (c === ')') {
      const start = open.pop();
      if (start !== undefined && pattern.startsWith('(?:', start) && pattern[i + 1] === '?') return { start, end: i };
    }
  }
  return null;
}

const idOf = (mountType: string, verb: string, template: string): string =>
  [mountType, verb, ...template.split('/').filter((s) => s !== '').map((s) => s.replace(/[{}.]/g, ''))].join('-');

/** The document for these routes (all, or the one a help request named). */
export function openApiDocument(options: {
  routes: Route[];
  mountType: string;
  title: string;
  version: string;
  unauthenticated: string[];
  /** The document's info.description (default: the tvm engine's). */
  description?: string;
  /** The operations' tag, as Vault's: secrets (the default), auth, system, identity. */
  tag?: string;
}): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  for (const route of options.routes) {
    for (const template of templatesOf(route.pattern)) addPath(route, template);
  }
  function addPath(route: Route, template: string): void {
    const params = Object.keys(route.fields).filter((name) => template.includes(`{${name}}`));
    const bodyFields = Object.entries(route.fields).filter(([name]) => !params.includes(name));
    const item: Record<string, unknown> = {
      description: route.synopsis,
      ...(params.length > 0
        ? {
            parameters: params.map((name) => ({
              name,
              description: route.fields[name].description,
              in: 'path',
              schema: { type: 'string' },
              required: true,
            })),
          }
        : {}),
    };
    const relative = template.slice(1);
    if (options.unauthenticated.some((p) => (p.endsWith('*') ? relative.startsWith(p.slice(0, -1)) : relative === p))) {
      item['x-vault-unauthenticated'] = true;
    }
    const ops = Object.keys(route.operations) as Operation[];
    const operation = (verb: string, withBody: boolean): Record<string, unknown> => {
      const op: Record<string, unknown> = {
        summary: route.synopsis,
        operationId: idOf(options.mountType, verb, template),
        tags: [options.tag ?? 'secrets'],
        responses: { 200: { description: 'OK' }, 204: { description: 'empty body' } },
      };
      if (withBody && bodyFields.length > 0) {
        const properties: Record<string, Schema> = {};
        const required: string[] = [];
        for (const [name, field] of bodyFields) {
          properties[name] = schemaOf(field);
          if (field.required) required.push(name);
        }
        op.requestBody = {
          required: required.length > 0,
          content: { 'application/json': { schema: { type: 'object', properties, ...(required.length ? { required } : {}) } } },
        };
      }
      return op;
    };
    if (ops.includes('read')) item.get = operation('read', false);
    if (ops.includes('list') && !ops.includes('read')) {
      item.get = { ...operation('list', false), parameters: [{ name: 'list', in: 'query', required: true, schema: { type: 'string', enum: ['true'] } }] };
    }
    if (ops.includes('update') || ops.includes('create')) item.post = operation('write', true);
    if (ops.includes('delete')) item.delete = operation('delete', false);
    if (ops.includes('create') && route.existenceCheck) item['x-vault-createSupported'] = true;
    paths[template] = item;
  }
  return {
    openapi: '3.0.2',
    info: {
      title: options.title,
      description: options.description ?? 'The tvm secrets engine: short-lived, narrowly scoped signed tokens under Vault leases.',
      version: options.version,
      license: { name: 'Mozilla Public License 2.0', url: 'https://www.mozilla.org/en-US/MPL/2.0' },
    },
    paths,
    components: { schemas: {} },
  };
}
