// The key space shared by both physical backends: the one error family,
// Vault's key order and list semantics (a folder index for in-memory key sets,
// prefix ranges for indexed stores), and the barrier view that gives an engine
// its own prefixed area of the physical storage.

import type { Storage, StorageEntry } from '../../sdk/logical.ts';
import type { PhysicalStorage } from '../types.ts';

export type StorageErrorCode =
  | 'ERR_STORAGE_OPEN' // the file cannot be opened, created or migrated
  | 'ERR_STORAGE_CLOSED' // an operation after close()
  | 'ERR_STORAGE_READ' // a read failed
  | 'ERR_STORAGE_WRITE' // a write's transaction failed (nothing of it was applied)
  | 'ERR_STORAGE_SEAL_KEY' // the seal's keys do not open the storage (wrong key, unknown key id)
  | 'ERR_STORAGE_UNSEALED' // the storage was written without a seal (an older tvm)
  | 'ERR_STORAGE_CORRUPT'; // a value is not sealed or fails authentication (tampered, moved)

export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageError';
    this.code = code;
  }
}

export function isStorageError(err: unknown): err is StorageError {
  return err instanceof StorageError;
}

export function closedError(): StorageError {
  return new StorageError('ERR_STORAGE_CLOSED', 'storage is closed');
}

/** The message of an unknown error, on one line. */
export function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ');
}

/**
 * Vault's key order: by Unicode code point, which is also the byte order of
 * the UTF-8 encoding (Go's sort.Strings, SQLite's BINARY collation). JavaScript's
 * `<` compares UTF-16 code units, which differs only for characters above U+FFFF
 * against U+E000..U+FFFF; this corrects that case.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (D800..DFFF) starts a character above U+FFFF: it sorts after all of the BMP.
    const fx = x >= 0xd800 && x <= 0xdfff ? x + 0x10000 : x;
    const fy = y >= 0xd800 && y <= 0xdfff ? y + 0x10000 : y;
    return fx < fy ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

/**
 * The smallest string greater than every string that starts with `prefix`
 * (in code point order), or null when there is none (empty prefix). Keys with
 * the prefix are exactly those in [prefix, prefixEnd(prefix)).
 */
export function prefixEnd(prefix: string): string | null {
  const last = prefix.charCodeAt(prefix.length - 1);
  // Fast path: the last character is in the BMP below the surrogates.
  if (prefix.length > 0 && last < 0xd7ff) return prefix.slice(0, -1) + String.fromCharCode(last + 1);
  const points = Array.from(prefix);
  while (points.length > 0) {
    const cp = points.pop()!.codePointAt(0)!;
    if (cp < 0x10ffff) {
      const next = cp + 1 >= 0xd800 && cp + 1 <= 0xdfff ? 0xe000 : cp + 1;
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return null;
}

/** The list entry a key contributes under `prefix` (which the key starts with): a name, or a folder with `/`. */
export function childOf(prefix: string, key: string): string {
  const rest = key.slice(prefix.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash + 1);
}

/** The position of the `/` that ends the parent of a folder (which ends in `/`), or -1 for the root. */
function parentSlash(folder: string): number {
  return folder.length < 2 ? -1 : folder.lastIndexOf('/', folder.length - 2);
}

/**
 * An index of a set of `/`-separated keys by folder, answering Vault's LIST
 * without scanning: each folder (`''` or ending in `/`) maps to its direct
 * children, names and sub-folders (`name/`). Adding or removing a key costs
 * O(depth); listing costs O(children).
 */
export class KeyTree {
  private readonly folders = new Map<string, Set<string>>();

  /** Adds a key; returns false if it was already present. */
  add(key: string): boolean {
    let slash = key.lastIndexOf('/');
    let folder = key.slice(0, slash + 1);
    let child = key.slice(slash + 1);
    for (;;) {
      let children = this.folders.get(folder);
      const created = children === undefined;
      if (children === undefined) {
        children = new Set();
        this.folders.set(folder, children);
      }
      if (children.has(child)) return false;
      children.add(child);
      // A folder that already existed is already listed in its parent.
      if (!created || folder === '') return true;
      slash = parentSlash(folder);
      child = folder.slice(slash + 1);
      folder = folder.slice(0, slash + 1);
    }
  }

  /** Removes a key; returns false if it was not present. */
  remove(key: string): boolean {
    let slash = key.lastIndexOf('/');
    let folder = key.slice(0, slash + 1);
    let child = key.slice(slash + 1);
    let removedKey = false;
    for (;;) {
      const children = this.folders.get(folder);
      if (children === undefined || !children.delete(child)) return removedKey;
      removedKey = true;
      // An emptied folder disappears from its parent too.
      if (children.size > 0 || folder === '') return true;
      this.folders.delete(folder);
      slash = parentSlash(folder);
      child = folder.slice(slash + 1);
      folder = folder.slice(0, slash + 1);
    }
  }

  /** Vault's LIST: keys directly under `prefix`, relative to it, folders with `/`, sorted. */
  list(prefix: string): string[] {
    const slash = prefix.lastIndexOf('/');
    const folder = prefix.slice(0, slash + 1);
    const partial = prefix.slice(slash + 1);
    const children = this.folders.get(folder);
    if (children === undefined) return [];
    let out: string[];
    if (partial === '') {
      out = [...children];
    } else {
      out = [];
      for (const child of children) if (child.startsWith(partial)) out.push(child.slice(partial.length));
    }
    return out.sort(compareKeys);
  }

  clear(): void {
    this.folders.clear();
  }
}

/**
 * Vault's barrier view: the engine-facing Storage for one area of the
 * physical storage. Every key is transparently prefixed; the engine never
 * sees the prefix.
 */
export function createView(physical: PhysicalStorage, prefix: string): Storage {
  return {
    async get(key: string): Promise<StorageEntry | null> {
      const value = await physical.get(prefix + key);
      return value === null ? null : { key, value };
    },
    put(entry: StorageEntry): Promise<void> {
      return physical.put(prefix + entry.key, entry.value);
    },
    delete(key: string): Promise<void> {
      return physical.delete(prefix + key);
    },
    list(sub: string): Promise<string[]> {
      return physical.list(prefix + sub);
    },
  };
}
