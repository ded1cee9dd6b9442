// AWS Signature Version 4, checked as an AWS service checks an Authorization
// header, written from AWS's public description ("Create a signed AWS API
// request", IAM User Guide): the canonical request (method, canonical URI with
// each path segment URI-encoded twice, canonical query string, canonical
// headers, signed headers, hex SHA-256 of the payload), the string to sign
// ("AWS4-HMAC-SHA256", the request time, the credential scope, the hash of the
// canonical request), the signing key (HMAC-SHA256 chain "AWS4"+secret → date →
// region → service → "aws4_request") and the hex signature, compared in
// constant time.
//
// Before the signature it checks what AWS checks: the header's three parts, an
// X-Amz-Date in ISO 8601 basic format within five minutes of the verifier's
// clock, the credential scope (date equal to X-Amz-Date's, a region the
// endpoint serves, the endpoint's service, the aws4_request terminator),
// `host`, `x-amz-date` and every other x-amz-* header among the signed headers,
// and the access key: known, and for temporary credentials with the session
// token they were issued with (X-Amz-Security-Token), unexpired.
// Not modelled: query-string (presigned) authentication and a `Date` header in
// place of X-Amz-Date (the SDK sends neither to STS or IAM).

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** What an access key id stands for, as the verifier needs it. */
export interface SigV4Key {
  secretAccessKey: string;
  /** Temporary credentials: the token that must come as X-Amz-Security-Token. */
  sessionToken?: string;
  /** Temporary credentials: when they stop working (epoch ms, the issuer's clock). */
  expiresAt?: number;
}

export interface SigV4Request {
  method: string;
  /** The request target as received (path and query). */
  url: string;
  /** Node's rawHeaders: name, value, name, value... */
  rawHeaders: string[];
  body: Buffer;
}

export interface SigV4Expectation {
  /** The signing name the endpoint answers to ("sts", "iam"). */
  service: string;
  /** Regions whose credential scope the endpoint accepts. */
  regions: ReadonlySet<string>;
  /** Looks up an access key id; undefined when unknown. */
  key(accessKeyId: string): SigV4Key | undefined;
  /** The clock X-Amz-Date is compared with (epoch ms). */
  requestNow: number;
  /** The clock temporary credentials expire by (epoch ms). */
  credentialNow: number;
}

/** A refusal, worded and coded as AWS's Query APIs answer it. */
export class SigV4Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const MAX_SKEW_MS = 5 * 60_000;
const ALGORITHM = 'AWS4-HMAC-SHA256';
const BASIC_ISO = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const INVALID_TOKEN = 'The security token included in the request is invalid.';

const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** AWS's UriEncode: every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex). */
export function uriEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The canonical URI of a non-S3 service: normalised (no empty, "." or ".." segments), each segment encoded twice. */
export function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const raw of path.split('/')) {
    const seg = decode(raw);
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(uriEncode(uriEncode(seg)));
  }
  const trailing = segments.length > 0 && path.endsWith('/') ? '/' : '';
  return `/${segments.join('/')}${trailing}`;
}

/** The canonical query string: each name and value URI-encoded, sorted by name then value. */
export function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const [k, v] = i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
      return [uriEncode(decode(k)), uriEncode(decode(v))] as const;
    });
  pairs.sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** Header values by lower-case name: trimmed, inner runs of spaces made one, repeats joined with ",". */
export function headerValues(rawHeaders: string[]): Map<string, string> {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const value = rawHeaders[i + 1].trim().replace(/ +/g, ' ');
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return new Map([...values].map(([k, v]) => [k, v.join(',')]));
}

/** The signing key: HMAC-SHA256 of date, region, service and "aws4_request" under "AWS4" + secret, in turn. */
export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
}

export function canonicalRequest(req: SigV4Request, signedHeaders: string[], headers: Map<string, string>): string {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  return [
    req.method,
    canonicalUri(path),
    canonicalQuery(query),
    signedHeaders.map((h) => `${h}:${headers.get(h) ?? ''}\n`).join(''),
    signedHeaders.join(';'),
    sha256Hex(req.body),
  ].join('\n');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

function parseAuthorization(header: string): { accessKeyId: string; scope: string[]; signedHeaders: string[]; signature: string } {
  if (!header.startsWith(`${ALGORITHM} `)) {
    throw new SigV4Refusal(400, 'IncompleteSignature', `Unsupported AWS 'algorithm': ${JSON.stringify(header.split(' ')[0].slice(0, 40))}`);
  }
  const parts = new Map<string, string>();
  for (const item of header.slice(ALGORITHM.length + 1).split(',')) {
    const i = item.indexOf('=');
    if (i > 0) parts.set(item.slice(0, i).trim(), item.slice(i + 1).trim());
  }
  for (const name of ['Credential', 'SignedHeaders', 'Signature']) {
    if (!parts.get(name)) throw new SigV4Refusal(400, 'IncompleteSignature', `Authorization header requires '${name}' parameter.`);
  }
  const credential = parts.get('Credential') as string;
  const scope = credential.split('/');
  if (scope.length !== 5) {
    throw new SigV4Refusal(
      400,
      'IncompleteSignature',
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential.slice(0, 200)}'`,
    );
  }
  return { accessKeyId: scope[0], scope: scope.slice(1), signedHeaders: (parts.get('SignedHeaders') as string).split(';'), signature: parts.get('Signature') as string };
}

