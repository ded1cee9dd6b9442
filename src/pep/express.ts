// The policy enforcement point as Express 5 middleware: authorizes each
// request with the Authorizer (see http.ts for how credentials, op, resource
// and the absolute URL are read), answers a denial itself, and on an allow
// puts the token's claims on res.locals.tvm and req.tvm before next().
// An Authorizer that throws reaches Express's error path as an
// AuthorizerError (status 500, a fixed message; the original is its cause).
//
//   app.get('/orders/:id', expressPep(verifier, { resource: (req) => `db://orders/${req.params.id}` }), handler);
//
// Only types come from express, so the library does not need it at run time.
import type { NextFunction, Request, Response } from 'express';
import { authorizeRequest, sendDenial, type PepOptions } from './http.ts';
import type { Authorizer, Decision, TokenClaims } from './types.ts';

/** An Express request after the middleware allowed it. */
export type TvmRequest = Request & { tvm?: TokenClaims };

export type ExpressPepOptions = PepOptions<Request>;

export function expressPep(
  authorizer: Authorizer,
  options: ExpressPepOptions,
): (req: Request, res: Response, next: NextFunction) => Promise<void> {
  return async (req, res, next) => {
    let decision: Decision;
    try {
      decision = await authorizeRequest(authorizer, req, options);
    } catch (err) {
      next(err);
      return;
    }
    if (!decision.allow) {
      sendDenial(res, decision);
      return;
    }
    res.locals.tvm = decision.claims;
    (req as TvmRequest).tvm = decision.claims;
    next();
  };
}
