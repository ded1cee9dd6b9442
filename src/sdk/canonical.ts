// Canonical forms of request paths: a path with some of its named captures
// (names compared without case, such as policy or role names) rewritten in
// place, the rest of it exactly as it matched. One rule, used by the
// framework's resolve-path and by the server's own routes.

/**
 * `path` with the named captures of `m` (a match of `path` made with the `d`
 * flag, so it has indices) rewritten by `canonical`, lower-casing by default.
 * Captures that did not take part in the match are left alone.
 */
export function lowerCaptures(
  path: string,
  m: RegExpExecArray,
  names: readonly string[],
  canonical: (name: string) => string = (name) => name.toLowerCase(),
): string {
  const spans: Array<[number, number]> = [];
  for (const name of names) {
    const at = m.indices?.groups?.[name];
    if (at) spans.push(at);
  }
  if (spans.length === 0) return path;
  // Right to left, so earlier spans keep their positions when a later one changes length.
  spans.sort((a, b) => b[0] - a[0]);
  let out = path;
  for (const [start, end] of spans) out = out.slice(0, start) + canonical(out.slice(start, end)) + out.slice(end);
  return out;
}
