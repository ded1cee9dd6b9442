// The console: a small web UI on the broker's (loopback) listener at /console/.
// A Vault token logs in (checked against Vault's auth/token/lookup-self, and
// it must be allowed to revoke leases itself; the browser holds only an opaque
// session cookie, the token stays in this process's memory and is asked of
// Vault again every 30 s); then the live inventory of leases and tokens by role and
// workload (scopes, times, renewals, last use and its address from the PEPs'
// usage events, state, the rule that fired), a token's story, a revoke with a
// confirmation (the same path as `tvm broker revoke`), and the last hour's
// issues, renewals and revocations as a chart. Plain HTML and a little CSS, no
// script, nothing from another origin.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Broker } from './broker.ts';
import { describeError } from './errors.ts';
import type { Logger } from './log.ts';

const COOKIE = 'tvm_console';
const SESSION_MS = 8 * 60 * 60_000;
const MAX_FORM_BYTES = 16 * 1024;

interface Session {
  token: string;
  who: string;
  csrf: string;
  expiresAt: number;
  /** When Vault last said the token is still a token (re-asked every recheckMs). */
  checkedAt: number;
}

/** What a console user must be allowed in Vault: revoking leases (what the console's revoke does for them). */
const REQUIRED = { path: 'sys/leases/revoke', capability: 'update' };
const MAX_SESSIONS = 1000;
const MAX_FAILED_LOGINS_PER_MINUTE = 10;

export interface ConsoleDeps {
  broker: Broker;
  /** Vault's address, where a login is checked. */
  vaultAddress: string;
  log: Logger;
  clock?: () => number;
  /** How often a session's token is asked of Vault again (ms; default 30 s). */
  recheckMs?: number;
}

const esc = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const CSS = `
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
header{background:#1b1f24;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center}
header a{color:#fff}header form{margin-left:auto}main{padding:1rem;max-width:80rem}
table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #d0d7de;vertical-align:top}
th{background:#f6f8fa}code{font-size:13px}.state-active{color:#1a7f37}.state-revoking,.state-irrevocable{color:#cf222e;font-weight:600}
button{font:inherit;padding:.3rem .8rem;border:1px solid #8c959f;border-radius:4px;background:#f6f8fa;cursor:pointer}
button.danger{background:#cf222e;color:#fff;border-color:#cf222e}label{display:block;margin:.5rem 0 .2rem}
input[type=password]{font:inherit;width:28rem;max-width:100%;padding:.3rem}.error{color:#cf222e}
.bars rect.issued{fill:#0969da}.bars rect.renewed{fill:#1a7f37}.bars rect.revoked{fill:#cf222e}.bars line{stroke:#8c959f}.bars text{font-size:12px;fill:#1b1f24}
figure{margin:0 0 1rem}.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}`;

