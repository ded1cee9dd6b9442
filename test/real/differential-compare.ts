// The differential suite's judge: two answers to one request (OpenBao's and
// the dev server's) are reduced to what must agree, compared, and each
// difference is named so docs/fidelity.md can list it. Values that must
// differ between two servers (ids, tokens, accessors, times, addresses) are
// replaced by placeholders and so compared by kind; everything else is
// compared by value.

/** One answer as the suite records it. */
export interface Answer {
  status: number;
  contentType: string;
  /** The parsed JSON body, or the text when it is not JSON ('' for none). */
  body: unknown;
}

/** One difference between OpenBao's answer and the dev server's. */
export interface Difference {
  /** The scenario step (its id, as the table names it). */
  step: string;
  /** What differs: `status`, `errors`, `body keys`, `data.ttl`, ... */
  where: string;
  openbao: string;
  dev: string;
}

/** What a target's values are called in a normalised answer. */
export interface Placeholders {
  /** Exact values (tokens, accessors, lease ids, ...) and the name each stands for. */
  names: Map<string, string>;
  /** The server's own address (http://127.0.0.1:port). */
  address: string;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})/g;
const JWT = /^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
/** A plugin binary's sha256 (it changes with every build of the plugin). */
const SHA256 = /^[0-9a-f]{64}$/;
const VAULT_TOKEN = /^(?:s|hvs|b|hvb|r|hvr)\.[A-Za-z0-9_-]{20,}$/;
/** Vault's random 24-character identifiers (accessors, lease id suffixes). */
const RANDOM_ID = /(?<![A-Za-z0-9])[A-Za-z0-9]{24}(?![A-Za-z0-9])/g;
/** Unix-seconds fields (and JWT time claims): compared by type. */
const SECONDS = new Set(['creation_time', 'server_time_utc', 'iat', 'exp', 'nbf', 'last_update_time']);
/**
 * Remaining-time fields: a second or two may pass between the two servers' answers (a renewal
 * capped at the max ttl answers what is left of it, counted in whole seconds).
 */
const REMAINING = new Set(['ttl', 'lease_duration']);
/** Random names (Vault's cluster name is `vault-cluster-<hex>`) and key material (JWK members): compared by type. */
const NAMES = new Set(['cluster_name', 'kid', 'x', 'y', 'n']);
/** Mount accessors (`tvm_1a2b3c4d`, `auth_approle_1a2b3c4d`) and entity names (`entity_1a2b3c4d`): their random part. */
const HEX_SUFFIX = /^([a-z][a-z0-9_]*)_[0-9a-f]{8}(?![0-9a-f])/;

/**
 * What is left of a max ttl, in a ttl warning (humanDuration's form): it depends on the
 * second each server answered in, so it is compared by form (Go's zero parts would show).
 */
const REMAINING_MAX = /effective max_ttl of "(?:[1-9]\d*h)?(?:[1-9]\d*m)?(?:[1-9]\d*s)?"/g;

/** A string with the target's own values replaced by placeholders. */
export function normalizeString(s: string, p: Placeholders): string {
  const exact = p.names.get(s);
  if (exact !== undefined) return exact;
  if (JWT.test(s)) return '<jwt>';
  if (VAULT_TOKEN.test(s)) return '<token>';
  if (SHA256.test(s)) return '<sha256>';
  let out = s;
  if (p.address) out = out.split(p.address).join('<addr>');
  for (const [value, name] of p.names) if (value.length >= 8 && out.includes(value)) out = out.split(value).join(name);
  return out
    .replace(REMAINING_MAX, 'effective max_ttl of "<remaining>"')
    .replace(HEX_SUFFIX, '$1_<hex>').replace(TIME, '<time>').replace(UUID, '<uuid>').replace(RANDOM_ID, '<id>');
}

