// A user delegation SAS, checked as Blob Storage checks one on a request,
// written from Microsoft's "Create a user delegation SAS" (not from tvm's
// src/iam/azure/sas.ts nor the SDK): for signed versions 2020-12-06 up to
// 2025-07-05 (which adds two fields) the string-to-sign is, one per line,
//
//   sp, st, se, canonicalized resource, skoid, sktid, skt, ske, sks, skv,
//   saoid, suoid, scid, sip, spr, sv, sr, signed snapshot time, ses,
//   rscc, rscd, rsce, rscl, rsct
//
// and the signature is base64(HMAC-SHA256(base64-decoded key, string-to-sign)).
// The canonicalized resource is derived from the request, never taken from the
// token: sr=c /blob/<account>/<container>; sr=b the blob the request names;
// sr=d the first `sdd` segments of the requested blob path (the directory the
// SAS was signed for), so a changed sdd, or a blob outside the directory, names
// another resource and the signature no longer matches. sdd itself is not
// signed. The key must be one the fake issued for the account (matched on
// skoid, sktid, skt, ske, sks, skv), not revoked; st <= now < se, now < ske;
// spr allows https; sp holds the permission the operation needs.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AzureFakeKey } from './azure.ts';

export const SAS_LAYOUT_FROM = '2020-12-06';
export const SAS_LAYOUT_BEFORE = '2025-07-05';
/** The permission letters a blob user delegation SAS may carry. */
const PERMISSIONS = new Set('racwdxyltfmeopi'.split(''));

export type SasOperation = 'read' | 'create' | 'write' | 'delete' | 'list';

export interface SasRequest {
  account: string;
  container: string;
  /** The blob path under the container (null for a container-level request). */
  blobPath: string | null;
  operation: SasOperation;
  /** Put Blob over an existing blob needs w; a new one c or w. */
  blobExists: boolean;
  query: Record<string, string>;
}

export class SasRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(code);
  }
}

const FAILED = 'AuthenticationFailed';

/** The documented string-to-sign, from the token's fields and the canonicalized resource. */
export function documentedStringToSign(q: Record<string, string>, canonicalizedResource: string): string {
  const f = (name: string) => q[name] ?? '';
  return [
    f('sp'), f('st'), f('se'), canonicalizedResource,
    f('skoid'), f('sktid'), f('skt'), f('ske'), f('sks'), f('skv'),
    f('saoid'), f('suoid'), f('scid'), f('sip'), f('spr'), f('sv'), f('sr'),
    '', // signed snapshot time: no snapshot or version SAS here
    f('ses'), f('rscc'), f('rscd'), f('rsce'), f('rscl'), f('rsct'),
  ].join('\n');
}

export function documentedSignature(keyBase64: string, stringToSign: string): string {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(stringToSign, 'utf8').digest('base64');
}

/** The resource a SAS of type `sr` must have been signed for, as the request determines it. */
export function canonicalizedResource(req: Pick<SasRequest, 'account' | 'container' | 'blobPath' | 'query'>): string {
  const base = `/blob/${req.account}/${req.container}`;
  const sr = req.query.sr;
  if (sr === 'c') return base;
  if (req.blobPath === null) throw new SasRefusal(403, 'AuthorizationResourceTypeMismatch', 'This request is not authorized to perform this operation using this resource type.');
  if (sr === 'b') return `${base}/${req.blobPath}`;
  if (sr === 'd') {
    const sdd = req.query.sdd;
    if (sdd === undefined || sdd === '') throw new SasRefusal(403, FAILED, 'sdd is mandatory when sr=d. Cannot be empty');
    const depth = /^[1-9]\d*$/.test(sdd) ? Number(sdd) : Number.NaN;
    if (Number.isNaN(depth)) throw new SasRefusal(403, FAILED, `sdd ${JSON.stringify(sdd.slice(0, 20))} is not a positive integer`);
    // The directory `sdd` deep on the requested path (a depth past the path's directories names the blob itself).
    return `${base}/${req.blobPath.split('/').slice(0, depth).join('/')}`;
  }
  throw new SasRefusal(403, FAILED, `sr ${JSON.stringify(String(sr).slice(0, 10))} is not a signed resource this fake serves (c, b, d)`);
}

