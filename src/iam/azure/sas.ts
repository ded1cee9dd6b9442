// Signing one user delegation SAS (Node only: HMAC-SHA256 with the key).
//
// Containers (sr=c) and blobs (sr=b) are signed by @azure/storage-blob's own
// generateBlobSASQueryParameters. It has no directory SAS (sr=d: a
// hierarchical-namespace feature that only @azure/storage-file-datalake
// signs), so directories are signed here with the same string-to-sign: the
// layout of user delegation SAS version 2020-12-06 and later (before
// 2025-07-05, which adds two fields), where sr=d differs from sr=b only in the
// `sr` line and the canonical resource naming the directory, and sdd is a
// query parameter outside the signature (as storage-file-datalake signs it).
// The tests check that this function, given sr=c or sr=b, yields the very
// signature the SDK computes.

import { createHmac } from 'node:crypto';
import {
  BlobSASPermissions,
  ContainerSASPermissions,
  SASProtocol,
  SASQueryParameters,
  generateBlobSASQueryParameters,
  type UserDelegationKey,
} from '@azure/storage-blob';
import type { SasScope } from './scopes.ts';

/** The SAS version tvm signs (pinned: the string-to-sign layout below is this version's). */
export const SAS_VERSION = '2024-11-04';

/** Seconds precision, as SAS fields carry times: 2026-11-23T12:00:00Z. */
export function sasTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export interface SasInput {
  account: string;
  scope: Pick<SasScope, 'resource' | 'container' | 'path' | 'depth' | 'permissions'>;
  startsOn: Date;
  expiresOn: Date;
  key: UserDelegationKey;
}

/** The user delegation string-to-sign (SAS versions 2020-12-06 up to 2025-07-05), for any `sr`. */
export function userDelegationStringToSign(input: SasInput): string {
  const { account, scope, key } = input;
  const resource = `/blob/${account}/${scope.container}${scope.path ? `/${scope.path}` : ''}`;
  return [
    scope.permissions,
    sasTime(input.startsOn),
    sasTime(input.expiresOn),
    resource,
    key.signedObjectId,
    key.signedTenantId,
    sasTime(key.signedStartsOn),
    sasTime(key.signedExpiresOn),
    key.signedService,
    key.signedVersion,
    '', // signedAuthorizedUserObjectId (saoid)
    '', // signedUnauthorizedUserObjectId (suoid)
    '', // signedCorrelationId (scid)
    '', // signedIP
    SASProtocol.Https,
    SAS_VERSION,
    scope.resource,
    '', // signedSnapshotTime
    '', // signedEncryptionScope
    '', // rscc
    '', // rscd
    '', // rsce
    '', // rscl
    '', // rsct
  ].join('\n');
}

/** The SAS query string (without "?") for one scope. */
export function signSas(input: SasInput): string {
  const { account, scope, key } = input;
  if (scope.resource === 'd') {
    const sig = createHmac('sha256', Buffer.from(key.value, 'base64')).update(userDelegationStringToSign(input), 'utf8').digest('base64');
    const params = new SASQueryParameters(SAS_VERSION, sig, {
      permissions: scope.permissions,
      protocol: SASProtocol.Https,
      startsOn: input.startsOn,
      expiresOn: input.expiresOn,
      resource: 'd',
      userDelegationKey: key,
    });
    return `${params.toString()}&sdd=${scope.depth}`;
  }
  return generateBlobSASQueryParameters(
    {
      containerName: scope.container,
      ...(scope.resource === 'b' ? { blobName: scope.path } : {}),
      permissions: scope.resource === 'b' ? BlobSASPermissions.parse(scope.permissions) : ContainerSASPermissions.parse(scope.permissions),
      startsOn: input.startsOn,
      expiresOn: input.expiresOn,
      protocol: SASProtocol.Https,
      version: SAS_VERSION,
    },
    key,
    account,
  ).toString();
}
