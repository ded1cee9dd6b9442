// ACL policies as Vault has them: parsed from HCL (through @cdktf/hcl2json, a
// maintained HCL parser) or JSON, merged per token policy set into one ACL,
// and evaluated per request with Vault's matching rules:
//   - an exact path rule wins over any wildcard rule;
//   - otherwise, among the matching prefix-glob (`foo/*`) and segment-wildcard
//     (`foo/+/bar`) rules, the most specific wins (Vault's priority order: the
//     later the first `+`/`*`, the higher; a non-glob over a glob; fewer `+`
//     segments over more; longer over shorter; lexically larger over smaller);
//   - only the winning rule's capabilities count, and `deny` in it denies.
// Rules for the same path string in several policies are merged (capabilities
// unioned, `deny` overriding everything).

import { parse as parseHcl } from '@cdktf/hcl2json';
import { parseDurationMs } from '../sdk/duration.ts';
import { showValue } from '../sdk/errors.ts';
import { parseJsonBounded } from '../sdk/json.ts';
import { loadRecords } from './storage/records.ts';
import type { KeyValueStorage } from './types.ts';

export const CAPABILITIES = [
  'deny',
  'create',
  'read',
  'update',
  'delete',
  'list',
  'sudo',
  'patch',
  'subscribe',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const CAP: Record<Capability, number> = {
  deny: 1,
  create: 2,
  read: 4,
  update: 8,
  delete: 16,
  list: 32,
  sudo: 64,
  patch: 128,
  subscribe: 256,
};

const ALL_BUT_DENY = CAP.create | CAP.read | CAP.update | CAP.delete | CAP.list | CAP.sudo | CAP.patch | CAP.subscribe;

/** The legacy `policy = "..."` shorthand of old Vault policies. */
const LEGACY: Record<string, number> = {
  deny: CAP.deny,
  read: CAP.read | CAP.list,
  write: CAP.create | CAP.read | CAP.update | CAP.delete | CAP.list,
  sudo: CAP.create | CAP.read | CAP.update | CAP.delete | CAP.list | CAP.sudo,
};

/** A parameter constraint: parameter name (lower-cased) to allowed/denied values; an empty list means any value. */
export type ParameterValues = Record<string, unknown[]>;

export interface PathRule extends Permissions {
  path: string;
}

export interface Policy {
  name: string;
  /** The text as given (HCL or JSON). */
  raw: string;
  rules: PathRule[];
}

export class PolicyParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyParseError';
  }
}

export function capabilityNames(bits: number): string[] {
  if (bits & CAP.deny) return ['deny'];
  return CAPABILITIES.filter((c) => c !== 'deny' && (bits & CAP[c]) !== 0);
}

const PATH_KEYS = new Set([
  'capabilities',
  'policy',
  'allowed_parameters',
  'denied_parameters',
  'required_parameters',
  'min_wrapping_ttl',
  'max_wrapping_ttl',
  'mfa_methods',
  'control_group',
  'subscribe_event_types',
]);

/** Parses policy text (HCL or JSON). Throws PolicyParseError with the parser's message. */
export async function parsePolicy(name: string, raw: string): Promise<Policy> {
  if (raw.trim() === '') throw new PolicyParseError('policy is empty');
  let doc: unknown;
  if (raw.trimStart().startsWith('{')) {
    try {
      doc = parseJsonBounded(raw);
    } catch (err) {
      throw new PolicyParseError(`failed to parse policy: ${(err as Error).message}`);
    }
  } else {
    try {
      doc = await parseHcl(`${name || 'policy'}.hcl`, raw);
    } catch (err) {
      const message = String((err as Error).message ?? err).replace(/^parse config: /, '');
      throw new PolicyParseError(`failed to parse policy: ${message}`);
    }
  }
  if (!isObject(doc)) throw new PolicyParseError('failed to parse policy: the top level must be an object');
  for (const key of Object.keys(doc)) {
    if (key !== 'path' && key !== 'name') {
      throw new PolicyParseError(`failed to parse policy: invalid key ${showValue(key)}; a policy holds path blocks`);
    }
  }
  const rules: PathRule[] = [];
  const paths = doc.path;
  if (paths !== undefined) {
    for (const [path, blocks] of pathBlocks(paths)) {
      for (const block of blocks) rules.push(parsePathBlock(path, block));
    }
  }
  return { name, raw, rules };
}

