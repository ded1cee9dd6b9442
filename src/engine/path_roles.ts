// roles/<name>: what a role may vend (read and write patterns), for how long,
// to whom (audiences), from where (bound CIDRs) and how many at once.

import { IamFieldError } from '../iam/errors.ts';
import { validateIamMapping } from '../iam/mapping.ts';
import type { EngineContext } from './context.ts';
import { EngineError, invalidField, showValue } from '../sdk/errors.ts';
import type { FieldData, Fields } from '../sdk/fields.ts';
import type { Route } from '../sdk/route.ts';
import { parseFields } from '../sdk/fields.ts';
import type { ConfigEntry } from './config.ts';
import { BINDINGS, ROLE_NAME, ROLE_PREFIX, type Binding, type RoleEntry } from './roles.ts';
import { cidrProblem } from './cidr.ts';
import { MAX_WINDOWS, parseWindow, timeZoneProblem } from './windows.ts';
import { patternProblem } from './patterns.ts';
import { listKeys } from '../sdk/storage.ts';
import type { LogicalRequest, LogicalResponse } from '../sdk/logical.ts';

/** Claims the token sets itself; extra_claims may not replace them. */
export const RESERVED_CLAIMS = [
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'client_id', 'scope', 'bound_cidrs',
  'typ', 'cnf', 'auth_time', 'acr', 'amr', 'status', 'allowed_hours', 'time_zone', 'lease_id',
];
const MAX_LIST_ENTRIES = 64;

export const ROLE_FIELDS: Fields = {
  name: { type: 'string', description: 'Role name: 1 to 128 characters of A-Z a-z 0-9 . _ -' },
  read: { type: 'string_list', default: [], description: 'Resource patterns tokens of this role may read.' },
  write: { type: 'string_list', default: [], description: 'Resource patterns tokens of this role may write.' },
  ttl: { type: 'duration', default: 0, description: 'Default token ttl; 0 uses the mount default_ttl.' },
  max_ttl: { type: 'duration', default: 0, description: 'Longest a lease may live with renewals; 0 uses the mount max_ttl.' },
  audiences: { type: 'string_list', default: [], description: 'The tokens\' "aud"; empty means the issuer itself.' },
  bound_cidrs: { type: 'string_list', default: [], description: 'Issue only to callers inside these CIDRs; carried in the token.' },
  max_active_leases: { type: 'int', default: 0, description: 'Live leases allowed at once; 0 is unlimited.' },
  extra_claims: { type: 'string_map', default: {}, description: 'Additional string claims put in every token.' },
  binding: {
    type: 'string',
    default: 'none',
    description: 'none, or dpop: every token is bound to the key the creds request names (dpop_jwk), as cnf.jkt; resource servers then need a DPoP proof of that key (RFC 9449) with each request.',
  },
  allowed_hours: {
    type: 'string_list',
    default: [],
    description: 'When tokens may be issued and used: windows such as "Mon-Fri 09:00-17:00" or "Sun 22:00-02:00", read in time_zone; carried in the token. Empty: any time.',
  },
  time_zone: { type: 'string', default: 'UTC', description: 'The IANA time zone allowed_hours are read in, e.g. Europe/Berlin.' },
  iam: {
    type: 'object',
    description: 'Cloud IAM mapping: any of aws, gcp, azure, kubernetes, each naming its target; the scopes of that cloud must be expressible exactly.',
  },
};

export function validateRoleName(name: string): void {
  if (!ROLE_NAME.test(name)) {
    throw invalidField(
      'name',
      `${showValue(name)} must be 1 to 128 characters of A-Z a-z 0-9 . _ - (got ${name.length} characters)`,
    );
  }
}

function checkPatterns(field: string, patterns: string[]): void {
  if (patterns.length > MAX_LIST_ENTRIES) throw invalidField(field, `${patterns.length} patterns; at most ${MAX_LIST_ENTRIES}`);
  patterns.forEach((p, i) => {
    const problem = patternProblem(p);
    if (problem) throw invalidField(`${field}[${i}]`, `${showValue(p)}: ${problem}`);
  });
}

function checkCidr(field: string, cidr: string): void {
  const problem = cidrProblem(cidr);
  if (problem) throw invalidField(field, `${showValue(cidr)} ${problem}`);
}

