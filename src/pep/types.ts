// The policy enforcement point's contract: what a resource server asks
// (authorize a token for one read or write of one resource, in its context)
// and what it gets back (an allow with the claims, or a typed deny with a
// stable code), plus the usage event every decision emits.

/** A stable deny code: callers switch on it; the message may change. */
export type DenyCode =
  /** No token in the request (no Authorization header, or another scheme). */
  | 'ERR_TOKEN_MISSING'
  /** Not a JWS compact JWT, a header that is not allowed (jku, x5u, jwk, crit, b64), or a claim of the wrong type. */
  | 'ERR_TOKEN_MALFORMED'
  /** The header's typ is not at+jwt. */
  | 'ERR_TOKEN_TYPE'
  /** The algorithm is not one the issuer's JWKS publishes (alg none and HMAC included). */
  | 'ERR_TOKEN_ALG'
  /** No published key has the token's kid, after at most one refetch per cooldown. */
  | 'ERR_KEY_UNKNOWN'
  /** The signature does not verify with the published key. */
  | 'ERR_TOKEN_SIGNATURE'
  | 'ERR_TOKEN_ISSUER'
  | 'ERR_TOKEN_AUDIENCE'
  | 'ERR_TOKEN_EXPIRED'
  /** nbf or iat is in the future (beyond the allowed clock skew). */
  | 'ERR_TOKEN_NOT_YET_VALID'
  /** The token's status list entry says revoked. */
  | 'ERR_TOKEN_REVOKED'
  /** The token names no status list, or one outside the issuer's. */
  | 'ERR_TOKEN_STATUS'
  /** The status list could not be refreshed past its exp (fail closed), or the issuer's keys could not be fetched at all. */
  | 'ERR_STATUS_UNAVAILABLE'
  /** The token does not grant this op on this resource. */
  | 'ERR_SCOPE'
  /** The request's context is outside the token's: bound CIDRs or allowed hours. */
  | 'ERR_CONTEXT'
  /** Sender binding: a DPoP proof missing, invalid, replayed, for another request, or for another key. */
  | 'ERR_BINDING';

export type Op = 'read' | 'write';

/** What the resource server is about to do, and what it knows of the request. */
export interface AuthorizeContext {
  op: Op;
  /** The concrete resource, e.g. db://orders/42 (no wildcards). */
  resource: string;
  /** The client's address as the resource server sees it (IPv4, IPv6, or IPv4-mapped IPv6). */
  remoteAddr?: string;
  /** The HTTP method (for DPoP's htm). */
  method?: string;
  /** The absolute request URL (for DPoP's htu); query and fragment are ignored. */
  url?: string;
  /** The DPoP header's proof, when the request carried one. */
  dpop?: string;
  /** The Authorization scheme the token came with: DPoP-bound tokens must come with "DPoP". */
  scheme?: 'Bearer' | 'DPoP';
}

/** The claims of a verified tvm token (RFC 9068 plus tvm's own). */
export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf?: number;
  jti: string;
  client_id: string;
  scope: string;
  bound_cidrs?: string[];
  allowed_hours?: string[];
  time_zone?: string;
  cnf?: { jkt: string };
  status?: { status_list: { idx: number; uri: string } };
  lease_id?: string;
  [claim: string]: unknown;
}

export interface Allow {
  allow: true;
  claims: TokenClaims;
}

export interface Deny {
  allow: false;
  code: DenyCode;
  /** One line for logs and the error_description: never the token or the proof. */
  message: string;
  /** The HTTP status an adapter answers with: 401, 403 or 503 (status list unavailable). */
  status: 401 | 403 | 503;
  /** The WWW-Authenticate header value (RFC 6750 §3, RFC 9449 §7.1). */
  wwwAuthenticate: string;
  /** The claims, when the token verified far enough to know them. */
  claims?: TokenClaims;
}

export type Decision = Allow | Deny;

/** One decision, for the audit sink. Never holds the token or the proof. */
export interface UsageEvent {
  time: string;
  decision: 'allow' | 'deny';
  code?: DenyCode;
  /** A deny's message (never a token or a proof), for rules that tell denials apart: a replayed proof from a missing one. */
  detail?: string;
  jti?: string;
  lease_id?: string;
  role?: string;
  sub?: string;
  op: Op;
  resource: string;
  remote_addr?: string;
  method?: string;
  url?: string;
}

export type UsageSink = (event: UsageEvent) => void;

/** What an adapter needs of a verifier. */
export interface Authorizer {
  authorize(token: string | undefined, context: AuthorizeContext): Promise<Decision>;
  /** Records a decision an adapter made without asking (malformed credentials), as a usage event. */
  report?(deny: Deny, context: AuthorizeContext): void;
}
