// The PEP library's public surface: a verifier for resource servers, its HTTP
// adapters, and the DPoP helpers a workload uses to call them. Explicit
// exports only; usable without the rest of tvm (it needs jose and node).
export { createVerifier, AuthorizeUsageError, VerifierConfigError, TOKEN_TYP } from './verifier.ts';
export type { Verifier, VerifierOptions } from './verifier.ts';
export type { Allow, AuthorizeContext, Authorizer, Decision, Deny, DenyCode, Op, TokenClaims, UsageEvent, UsageSink } from './types.ts';
export { authorizeRequest, defaultOp, extractCredentials, protect, requestUrl, sendDenial } from './http.ts';
export type { PepOptions, ProtectOptions } from './http.ts';
export { expressPep } from './express.ts';
export type { ExpressPepOptions } from './express.ts';
export { fastifyPep } from './fastify.ts';
export type { FastifyPepOptions } from './fastify.ts';
export { createDpopProver, generateDpopKey, jwkThumbprint, loadDpopKey, verifyDpopProof } from './dpop.ts';
export type { DpopProver } from './dpop.ts';
export { ReplayCache } from './replay.ts';
export { createAuditSink } from './audit.ts';
export { createUsageForwarder } from './forward.ts';
export type { ForwarderOptions, UsageForwarder } from './forward.ts';
export type { AuditSink, AuditSinkOptions } from './audit.ts';
export type { FetchLike } from './fetch.ts';
