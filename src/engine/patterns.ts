// Resource patterns: what a token may read or write.
//
// Grammar (see README "Resource patterns"):
//   pattern = scheme "://" path
//   scheme  = a lowercase letter, then lowercase letters, digits, "+", "-" or "."
//   path    = one or more printable characters other than whitespace; "*" and
//             "**" are wildcards, a run of three or more "*" is refused
// Matching a concrete resource name:
//   "*"  matches any run of characters within one path segment (never "/")
//   "**" matches any run of characters, across segments ("/" included)
//   every other character matches itself, case-sensitively
// Examples: `db://orders/*` matches `db://orders/42`, not `db://orders/42/items`;
// `s3://logs/app/**` matches `s3://logs/app/2026/11/23.log`, not `s3://logs/other`.

export const MAX_PATTERN_LENGTH = 512;

const SCHEME = /^[a-z][a-z0-9+.-]*$/;
// Whitespace and control characters, including Unicode separators.
const FORBIDDEN = /[\s\u0000-\u001f\u007f-\u009f\u2028\u2029]/u;

type Token = { kind: 'lit'; ch: string } | { kind: 'star' } | { kind: 'dstar' };

/** Returns why the pattern is invalid, or null when it is valid. */
export function patternProblem(pattern: string): string | null {
  if (pattern.length === 0) return 'a pattern may not be empty';
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return `a pattern may be at most ${MAX_PATTERN_LENGTH} characters (got ${pattern.length})`;
  }
  if (FORBIDDEN.test(pattern)) return 'a pattern may not contain whitespace or control characters';
  const sep = pattern.indexOf('://');
  if (sep <= 0) return 'expected <scheme>://<path>, for example db://orders/*';
  const scheme = pattern.slice(0, sep);
  if (!SCHEME.test(scheme)) {
    return `scheme ${JSON.stringify(scheme)} must start with a lowercase letter and hold only a-z, 0-9, "+", "-", "."`;
  }
  const path = pattern.slice(sep + 3);
  if (path.length === 0) return 'the path after :// may not be empty';
  if (path.includes('***')) return 'a run of three or more "*" is not a wildcard; use "*" or "**"';
  return null;
}

function tokenize(pattern: string): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        out.push({ kind: 'dstar' });
        i++;
      } else {
        out.push({ kind: 'star' });
      }
    } else {
      out.push({ kind: 'lit', ch });
    }
  }
  return out;
}

const regexCache = new Map<string, RegExp>();

function toRegExp(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (re) return re;
  const body = tokenize(pattern)
    .map((t) => (t.kind === 'lit' ? t.ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : t.kind === 'star' ? '[^/]*' : '[\\s\\S]*'))
    .join('');
  re = new RegExp(`^${body}$`, 'u');
  if (regexCache.size > 10_000) regexCache.clear();
  regexCache.set(pattern, re);
  return re;
}

/** Whether a concrete resource name matches the pattern. */
export function matchesResource(pattern: string, resource: string): boolean {
  return toRegExp(pattern).test(resource);
}

/**
 * Whether every resource `inner` can match is also matched by `outer`: the
 * down-scoping test. It is sound (it never says yes when some resource of
 * `inner` escapes `outer`); for exotic wildcard mixes it may say no to a
 * request that is in fact narrower, which only refuses, never widens.
 */
export function patternCovers(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  const r = tokenize(outer);
  const p = tokenize(inner);
  const memo = new Map<number, boolean>();
  const width = p.length + 1;
  const covers = (i: number, j: number): boolean => {
    const key = i * width + j;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === r.length) {
      result = j === p.length;
    } else {
      const t = r[i];
      if (t.kind === 'lit') {
        const q = p[j];
        result = q !== undefined && q.kind === 'lit' && q.ch === t.ch && covers(i + 1, j + 1);
      } else if (t.kind === 'star') {
        const q = p[j];
        const canEat = q !== undefined && (q.kind === 'star' || (q.kind === 'lit' && q.ch !== '/'));
        result = covers(i + 1, j) || (canEat && covers(i, j + 1));
      } else {
        result = covers(i + 1, j) || (j < p.length && covers(i, j + 1));
      }
    }
    memo.set(key, result);
    return result;
  };
  return covers(0, 0);
}

/** The scope claim of a token: `read:<pattern>` and `write:<pattern>` items, space-separated. */
export function scopeOf(read: readonly string[], write: readonly string[]): string {
  return [...read.map((p) => `read:${p}`), ...write.map((p) => `write:${p}`)].join(' ');
}

/** Splits a scope claim back into read and write patterns; other items are ignored. */
export function parseScope(scope: string): { read: string[]; write: string[] } {
  const read: string[] = [];
  const write: string[] = [];
  for (const item of scope.split(' ')) {
    if (item.startsWith('read:')) read.push(item.slice(5));
    else if (item.startsWith('write:')) write.push(item.slice(6));
  }
  return { read, write };
}
