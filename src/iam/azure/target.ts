// The role's `iam.azure` object: parse and validate (pure: no SDK, no I/O).
//
//   tenant_id                    required GUID: the Entra tenant of the app registration.
//   client_id                    required GUID: the app registration (or user-assigned managed
//                                identity) whose federated identity credential trusts tvm's
//                                issuer and the workload's `sub`.
//   storage_account              required: the storage account every azblob:// scope must name
//                                (3-24 lowercase letters and digits).
//   audience                     the `aud` Entra expects on the tvm token; default
//                                api://AzureADTokenExchange (what Entra recommends for a
//                                federated identity credential; at most 600 characters).
//   hierarchical_namespace       default false. True only if the account has a hierarchical
//                                namespace (ADLS Gen2): then a prefix `.../dir/**` becomes a
//                                directory SAS (sr=d); otherwise such a prefix is refused.
//   revoke_user_delegation_keys  default false. True: revoking a lease calls ARM's
//                                revokeUserDelegationKeys on the account, which kills EVERY
//                                user delegation SAS of the account (every grant, every
//                                workload, not only this one). Needs subscription_id and
//                                resource_group (where the account lives in ARM).
//   subscription_id              GUID; required when revoke_user_delegation_keys is true.
//   resource_group               1-90 characters of letters, digits, "_", "-", ".", "(", ")",
//                                not ending in "."; required when revoke_user_delegation_keys is true.

import { IamFieldError } from '../errors.ts';
import { targetObject } from '../target.ts';

export interface AzureTarget {
  /** Lowercase GUID. */
  tenant_id: string;
  /** Lowercase GUID. */
  client_id: string;
  storage_account: string;
  audience: string;
  hierarchical_namespace: boolean;
  revoke_user_delegation_keys: boolean;
  /** Lowercase GUID; set whenever revoke_user_delegation_keys is. */
  subscription_id?: string;
  resource_group?: string;
}

/** The audience Entra documents for federated identity credentials. */
export const DEFAULT_AUDIENCE = 'api://AzureADTokenExchange';
/** Entra keeps at most 600 characters for a federated identity credential's audience. */
export const MAX_AUDIENCE_LENGTH = 600;

const FIELDS = [
  'tenant_id',
  'client_id',
  'storage_account',
  'audience',
  'hierarchical_namespace',
  'revoke_user_delegation_keys',
  'subscription_id',
  'resource_group',
] as const;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Storage account names: 3-24 lowercase letters and digits. */
export const STORAGE_ACCOUNT = /^[a-z0-9]{3,24}$/;
// ARM resource group names: letters (Unicode), digits, underscores, hyphens, periods, parentheses; not ending in a period.
const RESOURCE_GROUP = /^[\p{L}\p{N}_().-]{1,90}$/u;

function guid(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw === '') throw new IamFieldError(field, 'required: a GUID such as 00000000-0000-0000-0000-000000000000');
  if (!GUID.test(raw)) throw new IamFieldError(field, `${JSON.stringify(raw)} is not a GUID (8-4-4-4-12 hexadecimal digits)`);
  return raw.toLowerCase();
}

function flag(raw: unknown, field: string): boolean {
  if (raw === undefined) return false;
  if (typeof raw !== 'boolean') throw new IamFieldError(field, 'expected true or false');
  return raw;
}

function storageAccount(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw === '') throw new IamFieldError(field, 'required: the storage account name');
  if (!STORAGE_ACCOUNT.test(raw)) {
    throw new IamFieldError(field, `${JSON.stringify(raw)} is not a storage account name (3 to 24 lowercase letters and digits)`);
  }
  return raw;
}

function resourceGroup(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw === '') throw new IamFieldError(field, 'expected the resource group name');
  if (!RESOURCE_GROUP.test(raw) || raw.endsWith('.')) {
    throw new IamFieldError(
      field,
      `${JSON.stringify(raw)} is not a resource group name (1 to 90 letters, digits, "_", "-", ".", "(", ")", not ending in ".")`,
    );
  }
  return raw;
}

/** Validates `iam.azure` as written; throws IamFieldError naming `<field>.<key>`. */
export function parseAzureTarget(raw: unknown, field: string): AzureTarget {
  const input = targetObject(raw, field, { expected: 'tenant_id, client_id and storage_account', fields: FIELDS });
  const target: AzureTarget = {
    tenant_id: guid(input.tenant_id, `${field}.tenant_id`),
    client_id: guid(input.client_id, `${field}.client_id`),
    storage_account: storageAccount(input.storage_account, `${field}.storage_account`),
    audience: DEFAULT_AUDIENCE,
    hierarchical_namespace: flag(input.hierarchical_namespace, `${field}.hierarchical_namespace`),
    revoke_user_delegation_keys: flag(input.revoke_user_delegation_keys, `${field}.revoke_user_delegation_keys`),
  };
  if (input.audience !== undefined) {
    if (typeof input.audience !== 'string' || input.audience === '') throw new IamFieldError(`${field}.audience`, 'expected a non-empty string');
    if (input.audience.length > MAX_AUDIENCE_LENGTH) {
      throw new IamFieldError(
        `${field}.audience`,
        `Entra accepts a federated identity credential audience of at most ${MAX_AUDIENCE_LENGTH} characters (got ${input.audience.length})`,
      );
    }
    target.audience = input.audience;
  }
  if (input.subscription_id !== undefined) target.subscription_id = guid(input.subscription_id, `${field}.subscription_id`);
  if (input.resource_group !== undefined) target.resource_group = resourceGroup(input.resource_group, `${field}.resource_group`);
  if (target.revoke_user_delegation_keys) {
    for (const key of ['subscription_id', 'resource_group'] as const) {
      if (target[key] === undefined) {
        throw new IamFieldError(
          `${field}.${key}`,
          'required when revoke_user_delegation_keys is true: ARM revokes the keys on /subscriptions/<subscription_id>/resourceGroups/<resource_group>/providers/Microsoft.Storage/storageAccounts/<storage_account>',
        );
      }
    }
  }
  return target;
}
