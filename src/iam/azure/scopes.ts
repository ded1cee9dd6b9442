// azblob:// scopes -> user delegation SAS scopes (pure).
//
// A pattern is azblob://<account>/<container>/<blob path>. A service SAS names
// exactly one resource: a container (sr=c), one blob (sr=b) or, on an account
// with a hierarchical namespace only, a directory (sr=d with sdd = its depth).
// So each pattern becomes one SAS, and a pattern no SAS can name exactly is refused:
//
//   pattern                          sr   sdd  read (sp)   write (sp)
//   azblob://acct/c/**               c         rl          acwd
//   azblob://acct/c/dir/sub/**       d    2    rl          acwd      hierarchical_namespace: true only
//   azblob://acct/c/dir/file.txt     b         r           acwd
//
// read:  r (read content, properties, metadata) + l (list) where the resource
//        has a listing (a container or a directory; a blob SAS takes no l).
// write: a (append a block to an append blob) + c (create) + w (write, overwrite)
//        + d (delete). `a` is included: appending is a write to a blob the
//        pattern names, so it grants nothing outside the scope, and without it an
//        append-blob writer (logs) cannot write where the role says it may.
// Read and write of the same resource share one SAS with the union of the two
// permission sets (same resource, so still exact); everything else is one SAS
// per pattern. Permissions are in Azure's canonical order (r a c w d l).
//
// A directory SAS grants the paths under the directory; on a hierarchical
// namespace the directory is an object itself, which the SAS also reaches
// (its properties; with d, deleting it, which removes only paths under it).
//
// Refused (never widened):
//   - an account other than the target's storage_account
//   - wildcards in the account or container, invalid container names
//   - the account or the container alone (no blob part)
//   - "*" (one segment): a SAS names a container, a directory or a blob, never a set of names
//   - "**" anywhere but at the end of the path, or at the end of a partial name
//     (`dir/x**`: a name prefix that stops mid-segment is no directory)
//   - a prefix `dir/**` when the account has no hierarchical namespace (a
//     directory SAS exists only there; the alternative would be the container)
//   - blob names over 1,024 characters or 254 segments, empty segments, "." or
//     ".." segments, a trailing "/" and backslashes (URLs and clients rewrite them)

import { forEachScope } from '../scopes.ts';
import type { Scopes } from '../types.ts';
import type { AzureTarget } from './target.ts';

export const AZBLOB_SCHEME = 'azblob';
/** Blob names: at most 1,024 characters. */
export const MAX_BLOB_NAME_CHARS = 1024;
/** Blob names: at most 254 path segments. */
export const MAX_BLOB_SEGMENTS = 254;

export const READ_PERMISSIONS = 'rl';
export const READ_BLOB_PERMISSIONS = 'r';
export const WRITE_PERMISSIONS = 'acwd';
/** Azure's order for the permission letters this mapping uses. */
const PERMISSION_ORDER = 'racwdl';

/** sr: container, blob, directory. */
export type SasResource = 'c' | 'b' | 'd';

export type AzblobResource =
  | { kind: 'container'; account: string; container: string }
  | { kind: 'directory'; account: string; container: string; path: string; depth: number }
  | { kind: 'blob'; account: string; container: string; path: string };

/** One SAS of a grant. */
export interface SasScope {
  /** The SAS's `sr`. */
  resource: SasResource;
  container: string;
  /** The blob name (sr=b) or the directory path without trailing "/" (sr=d). */
  path?: string;
  /** The SAS's `sdd` (sr=d only): the directory's number of segments. */
  depth?: number;
  /** The SAS's `sp`, canonical order. */
  permissions: string;
  /** The patterns it serves, as `read:<pattern>` / `write:<pattern>`. */
  patterns: string[];
}

// Container names: 3-63 lowercase letters, digits and "-", a letter or digit first
// and last, no "--"; plus the special containers.
const CONTAINER = /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/;
const SPECIAL_CONTAINERS = ['$root', '$web', '$logs'];

export function isAzblobPattern(pattern: string): boolean {
  return pattern.startsWith(`${AZBLOB_SCHEME}://`);
}

/** Whether any read or write pattern is an azblob:// one. */
export function hasAzblobScope(scopes: Scopes): boolean {
  return scopes.read.some(isAzblobPattern) || scopes.write.some(isAzblobPattern);
}

function containerProblem(container: string): string | null {
  if (container.includes('*')) return 'a SAS names one container: wildcards in the container name cannot be expressed';
  if (SPECIAL_CONTAINERS.includes(container)) return null;
  if (!CONTAINER.test(container)) {
    return `${JSON.stringify(container)} is not a container name (3 to 63 lowercase letters, digits and "-", a letter or digit first and last, no "--")`;
  }
  return null;
}

