// Printing: pretty JSON, Vault-style key/value tables, and shell-safe env lines.

import type { Creds } from '../client/index.ts';
import type { CliIo } from './context.ts';

export type OutputFormat = 'table' | 'json';
export const OUTPUT_FORMATS: OutputFormat[] = ['table', 'json'];

export function printJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** A value as the vault CLI prints it (Go's %v): lists as [a b], maps as map[k:v], nested alike. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return 'n/a';
  if (Array.isArray(value)) return `[${value.map(cell).join(' ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return `map[${entries.map(([k, v]) => `${k}:${cell(v)}`).join(' ')}]`;
  }
  return String(value);
}

/** A two-column Key/Value table like the vault CLI's, keys in the order given. */
export function formatTable(rows: Record<string, unknown>): string {
  const keys = Object.keys(rows);
  const width = Math.max(3, ...keys.map((k) => k.length));
  const lines = [`${'Key'.padEnd(width)}    Value`, `${'---'.padEnd(width)}    -----`];
  for (const k of keys) lines.push(`${k.padEnd(width)}    ${cell(rows[k])}`);
  return `${lines.join('\n')}\n`;
}

export function printRecord(io: CliIo, format: OutputFormat, value: Record<string, unknown>): void {
  if (format === 'json') printJson(io, value);
  else io.stdout(formatTable(value));
}

/** A list: one entry per line under a `Keys` header, or a JSON array. */
export function printList(io: CliIo, format: OutputFormat, header: string, items: string[]): void {
  if (format === 'json') {
    printJson(io, items);
    return;
  }
  if (items.length === 0) return;
  io.stdout(`${[header, '-'.repeat(header.length), ...items].join('\n')}\n`);
}

/** Quotes a value for POSIX shells: single quotes, with embedded ones closed and escaped. */
export function shellQuote(value: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function envLines(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join('');
}

export type CredsFormat = 'json' | 'token' | 'env';
export const CREDS_FORMATS: CredsFormat[] = ['json', 'token', 'env'];

/** Creds as `creds` and `lease renew` print them: the data with the lease, the bare JWT, or env lines. */
export function printCreds(io: CliIo, format: CredsFormat, creds: Creds): void {
  if (format === 'token') {
    io.stdout(`${creds.token}\n`);
  } else if (format === 'env') {
    io.stdout(envLines({ TVM_TOKEN: creds.token, TVM_LEASE_ID: creds.lease_id, TVM_EXPIRES_AT: creds.expires_at }));
  } else {
    printJson(io, creds);
  }
}
