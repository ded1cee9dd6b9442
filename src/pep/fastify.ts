// The policy enforcement point as a Fastify 5 hook, for onRequest (or
// preHandler): authorizes each request with the Authorizer (see http.ts for
// how credentials, op, resource and the absolute URL are read), answers a
// denial itself, and on an allow puts the token's claims on request.tvm.
// An Authorizer that throws reaches Fastify's error path as an
// AuthorizerError (status 500, a fixed message; the original is its cause).
//
//   app.get('/orders/:id', { onRequest: fastifyPep(verifier, {
//     resource: (req) => `db://orders/${(req.params as { id: string }).id}` }) }, handler);
//
// app.decorateRequest('tvm', null) keeps the request's shape stable (optional;
// request.tvm is then null until allowed).
// Only types come from fastify, so the library does not need it at run time.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { authorizeIncoming, denialBody, denialHeaders, type PepOptions } from './http.ts';
import type { Authorizer, TokenClaims } from './types.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token's claims, once fastifyPep allowed the request. */
    tvm?: TokenClaims | null;
  }
}

export type FastifyPepOptions = PepOptions<FastifyRequest>;

export function fastifyPep(
  authorizer: Authorizer,
  options: FastifyPepOptions,
): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async (request, reply) => {
    const decision = await authorizeIncoming(authorizer, request.raw, request, options);
    if (!decision.allow) {
      return reply.code(decision.status).headers(denialHeaders(decision)).send(denialBody(decision));
    }
    request.tvm = decision.claims;
    return undefined;
  };
}