function pathProblem(path: string): string | null {
  if (path.length > MAX_BLOB_NAME_CHARS) return `blob names are at most ${MAX_BLOB_NAME_CHARS} characters`;
  if (path.includes('\\')) return 'backslashes are refused: URLs and clients rewrite them to "/", so the SAS would name another blob';
  const segments = path.split('/');
  if (segments.length > MAX_BLOB_SEGMENTS) return `blob names have at most ${MAX_BLOB_SEGMENTS} segments`;
  if (segments.some((s) => s === '')) return 'empty path segments ("//" or a trailing "/") are refused: they do not name one blob or directory';
  if (segments.some((s) => s === '.' || s === '..')) return '"." and ".." segments are refused: URLs resolve them, so the SAS would name another path';
  return null;
}

/**
 * Parses an azblob:// pattern against the target, or returns why a user
 * delegation SAS cannot express it exactly.
 */
export function parseAzblobPattern(
  pattern: string,
  target: Pick<AzureTarget, 'storage_account' | 'hierarchical_namespace'>,
): AzblobResource | string {
  const rest = pattern.slice(`${AZBLOB_SCHEME}://`.length);
  const parts = rest.split('/');
  const account = parts[0];
  if (account.includes('*')) return 'a SAS is signed for one storage account: wildcards in the account name cannot be expressed';
  if (account !== target.storage_account) {
    return `names storage account ${JSON.stringify(account)}, but iam.azure.storage_account is ${JSON.stringify(target.storage_account)} (one target, one account)`;
  }
  if (parts.length < 2 || parts[1] === '') return `names the account, not a container: use azblob://${account}/<container>/**`;
  const container = parts[1];
  const bad = containerProblem(container);
  if (bad) return bad;
  if (parts.length < 3) return `names the container itself, not blobs: use azblob://${account}/${container}/** for every blob in it`;
  const path = parts.slice(2).join('/');
  if (path === '**') return { kind: 'container', account, container };
  const prefix = path.endsWith('**');
  const head = prefix ? path.slice(0, -2) : path;
  if (head.includes('**')) return '"**" is only expressible at the end of the path: a SAS names a container, a directory or one blob';
  if (head.includes('*')) {
    return '"*" matches within one path segment, which no SAS can name: a SAS names a container, a directory or one blob; use a prefix ending in "/**" or exact names';
  }
  if (prefix) {
    if (!head.endsWith('/')) {
      return '"**" after a partial name is a name prefix, not a directory: no SAS names it; end the prefix at a "/" (dir/**)';
    }
    const dir = head.slice(0, -1);
    const problem = pathProblem(dir);
    if (problem) return problem;
    if (!target.hierarchical_namespace) {
      return `a prefix needs a directory SAS (sr=d), which Azure offers only on accounts with a hierarchical namespace; without one the SAS would widen to the whole container. Set iam.azure.hierarchical_namespace to true if ${account} has one, or use azblob://${account}/${container}/** or exact blob names`;
    }
    return { kind: 'directory', account, container, path: dir, depth: dir.split('/').length };
  }
  const problem = pathProblem(path);
  if (problem) return problem;
  return { kind: 'blob', account, container, path };
}

function mergePermissions(a: string, b: string): string {
  return [...PERMISSION_ORDER].filter((p) => a.includes(p) || b.includes(p)).join('');
}

function scopeKey(r: AzblobResource): string {
  return r.kind === 'container' ? `c ${r.container}` : `${r.kind === 'blob' ? 'b' : 'd'} ${r.container}/${r.path}`;
}

/**
 * The SAS scopes for the azblob:// patterns of `scopes` (others are ignored),
 * in pattern order (reads first). Throws IamFieldError naming `read[i]` /
 * `write[i]` and the pattern when one cannot be expressed exactly. Empty means
 * "no azblob:// scope".
 */
export function sasScopesFor(target: Pick<AzureTarget, 'storage_account' | 'hierarchical_namespace'>, scopes: Scopes): SasScope[] {
  const byKey = new Map<string, SasScope>();
  forEachScope(scopes, isAzblobPattern, (pattern) => parseAzblobPattern(pattern, target), (access, parsed, _field, pattern) => {
    const permissions = access === 'write' ? WRITE_PERMISSIONS : parsed.kind === 'blob' ? READ_BLOB_PERMISSIONS : READ_PERMISSIONS;
    const key = scopeKey(parsed);
    const source = `${access}:${pattern}`;
    const existing = byKey.get(key);
    if (existing) {
      existing.permissions = mergePermissions(existing.permissions, permissions);
      if (!existing.patterns.includes(source)) existing.patterns.push(source);
      return;
    }
    const scope: SasScope = {
      resource: parsed.kind === 'container' ? 'c' : parsed.kind === 'blob' ? 'b' : 'd',
      container: parsed.container,
      permissions: mergePermissions('', permissions),
      patterns: [source],
    };
    if (parsed.kind !== 'container') scope.path = parsed.path;
    if (parsed.kind === 'directory') scope.depth = parsed.depth;
    byKey.set(key, scope);
  });
  return [...byKey.values()];
}