/** A JSON value with every string normalised and the per-server numbers replaced. */
export function normalize(value: unknown, p: Placeholders, key = ''): unknown {
  if (typeof value === 'string') return NAMES.has(key) ? '<name>' : normalizeString(value, p);
  if (typeof value === 'number' && SECONDS.has(key)) return '<seconds>';
  if (Array.isArray(value)) return value.map((v) => normalize(v, p));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[normalizeString(k, p)] = normalize(v, p, k);
    return out;
  }
  return value;
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** A value as a table cell shows it: compact JSON, bounded. */
export function render(v: unknown, max = 160): string {
  const text = v === undefined ? 'absent' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** An answer as a table cell shows it when the status differs. */
export function renderAnswer(a: Answer): string {
  if (a.body === '' || a.body === undefined) return String(a.status);
  const body = a.body as Record<string, unknown>;
  if (body && typeof body === 'object' && Array.isArray(body.errors)) return `${a.status} ${render({ errors: body.errors })}`;
  if (body && typeof body === 'object' && 'data' in body) return `${a.status} ${render({ data: body.data })}`;
  return `${a.status} ${render(a.body)}`;
}

/** Lists of names, which a server may answer in any order. */
function isNameList(where: string, a: unknown[], b: unknown[]): boolean {
  return [...a, ...b].every((x) => typeof x === 'string') && /\.(keys|policies|token_policies|identity_policies)$/.test(where);
}

function compareValues(step: string, where: string, a: unknown, b: unknown, out: Difference[]): void {
  const key = where.split('.').pop() ?? '';
  if (kind(a) !== kind(b)) {
    out.push({ step, where, openbao: render(a), dev: render(b) });
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (isNameList(where, a, b)) {
      const x = JSON.stringify([...a].map((v) => JSON.stringify(v)).sort());
      const y = JSON.stringify([...b].map((v) => JSON.stringify(v)).sort());
      if (x !== y) out.push({ step, where, openbao: render([...a].sort()), dev: render([...b].sort()) });
      return;
    }
    if (a.length !== b.length) {
      out.push({ step, where, openbao: render(a), dev: render(b) });
      return;
    }
    a.forEach((v, i) => compareValues(step, `${where}[${i}]`, v, b[i], out));
    return;
  }
  if (a !== null && typeof a === 'object') {
    const x = a as Record<string, unknown>;
    const y = b as Record<string, unknown>;
    const onlyA = Object.keys(x).filter((k) => !(k in y)).sort();
    const onlyB = Object.keys(y).filter((k) => !(k in x)).sort();
    if (onlyA.length > 0 || onlyB.length > 0) {
      out.push({ step, where: `${where} keys`, openbao: onlyA.join(', ') || '-', dev: onlyB.join(', ') || '-' });
    }
    for (const k of Object.keys(x).sort()) if (k in y) compareValues(step, `${where}.${k}`, x[k], y[k], out);
    return;
  }
  if (a === b) return;
  if (typeof a === 'number' && typeof b === 'number' && REMAINING.has(key) && Math.abs(a - b) <= 2) return;
  out.push({ step, where, openbao: render(a), dev: render(b) });
}

/**
 * The differences between OpenBao's answer and the dev server's to one step,
 * both already normalised. A differing status is one difference (both answers
 * shown); otherwise errors, envelope keys, data keys and values are compared.
 */
export function compareAnswers(step: string, openbao: Answer, dev: Answer): Difference[] {
  const out: Difference[] = [];
  if (openbao.status !== dev.status) {
    out.push({ step, where: 'status', openbao: renderAnswer(openbao), dev: renderAnswer(dev) });
    return out;
  }
  const a = openbao.body;
  const b = dev.body;
  const aErrors = isErrorBody(a);
  const bErrors = isErrorBody(b);
  if (aErrors || bErrors) {
    if (!aErrors || !bErrors) out.push({ step, where: 'body', openbao: render(a), dev: render(b) });
    else compareErrors(step, (a as { errors: string[] }).errors, (b as { errors: string[] }).errors, out);
    return out;
  }
  compareValues(step, 'body', a, b, out);
  return out;
}

/**
 * Vault's own wording, where the dev server uses it: a dev server message that
 * starts with one of these claims to be Vault's, so its text must be
 * OpenBao's. Other messages are the dev server's own (they name the field and
 * the value, see the README's API contract): only their shape is compared.
 */
export const VAULT_WORDING = [
  'permission denied',
  'unsupported path',
  'unsupported operation',
  'no handler for route',
  'invalid lease',
  'invalid accessor',
  'bad token',
  'token not found',
  'No secret engine mount at',
  'No auth engine at',
  'path is already in use at',
  'invalid role or secret ID',
  'wrapping token is not valid or does not exist',
  'must have at least one bound constraint',
  'error validating token',
  'endpoint requires response wrapping',
  'failed to parse policy',
  'failed to parse JSON input',
  'child policies must be subset of parent',
  'root or sudo privileges required',
  'cannot delete',
  'missing role_id',
];

/** A message without the list Vault's core wraps returned errors in ("1 error occurred:\n\t* ...\n\n"). */
export function unwrapMessage(message: string): string {
  const m = /^\d+ errors? occurred:\n\t\* ([\s\S]*?)\n\n$/.exec(message);
  return m ? m[1] : message;
}

/** Whether the dev server's message claims Vault's wording. */
export function claimsVaultWording(message: string): boolean {
  const text = unwrapMessage(message);
  return VAULT_WORDING.some((p) => text === p || text.startsWith(`${p} `) || text.startsWith(`${p}:`) || text.startsWith(`${p}.`));
}

function compareErrors(step: string, a: string[], b: string[], out: Difference[]): void {
  if (a.length !== b.length || ![...a, ...b].every((m) => typeof m === 'string')) {
    out.push({ step, where: 'errors', openbao: render(a), dev: render(b) });
    return;
  }
  a.forEach((m, i) => {
    if (m !== b[i] && claimsVaultWording(b[i])) out.push({ step, where: `errors[${i}]`, openbao: render(m), dev: render(b[i]) });
  });
}

function isErrorBody(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Array.isArray((v as { errors?: unknown }).errors) && Object.keys(v).length === 1;
}

// ---------------------------------------------------------------------------
// docs/fidelity.md's table

/** One row of the table: a difference that stays, and why. */
export interface TableRow {
  /** The step id (first code span of the request cell), or `*` for every answer. */
  step: string;
  request: string;
  where: string;
  openbao: string;
  dev: string;
  why: string;
  line: number;
}

function cells(line: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && line[i + 1] === '|') {
      cur += '|';
      i++;
    } else if (c === '|') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts.slice(1, -1).map((s) => s.trim());
}

