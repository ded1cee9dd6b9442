// What the auth methods (AppRole, JWT) share on the backend framework: the
// backend itself (login served without a token; unknown fields accepted with
// Vault's warning, as Vault's own methods do, since the Terraform provider
// sends fields of newer Vault versions), roles kept by name under `role/`
// with Vault's name rule, the list of them, and the login route.

import { FrameworkBackend } from '../../sdk/framework.ts';
import type { Fields } from '../../sdk/fields.ts';
import type { LogicalRequest } from '../../sdk/logical.ts';
import type { Handler, Route } from '../../sdk/route.ts';

/** Where a method keeps its roles, by name. */
export const ROLE_PREFIX = 'role/';
/** Vault's framework.GenericNameRegex: word characters, with dots and dashes inside. */
export const ROLE_NAME = String.raw`\w(?:[\w.-]*\w)?`;

/** A route's help, as its declaration takes it. */
export type RouteHelp = Pick<Route, 'synopsis' | 'description'>;

export interface AuthMethodOptions {
  /** The method's type (`approle`, `jwt`): names its OpenAPI operations. */
  name: string;
  /** One sentence for its OpenAPI document. */
  description: string;
  help: string;
  routes: Route[];
  cleanup?: () => Promise<void>;
}

/** An auth method on the backend framework. */
export function authMethodBackend(options: AuthMethodOptions): FrameworkBackend {
  return new FrameworkBackend({
    name: options.name,
    description: options.description,
    tag: 'auth',
    help: options.help.trim(),
    routes: options.routes,
    secrets: [],
    specialPaths: { unauthenticated: ['login'], root: [] },
    unknownFields: 'warn',
    ...(options.cleanup ? { cleanup: options.cleanup } : {}),
  });
}

/** `LIST role/`: the names of the method's roles, in their one (lower-case) form. */
export function roleListRoute(method: string): Route {
  return {
    pattern: 'role/?',
    fields: {},
    operations: { list: (req) => listRoles(req) },
    synopsis: `Lists the roles of this ${method} mount.`,
    description: 'The names of the roles defined on this mount, in their one (lower-case) form.',
  };
}

/** `login`: served without a token; a successful one answers a login the server makes the token from. */
export function loginRoute(fields: Fields, login: Handler, help: RouteHelp): Route {
  return { pattern: 'login', fields, operations: { update: login }, ...help };
}

async function listRoles(req: LogicalRequest): Promise<{ data: { keys: string[] } }> {
  return { data: { keys: (await req.storage.list(ROLE_PREFIX)).filter((k) => !k.endsWith('/')) } };
}