const NEEDS: Record<SasOperation, string[]> = { read: ['r'], create: ['c', 'w'], write: ['w'], delete: ['d'], list: ['l'] };

function parseTime(value: string | undefined, field: string): number {
  const t = value === undefined ? Number.NaN : Date.parse(value);
  if (Number.isNaN(t)) throw new SasRefusal(403, FAILED, `${field} is mandatory and must be an ISO 8601 UTC time`);
  return t;
}

/** Authorizes one request with its SAS, or throws the refusal Blob Storage answers. */
export function authorizeSas(req: SasRequest, keys: AzureFakeKey[], now: number): void {
  const q = req.query;
  for (const field of ['sv', 'sr', 'sp', 'se', 'sig', 'skoid', 'sktid', 'skt', 'ske', 'sks', 'skv']) {
    if (!q[field]) throw new SasRefusal(403, FAILED, `Signature fields not well formed: ${field} is mandatory`);
  }
  if (q.sv < SAS_LAYOUT_FROM || q.sv >= SAS_LAYOUT_BEFORE) {
    throw new SasRefusal(403, FAILED, `sv ${q.sv.slice(0, 12)}: the fake checks the string-to-sign of versions ${SAS_LAYOUT_FROM} up to ${SAS_LAYOUT_BEFORE}`);
  }
  if ([...q.sp].some((p) => !PERMISSIONS.has(p)) || new Set(q.sp).size !== q.sp.length) {
    throw new SasRefusal(403, FAILED, 'Signature fields not well formed: sp');
  }
  if (q.spr !== undefined && !q.spr.split(',').includes('https')) {
    throw new SasRefusal(403, 'AuthorizationProtocolMismatch', 'This request is not authorized to perform this operation using this protocol.');
  }
  const resource = canonicalizedResource(req);
  const stringToSign = documentedStringToSign(q, resource);
  const key = keys.find(
    (k) =>
      k.account === req.account &&
      k.signedOid === q.skoid &&
      k.signedTid === q.sktid &&
      k.signedStart === q.skt &&
      k.signedExpiry === q.ske &&
      k.signedService === q.sks &&
      k.signedVersion === q.skv,
  );
  const expected = key ? Buffer.from(documentedSignature(key.value, stringToSign), 'base64') : Buffer.alloc(32);
  const given = Buffer.from(q.sig, 'base64');
  if (!key || given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SasRefusal(403, FAILED, `Signature did not match. String to sign used was ${stringToSign}`);
  }
  if (key.revokedAt !== null) throw new SasRefusal(403, FAILED, 'The user delegation key was revoked.');
  const start = q.st === undefined ? Number.NEGATIVE_INFINITY : parseTime(q.st, 'st');
  const expiry = parseTime(q.se, 'se');
  if (expiry <= start) throw new SasRefusal(403, FAILED, `Signed expiry time [${q.se}] has to be after signed start time [${q.st}]`);
  if (now < start || now >= expiry) {
    throw new SasRefusal(403, FAILED, `Signed expiry time [${q.se}] must be after signed start time [${q.st ?? ''}] and the current time must be between them`);
  }
  if (now >= parseTime(q.ske, 'ske') || now < parseTime(q.skt, 'skt')) throw new SasRefusal(403, FAILED, 'The user delegation key is not valid at this time.');
  const needs = req.operation === 'create' && req.blobExists ? NEEDS.write : NEEDS[req.operation];
  if (!needs.some((p) => q.sp.includes(p))) {
    throw new SasRefusal(403, 'AuthorizationPermissionMismatch', 'This request is not authorized to perform this operation using this permission.');
  }
}