/** A cell without its surrounding code span. */
function unquote(cell: string): string {
  const m = /^`(.*)`$/.exec(cell);
  return m ? m[1] : cell;
}

/** A value as a table cell must hold it (code span; pipes escaped). */
export function quote(text: string): string {
  return `\`${text.replace(/\|/g, '\\|')}\``;
}

/** Reads the rows of the table in the section `## Differences`. */
export function parseTable(markdown: string): TableRow[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^## Differences\b/.test(l));
  if (start === -1) throw new Error('docs/fidelity.md has no "## Differences" section');
  const rows: TableRow[] = [];
  let header = true;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i];
    if (/^## /.test(line)) break;
    if (!line.startsWith('|')) continue;
    if (header) {
      header = !/^\|\s*-/.test(line);
      continue;
    }
    const c = cells(line);
    if (c.length !== 5) throw new Error(`docs/fidelity.md line ${i + 1}: expected 5 cells, found ${c.length}`);
    const step = /`([^`]+)`/.exec(c[0])?.[1] ?? '';
    rows.push({ step, request: c[0], where: unquote(c[1]), openbao: unquote(c[2]), dev: unquote(c[3]), why: c[4], line: i + 1 });
  }
  return rows;
}

/** A row of the table for a difference (what the suite prints for an unlisted one). */
export function tableRow(d: Difference, request: string): string {
  return `| \`${d.step}\` ${request} | ${quote(d.where)} | ${quote(d.openbao)} | ${quote(d.dev)} | ? |`;
}

/** Whether a row names a difference: the same step (or `*`, any step), place (`*` in it matches any text) and answers. */
export function sameDifference(row: TableRow, d: Difference): boolean {
  if (row.step !== '*' && row.step !== d.step) return false;
  if (row.openbao !== d.openbao || row.dev !== d.dev) return false;
  if (!row.where.includes('*')) return row.where === d.where;
  const pattern = row.where.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${pattern}$`).test(d.where);
}
