// A token's story from audit files: the dev server's device lines (issue,
// renewals, fetches, revocation), the broker's actions and the PEP's usage
// events, joined on the jti (a lease id or a role finds the jtis first) and
// told in time order.

import { readFileSync } from 'node:fs';

export interface AuditQuery {
  jti?: string;
  lease?: string;
  role?: string;
  /** Only events at or after this time (ms). */
  sinceMs?: number;
}

export interface StoryEvent {
  time: string;
  /** issued, renewed, fetched, used, denied, revoked, revoke-requested, broker:<action>, or the request's operation. */
  what: string;
  jti?: string;
  lease_id?: string;
  role?: string;
  detail: string;
  file: string;
  line: number;
}

interface Parsed {
  line: Record<string, any>;
  file: string;
  n: number;
}

function read(files: string[]): Parsed[] {
  const out: Parsed[] = [];
  for (const file of files) {
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((text, i) => {
        if (!text) return;
        try {
          const line = JSON.parse(text) as unknown;
          // Only objects are audit lines: `null`, a number or a list in a hostile file is skipped.
          if (line !== null && typeof line === 'object' && !Array.isArray(line)) out.push({ line: line as Record<string, any>, file, n: i + 1 });
        } catch {
          // A torn or edited line: verify names it; search goes on.
        }
      });
  }
  return out;
}

const CREDS = /^[^/]+\/creds\/([^/]+)$/;

/** The jti, lease and role a line is about, as far as it says. */
function subjectOf(l: Record<string, any>): { jti?: string; lease?: string; role?: string } {
  if (l.type === 'usage') return { jti: l.usage?.jti, lease: l.usage?.lease_id, role: l.usage?.role };
  if (l.type === 'broker') return { jti: l.broker?.jti, lease: l.broker?.lease_id, role: l.broker?.role };
  const data = l.response?.data ?? {};
  const req = l.request?.data ?? {};
  const m = CREDS.exec(l.request?.path ?? '');
  return {
    jti: typeof data.jti === 'string' ? data.jti : typeof req.jti === 'string' ? req.jti : undefined,
    lease: typeof l.response?.secret?.lease_id === 'string' ? l.response.secret.lease_id : typeof req.lease_id === 'string' ? req.lease_id : undefined,
    role: typeof data.role === 'string' ? data.role : m?.[1],
  };
}

function describe(l: Record<string, any>): { what: string; detail: string } | null {
  if (l.type === 'usage') {
    const u = l.usage ?? {};
    return { what: u.decision === 'allow' ? 'used' : 'denied', detail: `${u.op} ${u.resource}${u.code ? ` ${u.code}` : ''}${u.remote_addr ? ` from ${u.remote_addr}` : ''}` };
  }
  if (l.type === 'broker') return { what: `broker:${l.broker?.action}`, detail: [l.broker?.workload && `workload ${l.broker.workload}`, l.broker?.reason].filter(Boolean).join(', ') };
  if (l.type !== 'response') return null;
  const path = l.request?.path ?? '';
  const error = l.error ? ` refused: ${l.error}` : '';
  const data = l.response?.data ?? {};
  if (CREDS.test(path) && l.request?.data?.jti) return { what: 'fetched', detail: `the renewed token${error}` };
  if (CREDS.test(path)) {
    return { what: l.error ? 'refused' : 'issued', detail: l.error ? error.trim() : `to ${l.auth?.display_name ?? '?'}${l.auth?.entity_id ? ` (entity ${l.auth.entity_id})` : ''}: ${data.scope ?? ''}, until ${data.expires_at ?? '?'}` };
  }
  if (/^sys\/(leases\/)?renew/.test(path)) return { what: 'renewed', detail: l.error ? error.trim() : `until ${data.expires_at ?? '?'}` };
  if (/^sys\/(leases\/)?revoke/.test(path)) return { what: 'revoked', detail: `by ${l.auth?.display_name ?? '?'}${error}` };
  return { what: l.request?.operation ?? 'request', detail: `${path}${error}` };
}

/** The story of the tokens the query names, oldest first. */
export function searchAudit(files: string[], query: AuditQuery): StoryEvent[] {
  const lines = read(files);
  const jtis = new Set<string>(query.jti ? [query.jti] : []);
  const leases = new Set<string>(query.lease ? [query.lease] : []);
  // Two passes join what each line knows: a lease names its jti on issue, a role its jtis.
  for (let pass = 0; pass < 2; pass++) {
    for (const { line } of lines) {
      const s = subjectOf(line);
      const hit = (s.jti && jtis.has(s.jti)) || (s.lease && leases.has(s.lease)) || (query.role && s.role === query.role && s.jti);
      if (!hit) continue;
      if (s.jti) jtis.add(s.jti);
      if (s.lease) leases.add(s.lease);
    }
  }
  // A line that names only the lease (a revoke) is told with the lease's token.
  const jtiOfLease = new Map<string, string>();
  for (const { line } of lines) {
    const s = subjectOf(line);
    if (s.jti && s.lease) jtiOfLease.set(s.lease, s.jti);
  }
  const out: StoryEvent[] = [];
  for (const { line, file, n } of lines) {
    const s = subjectOf(line);
    if (!s.jti && s.lease) s.jti = jtiOfLease.get(s.lease);
    if (!((s.jti && jtis.has(s.jti)) || (s.lease && leases.has(s.lease)))) continue;
    const time = typeof line.time === 'string' ? line.time : '';
    if (query.sinceMs !== undefined && Date.parse(time) < query.sinceMs) continue;
    const d = describe(line);
    if (!d) continue;
    out.push({ time, ...d, ...(s.jti ? { jti: s.jti } : {}), ...(s.lease ? { lease_id: s.lease } : {}), ...(s.role ? { role: s.role } : {}), file, line: n });
  }
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