/** The `path` value in either form: HCL's `{path: {p: [block]}}`, JSON's `{path: {p: block}}` or a list of `{p: block}`. */
function pathBlocks(paths: unknown): Array<[string, Record<string, unknown>[]]> {
  const out: Array<[string, Record<string, unknown>[]]> = [];
  const add = (obj: Record<string, unknown>): void => {
    for (const [path, value] of Object.entries(obj)) {
      const list = Array.isArray(value) ? value : [value];
      for (const block of list) {
        if (!isObject(block)) {
          throw new PolicyParseError(`failed to parse policy: path ${showValue(path)} must be a block`);
        }
      }
      out.push([path, list as Record<string, unknown>[]]);
    }
  };
  if (Array.isArray(paths)) {
    for (const item of paths) {
      if (!isObject(item)) throw new PolicyParseError('failed to parse policy: invalid path list');
      add(item);
    }
  } else if (isObject(paths)) {
    add(paths);
  } else {
    throw new PolicyParseError('failed to parse policy: "path" must hold path blocks');
  }
  return out;
}

function parsePathBlock(rawPath: string, block: Record<string, unknown>): PathRule {
  // Vault trims a leading slash from policy paths.
  const path = rawPath.replace(/^\/+/, '');
  const where = `path ${showValue(rawPath)}`;
  for (const key of Object.keys(block)) {
    if (!PATH_KEYS.has(key)) throw new PolicyParseError(`failed to parse policy: ${where}: invalid key ${showValue(key)}`);
  }
  let caps = 0;
  if (block.policy !== undefined) {
    const legacy = typeof block.policy === 'string' ? LEGACY[block.policy.toLowerCase()] : undefined;
    if (legacy === undefined) {
      throw new PolicyParseError(`failed to parse policy: ${where}: invalid policy ${showValue(block.policy)}`);
    }
    caps |= legacy;
  }
  if (block.capabilities !== undefined) {
    if (!Array.isArray(block.capabilities)) {
      throw new PolicyParseError(`failed to parse policy: ${where}: capabilities must be a list`);
    }
    for (const c of block.capabilities) {
      const name = typeof c === 'string' ? c.trim().toLowerCase() : '';
      if (!(name in CAP)) {
        throw new PolicyParseError(
          `failed to parse policy: ${where}: invalid capability ${showValue(c)}; expected one of ${CAPABILITIES.join(', ')}`,
        );
      }
      caps |= CAP[name as Capability];
    }
  }
  if (caps & CAP.deny) caps = CAP.deny;
  const rule: PathRule = { path, capabilities: caps };
  const allowed = parameterValues(where, 'allowed_parameters', block.allowed_parameters);
  if (allowed) rule.allowedParameters = allowed;
  const denied = parameterValues(where, 'denied_parameters', block.denied_parameters);
  if (denied) rule.deniedParameters = denied;
  if (block.required_parameters !== undefined) {
    if (!Array.isArray(block.required_parameters) || !block.required_parameters.every((p) => typeof p === 'string')) {
      throw new PolicyParseError(`failed to parse policy: ${where}: required_parameters must be a list of strings`);
    }
    rule.requiredParameters = (block.required_parameters as string[]).map((p) => p.toLowerCase());
  }
  for (const key of ['min_wrapping_ttl', 'max_wrapping_ttl'] as const) {
    const value = block[key];
    if (value === undefined) continue;
    let ms: number;
    try {
      ms = parseDurationMs(value as string | number);
    } catch (err) {
      throw new PolicyParseError(`failed to parse policy: ${where}: ${key}: ${(err as Error).message}`);
    }
    if (key === 'min_wrapping_ttl') rule.minWrappingTtlMs = ms;
    else rule.maxWrappingTtlMs = ms;
  }
  if (
    rule.minWrappingTtlMs !== undefined &&
    rule.maxWrappingTtlMs !== undefined &&
    rule.maxWrappingTtlMs > 0 &&
    rule.minWrappingTtlMs > rule.maxWrappingTtlMs
  ) {
    throw new PolicyParseError(`failed to parse policy: ${where}: max_wrapping_ttl cannot be less than min_wrapping_ttl`);
  }
  return rule;
}