function checkContext(role: RoleEntry): void {
  const binding = role.binding ?? 'none';
  if (!(BINDINGS as readonly string[]).includes(binding)) {
    throw invalidField('binding', `${showValue(binding)} is not one of ${BINDINGS.join(', ')}`);
  }
  const hours = role.allowed_hours ?? [];
  if (hours.length > MAX_WINDOWS) throw invalidField('allowed_hours', `${hours.length} windows; at most ${MAX_WINDOWS}`);
  hours.forEach((w, i) => {
    try {
      parseWindow(w);
    } catch (err) {
      throw invalidField(`allowed_hours[${i}]`, `${showValue(w)}: ${(err as Error).message}`);
    }
  });
  if (binding === 'dpop' && role.iam !== null && Object.keys(role.iam).length > 0) {
    throw invalidField('binding', 'dpop cannot be combined with an iam mapping: a cloud exchanges the token without a DPoP proof, so the binding would not hold there');
  }
  const zone = role.time_zone ?? 'UTC';
  const zoneProblem = timeZoneProblem(zone);
  if (zoneProblem) throw invalidField('time_zone', `${showValue(zone)} ${zoneProblem}`);
}

/**
 * Checks a whole role and returns it normalised. Pure: the cdktf constructs
 * import it so a bad role fails `cdktf synth` with the same message.
 */
export function validateRole(
  role: RoleEntry,
  mount: Pick<ConfigEntry, 'max_ttl' | 'default_ttl'> & { signing_algorithm?: string },
): RoleEntry {
  checkPatterns('read', role.read);
  checkPatterns('write', role.write);
  if (role.read.length === 0 && role.write.length === 0) {
    throw invalidField('read', 'a role needs at least one read or write pattern');
  }
  for (const f of ['ttl', 'max_ttl'] as const) {
    if (!Number.isInteger(role[f]) || role[f] < 0) throw invalidField(f, `${showValue(role[f])} must be whole, non-negative seconds`);
  }
  const maxTtl = role.max_ttl || mount.max_ttl;
  if (role.max_ttl > mount.max_ttl) {
    throw invalidField('max_ttl', `${role.max_ttl}s is longer than the mount's max_ttl ${mount.max_ttl}s`);
  }
  const ttl = role.ttl || Math.min(mount.default_ttl, maxTtl);
  if (ttl > maxTtl) throw invalidField('ttl', `${role.ttl}s is longer than max_ttl ${maxTtl}s`);
  if (role.audiences.length > MAX_LIST_ENTRIES) throw invalidField('audiences', `at most ${MAX_LIST_ENTRIES} entries`);
  role.audiences.forEach((a, i) => {
    if (a === '' || a.length > 256 || /\s/.test(a)) {
      throw invalidField(`audiences[${i}]`, `${showValue(a)} must be 1 to 256 characters without whitespace`);
    }
  });
  if (role.bound_cidrs.length > MAX_LIST_ENTRIES) throw invalidField('bound_cidrs', `at most ${MAX_LIST_ENTRIES} entries`);
  role.bound_cidrs.forEach((c, i) => checkCidr(`bound_cidrs[${i}]`, c));
  checkContext(role);
  if (!Number.isSafeInteger(role.max_active_leases) || role.max_active_leases < 0) {
    throw invalidField('max_active_leases', `${showValue(role.max_active_leases)} must be 0 (unlimited) or more`);
  }
  const claimNames = Object.keys(role.extra_claims);
  if (claimNames.length > MAX_LIST_ENTRIES) throw invalidField('extra_claims', `at most ${MAX_LIST_ENTRIES} claims`);
  for (const name of claimNames) {
    if (RESERVED_CLAIMS.includes(name)) {
      throw invalidField(`extra_claims.${name}`, `${showValue(name)} is set by tvm itself and cannot be overridden`);
    }
    if (name === '' || name.length > 128) throw invalidField('extra_claims', `claim name ${showValue(name)} must be 1 to 128 characters`);
    if (role.extra_claims[name].length > 1024) throw invalidField(`extra_claims.${name}`, 'values may be at most 1024 characters');
  }
  if (role.iam !== null && (typeof role.iam !== 'object' || Array.isArray(role.iam))) {
    throw invalidField('iam', `expected an object, got ${showValue(role.iam)}`);
  }
  let iam: Record<string, unknown> | null;
  try {
    iam = validateIamMapping(
      role.iam,
      { read: role.read, write: role.write, audiences: role.audiences, maxTtlS: maxTtl },
      mount.signing_algorithm,
    ) as Record<string, unknown> | null;
  } catch (err) {
    if (err instanceof IamFieldError) throw new EngineError('ERR_INVALID_FIELD', err.message, { field: err.field });
    throw err;
  }
  return {
    ...role,
    iam,
    read: [...new Set(role.read)],
    write: [...new Set(role.write)],
    audiences: [...new Set(role.audiences)],
    bound_cidrs: [...new Set(role.bound_cidrs)],
    binding: role.binding ?? 'none',
    allowed_hours: [...new Set(role.allowed_hours ?? [])],
    time_zone: role.time_zone ?? 'UTC',
  };
}

function secondsOf(field: string, ms: number): number {
  if (ms % 1000 !== 0) throw invalidField(field, `${ms}ms is not a whole number of seconds`);
  return ms / 1000;
}