function basicIso(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** The access key id the Authorization header names, unverified (null when there is none). */
export function claimedAccessKeyId(authorization: string | undefined): string | null {
  if (authorization === undefined) return null;
  return /Credential=([^/,\s]+)\//.exec(authorization)?.[1] ?? null;
}

/** Verifies the request's SigV4 Authorization header; returns the access key id it was signed with, or throws a SigV4Refusal. */
export function verifySigV4(req: SigV4Request, expect: SigV4Expectation): string {
  const headers = headerValues(req.rawHeaders);
  const auth = parseAuthorization(headers.get('authorization') ?? '');
  const { signedHeaders } = auth;
  const sorted = [...signedHeaders].sort();
  if (signedHeaders.some((h, i) => h !== h.toLowerCase() || h !== sorted[i] || h === '')) {
    throw new SigV4Refusal(403, 'SignatureDoesNotMatch', 'SignedHeaders must be lower-case names, sorted and separated by semicolons.');
  }
  const amzDate = headers.get('x-amz-date');
  if (amzDate === undefined) {
    throw new SigV4Refusal(400, 'IncompleteSignature', "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  const m = BASIC_ISO.exec(amzDate);
  const at = m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : Number.NaN;
  if (!m || Number.isNaN(at) || basicIso(at) !== amzDate) {
    throw new SigV4Refusal(400, 'IncompleteSignature', `Date must be in ISO-8601 'basic format'. Got '${amzDate.slice(0, 40)}'. See http://en.wikipedia.org/wiki/ISO_8601`);
  }
  if (!signedHeaders.includes('host')) {
    throw new SigV4Refusal(403, 'SignatureDoesNotMatch', "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  for (const name of headers.keys()) {
    if (name.startsWith('x-amz-') && !signedHeaders.includes(name)) {
      throw new SigV4Refusal(403, 'SignatureDoesNotMatch', `'${name}' must be a 'SignedHeader' in the AWS Authorization.`);
    }
  }
  const [date, region, service, terminator] = auth.scope;
  if (terminator !== 'aws4_request') {
    throw new SigV4Refusal(403, 'SignatureDoesNotMatch', `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator.slice(0, 40)}'.`);
  }
  if (service !== expect.service) throw new SigV4Refusal(403, 'SignatureDoesNotMatch', `Credential should be scoped to correct service: '${expect.service}'. `);
  if (!expect.regions.has(region)) throw new SigV4Refusal(403, 'SignatureDoesNotMatch', 'Credential should be scoped to a valid region. ');
  if (date !== amzDate.slice(0, 8)) {
    throw new SigV4Refusal(
      403,
      'SignatureDoesNotMatch',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${date.slice(0, 8)}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  if (at < expect.requestNow - MAX_SKEW_MS) {
    throw new SigV4Refusal(
      403,
      'SignatureDoesNotMatch',
      `Signature expired: ${amzDate} is now earlier than ${basicIso(expect.requestNow - MAX_SKEW_MS)} (${basicIso(expect.requestNow)} - 5 min.)`,
    );
  }
  if (at > expect.requestNow + MAX_SKEW_MS) {
    throw new SigV4Refusal(
      403,
      'SignatureDoesNotMatch',
      `Signature not yet current: ${amzDate} is still later than ${basicIso(expect.requestNow + MAX_SKEW_MS)} (${basicIso(expect.requestNow)} + 5 min.)`,
    );
  }
  const key = expect.key(auth.accessKeyId);
  const token = headers.get('x-amz-security-token');
  if (key === undefined || token !== key.sessionToken) throw new SigV4Refusal(403, 'InvalidClientTokenId', INVALID_TOKEN);
  if (key.expiresAt !== undefined && expect.credentialNow >= key.expiresAt) {
    throw new SigV4Refusal(400, 'ExpiredToken', 'The security token included in the request is expired');
  }
  const scope = auth.scope.join('/');
  const expected = createHmac('sha256', signingKey(key.secretAccessKey, date, region, service))
    .update(stringToSign(amzDate, scope, canonicalRequest(req, signedHeaders, headers)), 'utf8')
    .digest();
  const given = Buffer.from(auth.signature, 'hex');
  if (!/^[0-9a-f]{64}$/.test(auth.signature) || !timingSafeEqual(given, expected)) {
    throw new SigV4Refusal(403, 'SignatureDoesNotMatch', MISMATCH);
  }
  return auth.accessKeyId;
}
