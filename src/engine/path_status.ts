// status/<n> and status/events: the signed status lists resource servers read
// revocation from (IETF Token Status List), and a push stream that tells them
// the moment a list changes.

import type { EngineContext } from './context.ts';
import { invalidField, showValue } from '../sdk/errors.ts';
import type { Route } from '../sdk/route.ts';
import { effectiveConfig } from './path_config.ts';
import { STATUS_LIST_TYP } from './status.ts';
import { HTTP_CONTENT_TYPE, HTTP_RAW_BODY, HTTP_RAW_STREAM, HTTP_STATUS_CODE, type LogicalRequest, type LogicalResponse, type RawStream } from '../sdk/logical.ts';

/** How long an event-stream client waits before it reconnects (the stream's `retry`). */
export const STREAM_RETRY_MS = 1000;
/** A comment line on an idle stream, so proxies and clients see it alive. */
const KEEPALIVE_MS = 15_000;

export function statusRoutes(ctx: EngineContext): Route[] {
  const list = async (req: LogicalRequest, n: string): Promise<LogicalResponse | null> => {
    if (!/^(0|[1-9]\d{0,8})$/.test(n)) throw invalidField('list', `${showValue(n)} is not a list number`);
    const number = Number(n);
    if (!(await ctx.status.exists(req.storage, number))) return null;
    const config = await effectiveConfig(ctx, req);
    const revoked = await ctx.revocations.indicesOf(req.storage, number);
    const jwt = await ctx.status.token(req.storage, config, ctx.keys, number, revoked);
    return { data: { [HTTP_CONTENT_TYPE]: `application/${STATUS_LIST_TYP}`, [HTTP_RAW_BODY]: jwt, [HTTP_STATUS_CODE]: 200 } };
  };

  const events = async (req: LogicalRequest): Promise<LogicalResponse> => {
    const { version } = await ctx.revocations.list(req.storage, Number.MAX_SAFE_INTEGER);
    const hello = `retry: ${STREAM_RETRY_MS}\nevent: hello\ndata: ${JSON.stringify({ version })}\n\n`;
    const stream: RawStream = (write) => {
      const unsubscribe = ctx.status.subscribe((event) => write(`event: revoked\ndata: ${JSON.stringify(event)}\n\n`));
      const keepalive = setInterval(() => write(': keepalive\n\n'), KEEPALIVE_MS);
      keepalive.unref();
      return () => {
        clearInterval(keepalive);
        unsubscribe();
      };
    };
    return {
      data: {
        [HTTP_CONTENT_TYPE]: 'text/event-stream',
        [HTTP_RAW_BODY]: hello,
        [HTTP_STATUS_CODE]: 200,
        [HTTP_RAW_STREAM]: stream,
      },
    };
  };

  return [
    {
      pattern: 'status/events',
      fields: {},
      operations: { read: events },
      synopsis: 'A push stream of status list changes (server-sent events).',
      description: `
Unauthenticated. Opens with a "hello" event holding the revocation version,
then sends a "revoked" event {list, idx, version} each time a token of this
mount is revoked. Subscribers fetch the signed list again (status/<list>):
the event only says when, the signed list says what. The dev server keeps
the stream open; a server that cannot (Vault and OpenBao's plugin transport)
answers the hello alone, and a client reconnects after the stream's retry.`,
    },
    {
      pattern: 'status/(?<list>[^/]+)',
      fields: { list: { type: 'string', description: 'The list number, as a token names it in status.status_list.uri.' } },
      operations: { read: async (req, fields) => list(req, fields.get<string>('list')) },
      synopsis: 'A signed status list (IETF Token Status List), one bit per token.',
      description: `
Unauthenticated. A JWT (typ statuslist+jwt) signed by the mount's key: sub is
this list's URI, ttl how long it may be cached, exp its iat plus ttl, and
status_list {bits: 1, lst} the ZLIB-compressed bit array (index 0 is the least
significant bit of the first byte). A set bit: the token at that index is
revoked. Tokens name their list and index in status.status_list {idx, uri}.`,
    },
  ];
}
