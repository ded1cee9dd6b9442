// JSON from the network, parsed with bounds: nesting deeper than a sane limit
// is refused before the parser runs, so no deeply nested value ever reaches
// code that walks it (renderers, validators, JSON.stringify).

/** Vault's default max_json_depth. */
export const MAX_JSON_DEPTH = 300;

export class JsonInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JsonInputError';
  }
}

/** Whether the JSON text nests arrays and objects deeper than `max` (one pass, no recursion, strings skipped). */
export function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * JSON.parse with a nesting limit. Throws JsonInputError naming the limit, or
 * where the text stops being JSON: never a piece of the text (V8's own message
 * quotes it, and a malformed body may hold a token).
 */
export function parseJsonBounded(text: string, maxDepth: number = MAX_JSON_DEPTH): unknown {
  if (nestingExceeds(text, maxDepth)) {
    throw new JsonInputError(`JSON input exceeds the allowed nesting depth of ${maxDepth}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    if (/end of JSON input/i.test(message)) throw new JsonInputError('unexpected end of JSON input');
    const at = /position (\d+)/.exec(message);
    throw new JsonInputError(at ? `invalid JSON at position ${at[1]}` : 'invalid JSON');
  }
}