/** Applies supplied fields over an existing role (or the defaults) without validating the whole. */
function mergeRole(existing: RoleEntry | null, fields: FieldData): RoleEntry {
  const base: RoleEntry = existing ?? {
    read: [],
    write: [],
    ttl: 0,
    max_ttl: 0,
    audiences: [],
    bound_cidrs: [],
    max_active_leases: 0,
    extra_claims: {},
    iam: null,
    binding: 'none',
    allowed_hours: [],
    time_zone: 'UTC',
  };
  const next: RoleEntry = { ...base };
  if (fields.has('read')) next.read = fields.get<string[]>('read');
  if (fields.has('write')) next.write = fields.get<string[]>('write');
  if (fields.has('ttl')) next.ttl = secondsOf('ttl', fields.get<number>('ttl'));
  if (fields.has('max_ttl')) next.max_ttl = secondsOf('max_ttl', fields.get<number>('max_ttl'));
  if (fields.has('audiences')) next.audiences = fields.get<string[]>('audiences');
  if (fields.has('bound_cidrs')) next.bound_cidrs = fields.get<string[]>('bound_cidrs');
  if (fields.has('max_active_leases')) next.max_active_leases = fields.get<number>('max_active_leases');
  if (fields.has('extra_claims')) next.extra_claims = fields.get<Record<string, string>>('extra_claims');
  if (fields.has('iam')) next.iam = fields.get<Record<string, unknown>>('iam');
  if (fields.has('binding')) next.binding = fields.get<string>('binding') as Binding;
  if (fields.has('allowed_hours')) next.allowed_hours = fields.get<string[]>('allowed_hours');
  if (fields.has('time_zone')) next.time_zone = fields.get<string>('time_zone');
  return next;
}

/**
 * Parses and validates role input given as the API takes it (the field names of
 * `roles/<name>`), for callers outside a request such as the cdktf constructs.
 */
export function parseRoleInput(
  name: string,
  input: Record<string, unknown>,
  mount: Pick<ConfigEntry, 'max_ttl' | 'default_ttl'> = { max_ttl: 3600, default_ttl: 900 },
): RoleEntry {
  validateRoleName(name);
  const route = { pattern: '', fields: ROLE_FIELDS, operations: {}, synopsis: '', description: '' };
  const fields = parseFields(route, {}, input, { unknown: 'refuse', required: true });
  return validateRole(mergeRole(null, fields), mount);
}

function roleData(name: string, role: RoleEntry): Record<string, unknown> {
  return { name, ...role, binding: role.binding ?? 'none', allowed_hours: role.allowed_hours ?? [], time_zone: role.time_zone ?? 'UTC' };
}

export function roleRoutes(ctx: EngineContext): Route[] {
  const nameOf = (fields: FieldData): string => {
    const name = fields.get<string>('name');
    validateRoleName(name);
    return name;
  };

  const read = async (req: LogicalRequest, fields: FieldData): Promise<LogicalResponse | null> => {
    const name = nameOf(fields);
    const role = await ctx.roles.get(req.storage, name);
    return role ? { data: roleData(name, role) } : null;
  };

  const write = async (req: LogicalRequest, fields: FieldData): Promise<LogicalResponse | null> => {
    const name = nameOf(fields);
    const existing = await ctx.roles.get(req.storage, name);
    const config = await ctx.config.load(req.storage);
    const role = validateRole(mergeRole(existing, fields), config);
    await ctx.roles.put(req.storage, name, role);
    return null;
  };

  const remove = async (req: LogicalRequest, fields: FieldData): Promise<LogicalResponse | null> => {
    const name = nameOf(fields);
    await ctx.roles.delete(req.storage, name);
    return null;
  };

  const list = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const keys = (await listKeys(req.storage, ROLE_PREFIX)).filter((k) => !k.endsWith('/'));
    return { data: { keys } };
  };

  return [
    {
      pattern: 'roles/?',
      fields: {},
      operations: { list },
      synopsis: 'Lists the roles.',
      description: 'Lists the names of all roles of this mount.',
    },
    {
      pattern: 'roles/(?<name>[^/]+)',
      fields: ROLE_FIELDS,
      operations: { read, create: write, update: write, delete: remove },
      existenceCheck: async (req, fields) => {
        const name = fields.get<string>('name');
        if (!ROLE_NAME.test(name)) return false;
        return (await ctx.roles.get(req.storage, name)) !== null;
      },
      synopsis: 'Manages a role: what its tokens may read and write, and for how long.',
      description: `
A role names resource patterns its tokens may read and write, their ttl and
max_ttl, audiences, bound CIDRs, a cap on live leases and extra claims.
An update changes only the fields it supplies; the result must still be valid.`,
    },
  ];
}
