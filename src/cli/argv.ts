// Command-line helpers: Vault-style single-dash long flags, repeatable options,
// and the vault CLI's `key=value` pairs.

import { CliUsageError } from './errors.ts';

/**
 * Rewrites Vault-style single-dash long flags to commander's double dash:
 * `-dev` → `--dev`, `-dev-listen-address=x` → `--dev-listen-address=x`.
 * Only names in `longFlags` are rewritten, and nothing after a `--`
 * terminator, so values that happen to start with a dash are left alone.
 */
export function normaliseArgv(args: readonly string[], longFlags: ReadonlySet<string>): string[] {
  const out: string[] = [];
  let done = false;
  for (const arg of args) {
    if (done) {
      out.push(arg);
      continue;
    }
    if (arg === '--') {
      done = true;
      out.push(arg);
      continue;
    }
    const m = /^-([A-Za-z][A-Za-z0-9-]+)(=.*)?$/s.exec(arg);
    if (m && longFlags.has(m[1])) out.push(`--${m[1]}${m[2] ?? ''}`);
    else out.push(arg);
  }
  return out;
}

/** Commander option parser for a repeatable option: `--read a --read b` → ['a', 'b']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Parses `k=v` (for `--extra-claim`); the value may itself hold `=`. */
export function splitPair(pair: string, what: string): [string, string] {
  const i = pair.indexOf('=');
  if (i <= 0) throw new CliUsageError(`${what} ${JSON.stringify(pair)} must look like key=value`);
  return [pair.slice(0, i), pair.slice(i + 1)];
}

/**
 * Parses the vault CLI's `key=value` arguments. A key given more than once
 * collects its values into a list, as `vault write` does.
 */
export function parseKeyValuePairs(pairs: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const pair of pairs) {
    const [key, value] = splitPair(pair, 'argument');
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** A non-negative integer option value. */
export function parseCount(value: string, option: string): number {
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) {
    throw new CliUsageError(`${option} ${JSON.stringify(value)} must be a whole number, 0 or more`);
  }
  return Number(value);
}