function page(title: string, body: string, session?: Session): string {
  const nav = session
    ? `<nav aria-label="main"><a href="/console/">Inventory</a></nav><span>signed in as ${esc(session.who)}</span>
       <form method="post" action="/console/logout"><input type="hidden" name="csrf" value="${esc(session.csrf)}"><button>Sign out</button></form>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · tvm console</title><style>${CSS}</style></head>
<body><header><strong>tvm console</strong>${nav}</header><main><h1>${esc(title)}</h1>${body}</main></body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The chart: a row per series (issued, renewed, revoked), a bar per minute of the last hour, its totals as text. */
function chart(points: Array<{ minute: number; issued: number; renewed: number; revoked: number }>): string {
  const max = Math.max(1, ...points.flatMap((p) => [p.issued, p.renewed, p.revoked]));
  const w = 10;
  const h = 36;
  const left = 70;
  const width = left + points.length * w;
  const total = (k: 'issued' | 'renewed' | 'revoked') => points.reduce((n, p) => n + p[k], 0);
  const rows = (['issued', 'renewed', 'revoked'] as const)
    .map((k, row) => {
      const top = row * (h + 14);
      const bars = points
        .map((p, i) => {
          const bh = p[k] === 0 ? 0 : Math.max(2, Math.round((p[k] / max) * h));
          return bh > 0 ? `<rect class="${k}" x="${left + i * w}" y="${top + h - bh}" width="${w - 2}" height="${bh}"><title>${p[k]} ${k}</title></rect>` : '';
        })
        .join('');
      return `<text x="0" y="${top + h - 4}">${k} ${total(k)}</text><line x1="${left}" y1="${top + h + 0.5}" x2="${width}" y2="${top + h + 0.5}"></line>${bars}`;
    })
    .join('');
  return `<figure><svg class="bars" role="img" aria-label="issues, renewals and revocations per minute over the last hour" width="${width}" height="${3 * (h + 14)}">${rows}</svg>
<figcaption class="legend">The last hour, one bar a minute: ${total('issued')} issued, ${total('renewed')} renewed, ${total('revoked')} revoked.</figcaption></figure>`;
}

export function createConsole(deps: ConsoleDeps): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const clock = deps.clock ?? Date.now;
  const sessions = new Map<string, Session>();
  const { broker } = deps;

  const send = (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin',
      ...headers,
    });
    res.end(html);
  };
  const redirect = (res: ServerResponse, to: string, headers: Record<string, string> = {}): void => {
    res.writeHead(303, { location: to, 'cache-control': 'no-store', ...headers });
    res.end();
  };

  const sessionOf = (req: IncomingMessage): { sid: string; session: Session } | null => {
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=([A-Za-z0-9_-]{43})`).exec(req.headers.cookie ?? '');
    const session = m ? sessions.get(m[1]) : undefined;
    if (!m || !session) return null;
    if (session.expiresAt <= clock()) {
      sessions.delete(m[1]);
      return null;
    }
    return { sid: m[1], session };
  };

  const vaultUrl = deps.vaultAddress.replace(/\/+$/, '');
  const recheckMs = deps.recheckMs ?? 30_000;
  let failures: number[] = [];

  /** Asks Vault who the token is; null when Vault says it is no token. */
  const lookup = async (token: string): Promise<{ who: string; ttlS: number } | null> => {
    const r = await fetch(`${vaultUrl}/v1/auth/token/lookup-self`, { headers: { 'x-vault-token': token }, signal: AbortSignal.timeout(10_000) });
    if (r.status === 403 || r.status === 400 || r.status === 401) return null;
    if (r.status !== 200) throw new Error(`Vault answered ${r.status}`);
    const d = ((await r.json()) as { data?: { display_name?: string; ttl?: number; policies?: string[] } }).data ?? {};
    return { who: `${d.display_name ?? 'token'} (${(d.policies ?? []).join(', ')})`, ttlS: d.ttl ?? 0 };
  };

  /** Whether Vault lets the token revoke leases itself: only then may it revoke through the console. */
  const mayRevoke = async (token: string): Promise<boolean> => {
    const r = await fetch(`${vaultUrl}/v1/sys/capabilities-self`, {
      method: 'POST',
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      body: JSON.stringify({ paths: [REQUIRED.path] }),
      signal: AbortSignal.timeout(10_000),
    });
    if (r.status !== 200) return false;
    const caps = ((await r.json()) as { data?: Record<string, unknown>; capabilities?: unknown }).data?.[REQUIRED.path];
    return Array.isArray(caps) && (caps.includes('root') || caps.includes(REQUIRED.capability) || caps.includes('sudo'));
  };

  const loginPage = (error = ''): string =>
    page(
      'Sign in',
      `${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/console/login"><label for="token">Vault token</label>
<input id="token" name="token" type="password" autocomplete="off" required><p><button>Sign in</button></p></form>
<p>The token is checked with Vault (auth/token/lookup-self) and kept by the broker for this session only; the browser keeps a session cookie.</p>`,
    );

  const inventory = async (session: Session): Promise<string> => {
    const rows = await broker.inventory();
    const body = rows
      .map((r) => {
        const last = broker.usage.lastUse(r.jti);
        const fired = broker.usage.firings(r.jti).map((f) => `${f.rule}: ${f.outcome}`).join('; ');
        return `<tr><td>${esc(r.role)}</td><td>${esc(r.workload_name)}<br><code>${esc(r.workload)}</code></td>
<td><a href="/console/tokens/${esc(r.jti)}"><code>${esc(r.jti)}</code></a></td><td><code>${esc(r.scope)}</code></td>
<td>${esc(r.created_at)}</td><td>${esc(r.expires_at)}</td><td>${esc(r.renewals)}</td>
<td>${last ? `${esc(last.time)}<br>${esc(last.decision)}${last.code ? ` ${esc(last.code)}` : ''} from ${esc(last.remote_addr ?? '?')}` : '—'}</td>
<td class="state-${esc(r.state)}">${esc(r.state)}${r.reason ? ` (${esc(r.reason)})` : ''}</td><td>${esc(fired) || '—'}</td>
<td>${r.state === 'active' ? `<a href="/console/revoke/${esc(r.jti)}">Revoke…</a>` : ''}</td></tr>`;
      })
      .join('\n');
    return page(
      'Inventory',
      `${chart(broker.usage.points(clock(), 60))}
<h2>Leases and tokens (${rows.length})</h2>
<table><caption class="visually-hidden">Live leases by role and workload</caption><thead><tr><th scope="col">Role</th><th scope="col">Workload</th><th scope="col">Token (jti)</th><th scope="col">Scope</th><th scope="col">Issued</th><th scope="col">Expires</th><th scope="col">Renewals</th><th scope="col">Last use</th><th scope="col">State</th><th scope="col">Rule fired</th><th scope="col"></th></tr></thead>
<tbody>${body || '<tr><td colspan="11">No live leases.</td></tr>'}</tbody></table>`,
      session,
    );
  };

  const story = async (session: Session, jti: string): Promise<string | null> => {
    const s = await broker.story(jti);
    if (!s) return null;
    const uses = broker.usage.recent(jti);
    const items = [
      ...s.events.map((e) => ({ at: e.at, text: `${e.kind}${e.reason ? ` (${e.reason})` : ''}${e.detail ? `: ${e.detail}` : ''}` })),
      ...uses.map((u) => ({ at: Date.parse(u.time), text: `${u.decision === 'allow' ? 'used' : 'denied'}: ${u.op} ${u.resource}${u.code ? ` ${u.code}` : ''} from ${u.remote_addr ?? '?'}` })),
      ...broker.usage.firings(jti).map((f) => ({ at: Date.parse(f.time), text: `rule ${f.rule} fired: ${f.reason}; ${f.outcome}` })),
    ].sort((a, b) => a.at - b.at);
    const l = s.lease;
    return page(
      `Token ${jti}`,
      `<dl><dt>Role</dt><dd>${esc(l.role)}</dd><dt>Workload</dt><dd><code>${esc(l.workload)}</code></dd><dt>Vault lease</dt><dd><code>${esc(l.lease_id)}</code></dd>
<dt>State</dt><dd class="state-${esc(l.state)}">${esc(l.state)}${l.reason ? ` (${esc(l.reason)})` : ''}</dd><dt>Expires</dt><dd>${esc(l.expires_at)}</dd><dt>Renewals</dt><dd>${esc(l.renewals)}</dd></dl>
<h2>Story</h2><ol>${items.map((i) => `<li><time>${esc(new Date(i.at).toISOString())}</time> ${esc(i.text)}</li>`).join('')}</ol>
${l.state === 'active' ? `<p><a href="/console/revoke/${esc(jti)}">Revoke this token…</a></p>` : ''}`,
      session,
    );
  };

  return async (req, res, url) => {
    if (url.pathname !== '/console' && !url.pathname.startsWith('/console/')) return false;
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/^\/console\/?/, '');
    try {
      if (path === 'login') {
        if (method === 'GET') return send(res, 200, loginPage()), true;
        if (method !== 'POST') return send(res, 405, page('Not allowed', '<p>Use the form.</p>')), true;
        const now = clock();
        failures = failures.filter((t) => t > now - 60_000);
        if (failures.length >= MAX_FAILED_LOGINS_PER_MINUTE) return send(res, 429, loginPage('Too many failed sign-ins; wait a minute.'), { 'retry-after': '60' }), true;
        const token = (await readForm(req)).get('token')?.trim() ?? '';
        const who = token ? await lookup(token) : null;
        if (!who) {
          failures.push(now);
          return send(res, 401, loginPage('Vault does not know that token.')), true;
        }
        if (!(await mayRevoke(token))) {
          failures.push(now);
          return send(res, 403, loginPage(`That token may not ${REQUIRED.capability} ${REQUIRED.path} in Vault, which the console needs.`)), true;
        }
        for (const [id, old] of sessions) if (old.expiresAt <= now) sessions.delete(id);
        if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value as string);
        const sid = randomBytes(32).toString('base64url');
        const ttlMs = who.ttlS > 0 ? Math.min(SESSION_MS, who.ttlS * 1000) : SESSION_MS;
        sessions.set(sid, { token, who: who.who, csrf: randomBytes(24).toString('base64url'), expiresAt: now + ttlMs, checkedAt: now });
        redirect(res, '/console/', { 'set-cookie': `${COOKIE}=${sid}; HttpOnly; SameSite=Strict; Path=/console; Max-Age=${Math.floor(ttlMs / 1000)}` });
        return true;
      }
      const current = sessionOf(req);
      if (!current) return redirect(res, '/console/login'), true;
      const { sid, session } = current;
      if (clock() - session.checkedAt >= recheckMs) {
        // The token may have been revoked or expired in Vault since: then so is the session.
        if (!(await lookup(session.token))) {
          sessions.delete(sid);
          return redirect(res, '/console/login'), true;
        }
        session.checkedAt = clock();
      }
      if (method === 'POST') {
        const form = await readForm(req);
        if (!sameString(form.get('csrf') ?? '', session.csrf)) return send(res, 403, page('Refused', '<p>The form is stale; go back and try again.</p>', session)), true;
        if (path === 'logout') {
          sessions.delete(sid);
          redirect(res, '/console/login', { 'set-cookie': `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0` });
          return true;
        }
        const m = /^revoke\/([0-9a-f-]{36})$/.exec(path);
        if (m) {
          // The session's token must still be a token: a revoked Vault token revokes nothing.
          if (!(await lookup(session.token))) {
            sessions.delete(sid);
            return redirect(res, '/console/login'), true;
          }
          await broker.revokeToken(m[1], 'console');
          deps.log.warn({ jti: m[1], by: session.who }, 'revoked from the console');
          return redirect(res, `/console/tokens/${m[1]}`), true;
        }
        return send(res, 404, page('Not found', '<p>No such page.</p>', session)), true;
      }
      if (method !== 'GET' && method !== 'HEAD') return send(res, 405, page('Not allowed', '', session)), true;
      if (path === '') return send(res, 200, await inventory(session)), true;
      const t = /^tokens\/([0-9a-f-]{36})$/.exec(path);
      if (t) {
        const html = await story(session, t[1]);
        return send(res, html ? 200 : 404, html ?? page('Not found', '<p>The broker holds no token with that jti.</p>', session)), true;
      }
      const r = /^revoke\/([0-9a-f-]{36})$/.exec(path);
      if (r) {
        return (
          send(
            res,
            200,
            page(
              'Revoke a token',
              `<p>Revoke token <code>${esc(r[1])}</code>? Vault revokes its lease, and every resource server refuses the token once its status list says so.</p>
<form method="post" action="/console/revoke/${esc(r[1])}"><input type="hidden" name="csrf" value="${esc(session.csrf)}">
<button class="danger">Revoke</button> <a href="/console/tokens/${esc(r[1])}">Cancel</a></form>`,
              session,
            ),
          ),
          true
        );
      }
      return send(res, 404, page('Not found', '<p>No such page.</p>', session)), true;
    } catch (err) {
      deps.log.error({ path: url.pathname, err: describeError(err) }, 'console request failed');
      send(res, 500, page('Something went wrong', '<p>The broker could not answer; see its log.</p>'));
      return true;
    }
  };
}