function parameterValues(where: string, key: string, value: unknown): ParameterValues | undefined {
  if (value === undefined) return undefined;
  // HCL gives a list of one object for `key = {...}` written as a block.
  const obj = Array.isArray(value) && value.length === 1 && isObject(value[0]) ? value[0] : value;
  if (!isObject(obj)) throw new PolicyParseError(`failed to parse policy: ${where}: ${key} must be a map of lists`);
  const out: ParameterValues = {};
  for (const [param, values] of Object.entries(obj)) {
    if (!Array.isArray(values)) {
      throw new PolicyParseError(`failed to parse policy: ${where}: ${key}.${showValue(param)} must be a list`);
    }
    out[param.toLowerCase()] = values;
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// ---------------------------------------------------------------------------
// Merged, compiled ACL

/** The permissions of the one rule that governs a path. */
export interface Permissions {
  capabilities: number;
  allowedParameters?: ParameterValues;
  deniedParameters?: ParameterValues;
  requiredParameters?: string[];
  minWrappingTtlMs?: number;
  maxWrappingTtlMs?: number;
}

interface WildcardRule {
  /** The policy path as written (for priority ties). */
  path: string;
  /** Segments; for a prefix rule the last one is the prefix of its segment (without `*`). */
  segments: string[];
  isPrefix: boolean;
  /** Index of the first `+` or `*` in the path string. */
  firstWildcard: number;
  wildcardCount: number;
  perms: Permissions;
}

interface PrefixRule {
  prefix: string;
  perms: Permissions;
}

export interface AclCheck {
  /** Whether the operation's capability is granted. */
  allowed: boolean;
  /** Whether sudo is granted (root paths need it). */
  sudo: boolean;
  /** The governing rule's permissions, for parameter and wrapping checks. */
  perms: Permissions | null;
}

export type AclOperation = 'read' | 'list' | 'create' | 'update' | 'delete' | 'patch';

const OP_CAP: Record<AclOperation, number> = {
  read: CAP.read,
  list: CAP.list,
  create: CAP.create,
  update: CAP.update,
  delete: CAP.delete,
  patch: CAP.patch,
};

const PATH_CACHE_LIMIT = 4096;

/** One compiled ACL for a set of policies. Immutable; cache it per policy set. */
export class ACL {
  readonly root: boolean;
  private readonly exact = new Map<string, Permissions>();
  /** Prefix-glob rules, longest prefix first. */
  private readonly prefixes: PrefixRule[] = [];
  private readonly wildcards: WildcardRule[] = [];
  private readonly cache = new Map<string, Permissions | null>();

  constructor(policies: Policy[], root = false) {
    this.root = root;
    const merged = new Map<string, Permissions>();
    for (const policy of policies) {
      for (const rule of policy.rules) {
        const existing = merged.get(rule.path);
        merged.set(rule.path, existing ? mergePermissions(existing, rule) : copyPermissions(rule));
      }
    }
    for (const [path, perms] of merged) {
      const isPrefix = path.endsWith('*');
      const hasPlus = path.split('/').includes('+') || path.split('/').includes('+*');
      if (hasPlus) {
        const segments = (isPrefix ? path.slice(0, -1) : path).split('/');
        // The first `+` that is a whole segment (a `+` inside a segment is literal).
        let firstPlus = 0;
        for (const seg of segments) {
          if (seg === '+') break;
          firstPlus += seg.length + 1;
        }
        const firstStar = isPrefix ? path.length - 1 : Number.MAX_SAFE_INTEGER;
        this.wildcards.push({
          path,
          segments,
          isPrefix,
          firstWildcard: Math.min(firstPlus, firstStar),
          wildcardCount: segments.filter((s) => s === '+').length,
          perms,
        });
      } else if (isPrefix) {
        this.prefixes.push({ prefix: path.slice(0, -1), perms });
      } else {
        this.exact.set(path, perms);
      }
    }
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The permissions of the rule governing `path` (null: no rule, so nothing is granted). */
  permissionsFor(path: string, forList = false): Permissions | null {
    const key = forList ? `L${path}` : `P${path}`;
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    const found = this.lookup(path, forList);
    if (this.cache.size >= PATH_CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, found);
    return found;
  }

  private lookup(path: string, forList: boolean): Permissions | null {
    const exact = this.exact.get(path);
    if (exact) return exact;
    if (forList && path.endsWith('/')) {
      const trimmed = this.exact.get(path.slice(0, -1));
      if (trimmed) return trimmed;
    }
    let best: { perms: Permissions; desc: Omit<WildcardRule, 'perms' | 'segments'> } | null = null;
    for (const p of this.prefixes) {
      if (path.startsWith(p.prefix)) {
        best = {
          perms: p.perms,
          desc: { path: `${p.prefix}*`, isPrefix: true, firstWildcard: p.prefix.length, wildcardCount: 0 },
        };
        break;
      }
    }
    if (this.wildcards.length === 0) return best?.perms ?? null;
    const parts = path.split('/');
    for (const w of this.wildcards) {
      if (!segmentsMatch(w, parts)) continue;
      if (!best || higherPriority(w, best.desc)) best = { perms: w.perms, desc: w };
    }
    return best?.perms ?? null;
  }

  /** Checks one operation on one path. */
  check(path: string, op: AclOperation): AclCheck {
    if (this.root) return { allowed: true, sudo: true, perms: null };
    const perms = this.permissionsFor(path, op === 'list');
    if (!perms || perms.capabilities & CAP.deny) return { allowed: false, sudo: false, perms };
    return {
      allowed: (perms.capabilities & OP_CAP[op]) !== 0,
      sudo: (perms.capabilities & CAP.sudo) !== 0,
      perms,
    };
  }

  /** The capabilities on a path, as `sys/capabilities-self` reports them. */
  capabilities(path: string): string[] {
    if (this.root) return ['root'];
    const perms = this.permissionsFor(path);
    if (!perms || perms.capabilities === 0) return ['deny'];
    // Sorted by name, as Vault answers them.
    return capabilityNames(perms.capabilities).sort();
  }

  /**
   * Whether the ACL grants anything under a mount (Vault's hasMountAccess, used
   * by sys/internal/ui/mounts/<path>).
   */
  hasMountAccess(mountPath: string): boolean {
    if (this.root) return true;
    const grants = (p: Permissions): boolean => (p.capabilities & CAP.deny) === 0 && (p.capabilities & ALL_BUT_DENY) !== 0;
    for (const [path, perms] of this.exact) if (path.startsWith(mountPath) && grants(perms)) return true;
    for (const { prefix, perms } of this.prefixes) {
      if ((prefix.startsWith(mountPath) || mountPath.startsWith(prefix)) && grants(perms)) return true;
    }
    const mountParts = mountPath.replace(/\/$/, '').split('/');
    for (const w of this.wildcards) {
      if (!grants(w.perms)) continue;
      let ok = true;
      for (let i = 0; i < mountParts.length && i < w.segments.length; i++) {
        const seg = w.segments[i];
        const last = i === w.segments.length - 1;
        if (seg === '+') continue;
        if (last && w.isPrefix ? !mountParts[i].startsWith(seg) : seg !== mountParts[i]) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }
}

function copyPermissions(rule: PathRule): Permissions {
  const p: Permissions = { capabilities: rule.capabilities };
  if (rule.allowedParameters) p.allowedParameters = { ...rule.allowedParameters };
  if (rule.deniedParameters) p.deniedParameters = { ...rule.deniedParameters };
  if (rule.requiredParameters) p.requiredParameters = [...rule.requiredParameters];
  if (rule.minWrappingTtlMs !== undefined) p.minWrappingTtlMs = rule.minWrappingTtlMs;
  if (rule.maxWrappingTtlMs !== undefined) p.maxWrappingTtlMs = rule.maxWrappingTtlMs;
  return p;
}

/** Vault's merge of two rules for the same path: deny wins; otherwise union. */
function mergePermissions(a: Permissions, b: PathRule): Permissions {
  if (a.capabilities & CAP.deny || b.capabilities & CAP.deny) return { capabilities: CAP.deny };
  const out: Permissions = { capabilities: a.capabilities | b.capabilities };
  const allowed = mergeParams(a.allowedParameters, b.allowedParameters);
  if (allowed) out.allowedParameters = allowed;
  const denied = mergeParams(a.deniedParameters, b.deniedParameters);
  if (denied) out.deniedParameters = denied;
  if (a.requiredParameters || b.requiredParameters) {
    out.requiredParameters = [...new Set([...(a.requiredParameters ?? []), ...(b.requiredParameters ?? [])])];
  }
  const min = [a.minWrappingTtlMs, b.minWrappingTtlMs].filter((v): v is number => v !== undefined && v > 0);
  if (min.length) out.minWrappingTtlMs = Math.min(...min);
  const max = [a.maxWrappingTtlMs, b.maxWrappingTtlMs].filter((v): v is number => v !== undefined && v > 0);
  if (max.length) out.maxWrappingTtlMs = Math.max(...max);
  return out;
}

function mergeParams(a?: ParameterValues, b?: ParameterValues): ParameterValues | undefined {
  if (!a) return b ? { ...b } : undefined;
  if (!b) return { ...a };
  const out: ParameterValues = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const existing = out[k];
    // An empty list means "any value", which absorbs any list.
    if (existing === undefined) out[k] = v;
    else if (existing.length === 0 || v.length === 0) out[k] = [];
    else out[k] = [...existing, ...v];
  }
  return out;
}

function segmentsMatch(w: WildcardRule, parts: string[]): boolean {
  const segs = w.segments;
  if (w.isPrefix) {
    if (parts.length < segs.length) return false;
  } else if (parts.length !== segs.length) {
    return false;
  }
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i];
    const part = parts[i];
    const last = i === segs.length - 1;
    if (last && w.isPrefix) {
      // `+*` is a wildcard segment that may be followed by anything.
      if (seg === '+') return true;
      return part.startsWith(seg);
    }
    if (seg === '+') continue;
    if (seg !== part) return false;
  }
  return true;
}

/** Vault's priority order between two matching non-exact rules: is `a` more specific than `b`? */
function higherPriority(
  a: Pick<WildcardRule, 'path' | 'isPrefix' | 'firstWildcard' | 'wildcardCount'>,
  b: Pick<WildcardRule, 'path' | 'isPrefix' | 'firstWildcard' | 'wildcardCount'>,
): boolean {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard > b.firstWildcard;
  if (a.isPrefix !== b.isPrefix) return !a.isPrefix;
  if (a.wildcardCount !== b.wildcardCount) return a.wildcardCount < b.wildcardCount;
  if (a.path.length !== b.path.length) return a.path.length > b.path.length;
  return a.path > b.path;
}

// ---------------------------------------------------------------------------
// Parameter and wrapping constraints

/** Why a request's parameters are refused by the governing rule, or null when they pass. */
export function checkParameters(perms: Permissions, data: Record<string, unknown>): string | null {
  const { allowedParameters: allowed, deniedParameters: denied, requiredParameters: required } = perms;
  if (!allowed && !denied && !required) return null;
  const keys = Object.keys(data);
  if (required) {
    const present = new Set(keys.map((k) => k.toLowerCase()));
    for (const r of required) if (!present.has(r)) return `missing required parameter ${r}`;
  }
  if (denied && '*' in denied && keys.length > 0) return 'parameters are denied on this path';
  for (const key of keys) {
    const name = key.toLowerCase();
    const value = data[key];
    const deniedValues = denied?.[name];
    if (deniedValues && valueInList(value, deniedValues)) return `parameter ${name} is denied`;
    if (allowed) {
      const allowedValues = allowed[name];
      if (allowedValues) {
        if (!valueInList(value, allowedValues)) return `value of parameter ${name} is not allowed`;
      } else if (!('*' in allowed)) {
        return `parameter ${name} is not allowed`;
      }
    }
  }
  return null;
}

function valueInList(value: unknown, list: unknown[]): boolean {
  if (list.length === 0) return true;
  const values = Array.isArray(value) ? value : [value];
  return values.every((v) => list.some((entry) => valueMatches(v, entry)));
}

function valueMatches(value: unknown, entry: unknown): boolean {
  if (typeof entry === 'string' && typeof value === 'string') {
    if (entry === '*') return true;
    if (entry.length > 1 && entry.startsWith('*') && value.endsWith(entry.slice(1))) return true;
    if (entry.length > 1 && entry.endsWith('*') && value.startsWith(entry.slice(0, -1))) return true;
    return value === entry;
  }
  if (typeof entry === 'string' && (typeof value === 'number' || typeof value === 'boolean')) return String(value) === entry;
  return JSON.stringify(value) === JSON.stringify(entry);
}

/** Why the wrapping requested (ttl in ms, or none) violates the rule's bounds, or null. */
export function checkWrapping(perms: Permissions, wrapTtlMs: number | undefined): string | null {
  const min = perms.minWrappingTtlMs ?? 0;
  const max = perms.maxWrappingTtlMs ?? 0;
  if (min === 0 && max === 0) return null;
  if (wrapTtlMs === undefined) return 'response wrapping is required on this path';
  if (min > 0 && wrapTtlMs < min) return 'wrapping ttl is lower than the minimum allowed on this path';
  if (max > 0 && wrapTtlMs > max) return 'wrapping ttl is higher than the maximum allowed on this path';
  return null;
}

// ---------------------------------------------------------------------------
// The built-in policies

/** Vault's default policy: what every non-root token may do to itself. */
export const DEFAULT_POLICY = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow a token to look up its resultant ACL from all policies
path "sys/internal/ui/resultant-acl" {
  capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body
path "sys/renew" {
  capabilities = ["update"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}

# Allow looking up lease properties
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
  capabilities = ["update"]
}
path "sys/tools/hash/*" {
  capabilities = ["update"]
}

# Allow response wrapping
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}
`;

export const ROOT_POLICY = 'root';
export const DEFAULT_POLICY_NAME = 'default';
/** The policy of response-wrapping tokens; it grants nothing through the ACL (unwrap is handled apart). */
export const RESPONSE_WRAPPING_POLICY = 'response-wrapping';

// ---------------------------------------------------------------------------
// The policy store: named policies kept in physical storage, compiled ACLs
// cached per policy set (cleared whenever a policy changes).

const POLICY_PREFIX = 'sys/policy/';
const encoder = new TextEncoder();

export class PolicyStore {
  private readonly storage: KeyValueStorage;
  private readonly policies = new Map<string, Policy>();
  private readonly acls = new Map<string, ACL>();

  constructor(storage: KeyValueStorage) {
    this.storage = storage;
  }

  /** Loads every stored policy; the default policy exists even when never written. */
  async load(): Promise<void> {
    this.policies.clear();
    this.acls.clear();
    for (const stored of await loadRecords<{ name: string; policy: string }>(this.storage, POLICY_PREFIX)) {
      this.policies.set(stored.name, await parsePolicy(stored.name, stored.policy));
    }
    if (!this.policies.has(DEFAULT_POLICY_NAME)) {
      this.policies.set(DEFAULT_POLICY_NAME, await parsePolicy(DEFAULT_POLICY_NAME, DEFAULT_POLICY));
    }
  }

  /** Policy names as Vault lists them (sorted, `root` included). */
  names(): string[] {
    return [...new Set([...this.policies.keys(), ROOT_POLICY])].sort();
  }

  has(name: string): boolean {
    return name === ROOT_POLICY || this.policies.has(name);
  }

  /** A stored policy, or null (`root` has no text). */
  get(name: string): Policy | null {
    return this.policies.get(normalizePolicyName(name)) ?? null;
  }

  /** Parses, stores and activates a policy. Throws PolicyParseError on bad text or a reserved name. */
  async put(rawName: string, text: string): Promise<Policy> {
    const name = normalizePolicyName(rawName);
    if (name === '') throw new PolicyParseError('policy name must not be empty');
    if (name === ROOT_POLICY) throw new PolicyParseError('cannot update "root" policy');
    if (name === RESPONSE_WRAPPING_POLICY) throw new PolicyParseError(`cannot update "${RESPONSE_WRAPPING_POLICY}" policy`);
    if (name.length > 256) throw new PolicyParseError('policy name is longer than 256 characters');
    const policy = await parsePolicy(name, text);
    await this.storage.put(POLICY_PREFIX + name, encoder.encode(JSON.stringify({ name, policy: text })));
    this.policies.set(name, policy);
    this.acls.clear();
    return policy;
  }

  /** Deletes a policy; deleting one that does not exist succeeds. */
  async delete(rawName: string): Promise<void> {
    const name = normalizePolicyName(rawName);
    if (name === ROOT_POLICY) throw new PolicyParseError('cannot delete "root" policy');
    if (name === DEFAULT_POLICY_NAME) throw new PolicyParseError('cannot delete "default" policy');
    await this.storage.delete(POLICY_PREFIX + name);
    this.policies.delete(name);
    this.acls.clear();
  }

  /** The compiled ACL for a token's policies (cached; names must be normalised and sorted for best reuse). */
  acl(policyNames: readonly string[]): ACL {
    const key = policyNames.join('\n');
    let acl = this.acls.get(key);
    if (!acl) {
      const root = policyNames.includes(ROOT_POLICY);
      const policies: Policy[] = [];
      if (!root) {
        for (const n of policyNames) {
          const p = this.policies.get(n);
          if (p) policies.push(p);
        }
      }
      acl = new ACL(policies, root);
      this.acls.set(key, acl);
    }
    return acl;
  }
}

/** Vault treats policy names case-insensitively and trims them. */
export function normalizePolicyName(name: string): string {
  return name.trim().toLowerCase();
}
