// The HTTP exchange behind connect(): one request to Vault's API over
// node:http or node:https with a keep-alive agent per connection, following
// a standby's 307 (or 308) to the active node as Vault's own client does. It answers
// the parsed body of a 200 or 204, and rejects as node-vault did, which
// mapVaultError reads: `{ response: { statusCode, body } }` for any other
// status, or an error carrying the socket's code (ECONNREFUSED, ETIMEDOUT, ...).
// Written for the CLI's start-up time: node-vault pulled in its HTTP stack at
// about 220 ms per process, this pulls in nothing beyond node's own.

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface TransportOptions {
  /** Vault's address without a trailing slash, e.g. http://127.0.0.1:8200. */
  addr: string;
  timeoutMs: number;
  /** Verify the server's certificate (false only with VAULT_SKIP_VERIFY). */
  verify: boolean;
  /** PEM of the CA(s) to trust instead of the system's (VAULT_CACERT). */
  ca?: string;
  /** Headers sent with every request (token, namespace, wrap TTL); empty values are left out. */
  headers: Record<string, string>;
}

export type Method = 'GET' | 'POST' | 'DELETE';

export interface Transport {
  /** `path` is below /v1/ and already encoded; `query` is appended as is. */
  send(method: Method, path: string, body?: unknown, query?: string): Promise<unknown>;
}

/** What a non-2xx answer rejects with (the shape mapVaultError reads). */
export class HttpStatusError extends Error {
  readonly response: { statusCode: number; body: unknown };
  constructor(statusCode: number, body: unknown) {
    super(`status ${statusCode}`);
    this.name = 'HttpStatusError';
    this.response = { statusCode, body };
  }
}

function codedError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

function parseBody(text: string): unknown {
  if (text === '') return '';
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** How many 307/308 redirects one call follows (a standby pointing at the active node takes one). */
const MAX_REDIRECTS = 5;

export function createTransport(options: TransportOptions): Transport {
  const origin = new URL(options.addr);
  // One keep-alive agent per scheme: a redirect (a standby naming the active node) may change it.
  let httpAgent: HttpAgent | undefined;
  let httpsAgent: HttpsAgent | undefined;
  const agentFor = (https: boolean): HttpAgent =>
    https
      ? (httpsAgent ??= new HttpsAgent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: options.verify, ...(options.ca ? { ca: options.ca } : {}) }))
      : (httpAgent ??= new HttpAgent({ keepAlive: true, maxSockets: 64 }));
  const base = origin.pathname.replace(/\/+$/, '');
  const fixedHeaders: Record<string, string> = { Accept: 'application/json' };
  for (const [k, v] of Object.entries(options.headers)) if (v !== '') fixedHeaders[k] = v;

  return {
    send(method, path, body, query) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers = payload
        ? { ...fixedHeaders, 'Content-Type': 'application/json', 'Content-Length': String(payload.length) }
        : fixedHeaders;
      const first = new URL(`${origin.origin}${base}/v1/${path}${query ? `?${query}` : ''}`);
      return new Promise((resolve, reject) => {
        let settled = false;
        const finish = (fn: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          fn();
        };
        let current: ReturnType<typeof httpRequest> | null = null;
        const attempt = (url: URL, redirectsLeft: number): void => {
          const https = url.protocol === 'https:';
          const req = (https ? httpsRequest : httpRequest)(
            {
              protocol: url.protocol,
              hostname: url.hostname.replace(/^\[|\]$/g, ''),
              port: url.port || (https ? 443 : 80),
              path: `${url.pathname}${url.search}`,
              method,
              headers,
              agent: agentFor(https),
            },
            (res: IncomingMessage) => {
              const status = res.statusCode ?? 0;
              const location = res.headers.location;
              if ((status === 307 || status === 308) && typeof location === 'string' && redirectsLeft > 0) {
                // A performance standby or a standby that cannot forward names the active node:
                // the same request goes there, body and token included, as Vault's own client does.
                res.resume();
                let next: URL;
                try {
                  next = new URL(location, url);
                } catch {
                  finish(() => reject(new HttpStatusError(status, '')));
                  return;
                }
                if (next.protocol !== 'http:' && next.protocol !== 'https:') {
                  finish(() => reject(new HttpStatusError(status, '')));
                  return;
                }
                attempt(next, redirectsLeft - 1);
                return;
              }
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('error', (err) => finish(() => reject(err)));
              res.on('end', () => {
                const parsed = parseBody(Buffer.concat(chunks).toString('utf8'));
                finish(() => (status === 200 || status === 204 ? resolve(parsed) : reject(new HttpStatusError(status, parsed))));
              });
            },
          );
          current = req;
          req.on('error', (err) => finish(() => reject(err)));
          req.end(payload);
        };
        // One clock for the whole exchange, redirects included, as VAULT_CLIENT_TIMEOUT means.
        const timer = setTimeout(() => {
          finish(() => reject(codedError('ETIMEDOUT')));
          current?.destroy();
        }, options.timeoutMs);
        attempt(first, MAX_REDIRECTS);
      });
    },
  };
}
