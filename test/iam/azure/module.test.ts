import { describe, expect, it } from 'vitest';
import {
  azureModule,
  DEFAULT_AUDIENCE,
  MAX_USER_DELEGATION_KEY_S,
  sasScopesFor,
  type AzureTarget,
  type SasScope,
} from '../../../src/iam/azure/module.ts';
import type { RoleFacts } from '../../../src/iam/types.ts';
import { refusal } from '../helpers.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '0b5f2c1e-9d7a-4c1b-8f00-000000000042';
const SUB = '4a8c0d3e-1111-4222-8333-944455556666';
const BASE = { tenant_id: TENANT, client_id: CLIENT, storage_account: 'tvmlogs01' };


const parse = (raw: unknown) => azureModule.parseTarget(raw, 'iam.azure');
const flat = parse(BASE);
const hns = parse({ ...BASE, hierarchical_namespace: true });

describe('azureModule.parseTarget', () => {
  it('fills the defaults: audience api://AzureADTokenExchange, no hierarchical namespace, no key revocation', () => {
    expect(flat).toEqual({
      tenant_id: TENANT,
      client_id: CLIENT,
      storage_account: 'tvmlogs01',
      audience: 'api://AzureADTokenExchange',
      hierarchical_namespace: false,
      revoke_user_delegation_keys: false,
    });
    expect(DEFAULT_AUDIENCE).toBe('api://AzureADTokenExchange');
    expect(azureModule.cloud).toBe('azure');
    expect(azureModule.schemes).toEqual(['azblob']);
  });

  it('lowercases GUIDs and keeps every field', () => {
    expect(
      parse({
        tenant_id: TENANT.toUpperCase(),
        client_id: CLIENT,
        storage_account: 'tvmlogs01',
        audience: 'api://tvm-azure',
        hierarchical_namespace: true,
        revoke_user_delegation_keys: true,
        subscription_id: SUB.toUpperCase(),
        resource_group: 'rg-tvm_(prod).eu',
      }),
    ).toEqual({
      tenant_id: TENANT,
      client_id: CLIENT,
      storage_account: 'tvmlogs01',
      audience: 'api://tvm-azure',
      hierarchical_namespace: true,
      revoke_user_delegation_keys: true,
      subscription_id: SUB,
      resource_group: 'rg-tvm_(prod).eu',
    });
  });

  it.each<[string, unknown, string, string]>([
    ['not an object', 'x', 'iam.azure', 'expected an object with tenant_id, client_id and storage_account'],
    ['an array', [], 'iam.azure', 'expected an object'],
    ['an unknown field', { ...BASE, region: 'westeurope' }, 'iam.azure.region', 'unknown field; expected tenant_id, client_id'],
    ['no tenant', { client_id: CLIENT, storage_account: 'a12' }, 'iam.azure.tenant_id', 'required: a GUID'],
    ['a tenant domain instead of a GUID', { ...BASE, tenant_id: 'contoso.onmicrosoft.com' }, 'iam.azure.tenant_id', '"contoso.onmicrosoft.com" is not a GUID'],
    ['a short client id', { ...BASE, client_id: '0b5f2c1e-9d7a-4c1b-8f00-00000000004' }, 'iam.azure.client_id', 'is not a GUID'],
    ['no storage account', { tenant_id: TENANT, client_id: CLIENT }, 'iam.azure.storage_account', 'required: the storage account name'],
    ['an uppercase account', { ...BASE, storage_account: 'TvmLogs' }, 'iam.azure.storage_account', '"TvmLogs" is not a storage account name (3 to 24 lowercase letters and digits)'],
    ['a 2-letter account', { ...BASE, storage_account: 'ab' }, 'iam.azure.storage_account', 'is not a storage account name'],
    ['a 25-letter account', { ...BASE, storage_account: 'a'.repeat(25) }, 'iam.azure.storage_account', 'is not a storage account name'],
    ['an account with a dash', { ...BASE, storage_account: 'tvm-logs' }, 'iam.azure.storage_account', 'is not a storage account name'],
    ['an empty audience', { ...BASE, audience: '' }, 'iam.azure.audience', 'expected a non-empty string'],
    ['an audience over 600 characters', { ...BASE, audience: `api://${'a'.repeat(600)}` }, 'iam.azure.audience', 'at most 600 characters (got 606)'],
    ['a string flag', { ...BASE, hierarchical_namespace: 'yes' }, 'iam.azure.hierarchical_namespace', 'expected true or false'],
    ['revocation without a subscription', { ...BASE, revoke_user_delegation_keys: true, resource_group: 'rg' }, 'iam.azure.subscription_id', 'required when revoke_user_delegation_keys is true'],
    ['revocation without a resource group', { ...BASE, revoke_user_delegation_keys: true, subscription_id: SUB }, 'iam.azure.resource_group', 'required when revoke_user_delegation_keys is true'],
    ['a bad subscription', { ...BASE, subscription_id: 'prod' }, 'iam.azure.subscription_id', '"prod" is not a GUID'],
    ['a resource group ending in "."', { ...BASE, resource_group: 'rg.' }, 'iam.azure.resource_group', 'is not a resource group name'],
    ['a resource group with "/"', { ...BASE, resource_group: 'rg/x' }, 'iam.azure.resource_group', 'is not a resource group name'],
    ['a resource group of 91 characters', { ...BASE, resource_group: 'r'.repeat(91) }, 'iam.azure.resource_group', 'is not a resource group name'],
  ])('refuses %s', (_what, raw, field, message) => {
    const r = refusal(() => parse(raw));
    expect(r.field).toBe(field);
    expect(r.message).toContain(message);
  });

  it('accepts the 3- and 24-character account names', () => {
    expect(parse({ ...BASE, storage_account: 'a1b' }).storage_account).toBe('a1b');
    expect(parse({ ...BASE, storage_account: 'a'.repeat(24) }).storage_account).toBe('a'.repeat(24));
  });
});

const scopes = (read: string[], write: string[] = []) => ({ read, write });

describe('sasScopesFor: the translation table', () => {
  it.each<[string, AzureTarget, { read: string[]; write: string[] }, SasScope[]]>([
    [
      'read of a whole container: container SAS, read + list',
      flat,
      scopes(['azblob://tvmlogs01/app-logs/**']),
      [{ resource: 'c', container: 'app-logs', permissions: 'rl', patterns: ['read:azblob://tvmlogs01/app-logs/**'] }],
    ],
    [
      'write of a whole container: container SAS, add + create + write + delete',
      flat,
      scopes([], ['azblob://tvmlogs01/outbox/**']),
      [{ resource: 'c', container: 'outbox', permissions: 'acwd', patterns: ['write:azblob://tvmlogs01/outbox/**'] }],
    ],
    [
      'read of one blob: blob SAS, read only (a blob has no listing)',
      flat,
      scopes(['azblob://tvmlogs01/config/app/settings.json']),
      [{ resource: 'b', container: 'config', path: 'app/settings.json', permissions: 'r', patterns: ['read:azblob://tvmlogs01/config/app/settings.json'] }],
    ],
    [
      'write of one blob: blob SAS',
      flat,
      scopes([], ['azblob://tvmlogs01/outbox/batch-7.json']),
      [{ resource: 'b', container: 'outbox', path: 'batch-7.json', permissions: 'acwd', patterns: ['write:azblob://tvmlogs01/outbox/batch-7.json'] }],
    ],
    [
      'a prefix on a hierarchical namespace: directory SAS with its depth',
      hns,
      scopes(['azblob://tvmlogs01/lake/raw/2026/**'], ['azblob://tvmlogs01/lake/out/**']),
      [
        { resource: 'd', container: 'lake', path: 'raw/2026', depth: 2, permissions: 'rl', patterns: ['read:azblob://tvmlogs01/lake/raw/2026/**'] },
        { resource: 'd', container: 'lake', path: 'out', depth: 1, permissions: 'acwd', patterns: ['write:azblob://tvmlogs01/lake/out/**'] },
      ],
    ],
    [
      'read and write of the same resource: one SAS, the union in canonical order',
      hns,
      scopes(['azblob://tvmlogs01/lake/**', 'azblob://tvmlogs01/lake/x/y.csv', 'azblob://tvmlogs01/lake/d/**'], [
        'azblob://tvmlogs01/lake/**',
        'azblob://tvmlogs01/lake/x/y.csv',
        'azblob://tvmlogs01/lake/d/**',
      ]),
      [
        { resource: 'c', container: 'lake', permissions: 'racwdl', patterns: ['read:azblob://tvmlogs01/lake/**', 'write:azblob://tvmlogs01/lake/**'] },
        { resource: 'b', container: 'lake', path: 'x/y.csv', permissions: 'racwd', patterns: ['read:azblob://tvmlogs01/lake/x/y.csv', 'write:azblob://tvmlogs01/lake/x/y.csv'] },
        { resource: 'd', container: 'lake', path: 'd', depth: 1, permissions: 'racwdl', patterns: ['read:azblob://tvmlogs01/lake/d/**', 'write:azblob://tvmlogs01/lake/d/**'] },
      ],
    ],
    [
      'a repeated pattern: one SAS, named once',
      flat,
      scopes(['azblob://tvmlogs01/logs/**', 'azblob://tvmlogs01/logs/**']),
      [{ resource: 'c', container: 'logs', permissions: 'rl', patterns: ['read:azblob://tvmlogs01/logs/**'] }],
    ],
    [
      'a blob and a directory of the same name stay two SAS (different resources)',
      hns,
      scopes(['azblob://tvmlogs01/lake/a', 'azblob://tvmlogs01/lake/a/**']),
      [
        { resource: 'b', container: 'lake', path: 'a', permissions: 'r', patterns: ['read:azblob://tvmlogs01/lake/a'] },
        { resource: 'd', container: 'lake', path: 'a', depth: 1, permissions: 'rl', patterns: ['read:azblob://tvmlogs01/lake/a/**'] },
      ],
    ],
    [
      'special containers ($root, $web) and other schemes (ignored)',
      flat,
      scopes(['azblob://tvmlogs01/$web/**', 's3://logs/**', 'db://orders/*'], ['azblob://tvmlogs01/$root/index.html']),
      [
        { resource: 'c', container: '$web', permissions: 'rl', patterns: ['read:azblob://tvmlogs01/$web/**'] },
        { resource: 'b', container: '$root', path: 'index.html', permissions: 'acwd', patterns: ['write:azblob://tvmlogs01/$root/index.html'] },
      ],
    ],
    ['no azblob:// pattern: nothing', flat, scopes(['s3://logs/**'], ['gs://b/**']), []],
  ])('%s', (_what, target, s, expected) => {
    expect(sasScopesFor(target, s)).toEqual(expected);
  });

  it('a blob name of 1,024 characters and 254 segments is expressible; one more is not', () => {
    const long = 'a'.repeat(1024);
    expect(sasScopesFor(flat, scopes([`azblob://tvmlogs01/logs/${long}`]))[0].path).toBe(long);
    const segs = Array.from({ length: 254 }, () => 'a').join('/');
    expect(sasScopesFor(flat, scopes([`azblob://tvmlogs01/logs/${segs}`]))[0].path).toBe(segs);
    expect(refusal(() => sasScopesFor(flat, scopes([`azblob://tvmlogs01/logs/${long}b`]))).message).toContain('blob names are at most 1024 characters');
    expect(refusal(() => sasScopesFor(flat, scopes([`azblob://tvmlogs01/logs/${segs}/a`]))).message).toContain('at most 254 segments');
  });
});

describe('sasScopesFor: what no SAS can express is refused, naming the pattern', () => {
  it.each<[string, AzureTarget, string, string]>([
    ['another account', flat, 'azblob://otheracct/logs/**', 'azblob://otheracct/logs/**: names storage account "otheracct", but iam.azure.storage_account is "tvmlogs01"'],
    ['a wildcard account', flat, 'azblob://tvm*/logs/**', 'wildcards in the account name cannot be expressed'],
    ['a wildcard container', flat, 'azblob://tvmlogs01/logs-*/**', 'a SAS names one container: wildcards in the container name cannot be expressed'],
    ['"**" as the container', flat, 'azblob://tvmlogs01/**', 'wildcards in the container name cannot be expressed'],
    ['an invalid container (uppercase)', flat, 'azblob://tvmlogs01/Logs/**', '"Logs" is not a container name'],
    ['an invalid container (too short)', flat, 'azblob://tvmlogs01/lg/**', '"lg" is not a container name'],
    ['an invalid container ("--")', flat, 'azblob://tvmlogs01/app--logs/**', '"app--logs" is not a container name'],
    ['an invalid container (trailing "-")', flat, 'azblob://tvmlogs01/logs-/**', 'is not a container name'],
    ['the account alone', flat, 'azblob://tvmlogs01', 'names the account, not a container: use azblob://tvmlogs01/<container>/**'],
    ['the container alone', flat, 'azblob://tvmlogs01/logs', 'names the container itself, not blobs: use azblob://tvmlogs01/logs/** for every blob in it'],
    ['single-segment "*"', flat, 'azblob://tvmlogs01/logs/*.log', '"*" matches within one path segment, which no SAS can name'],
    ['"*" in a directory', hns, 'azblob://tvmlogs01/logs/*/app/**', '"*" matches within one path segment'],
    ['"**" not at the end', hns, 'azblob://tvmlogs01/logs/**/app.log', '"**" is only expressible at the end of the path'],
    ['"**" after a partial name', hns, 'azblob://tvmlogs01/logs/app-**', '"**" after a partial name is a name prefix, not a directory'],
    [
      'a prefix without a hierarchical namespace',
      flat,
      'azblob://tvmlogs01/logs/app/**',
      'a prefix needs a directory SAS (sr=d), which Azure offers only on accounts with a hierarchical namespace; without one the SAS would widen to the whole container',
    ],
    ['an empty segment', flat, 'azblob://tvmlogs01/logs/a//b', 'empty path segments'],
    ['a trailing "/"', flat, 'azblob://tvmlogs01/logs/dir/', 'empty path segments'],
    ['a ".." segment', flat, 'azblob://tvmlogs01/logs/a/../b', '"." and ".." segments are refused'],
    ['a "." directory', hns, 'azblob://tvmlogs01/logs/./**', '"." and ".." segments are refused'],
    ['a backslash', flat, 'azblob://tvmlogs01/logs/a\\b', 'backslashes are refused'],
  ])('%s', (_what, target, pattern, message) => {
    const r = refusal(() => sasScopesFor(target, scopes(['azblob://tvmlogs01/okay/**', pattern])));
    expect(r.field).toBe('read[1]');
    expect(r.message.startsWith(`invalid read[1]: ${pattern}: `)).toBe(true);
    expect(r.message).toContain(message);
  });

  it('names write[i] for a write pattern', () => {
    const r = refusal(() => sasScopesFor(flat, scopes(['azblob://tvmlogs01/a1b/**'], ['db://x', 'azblob://tvmlogs01/out/x/**'])));
    expect(r.field).toBe('write[1]');
    expect(r.message).toMatch(/^invalid write\[1\]: azblob:\/\/tvmlogs01\/out\/x\/\*\*: a prefix needs a directory SAS/);
  });
});

const role = (over: Partial<RoleFacts> = {}): RoleFacts => ({
  read: ['azblob://tvmlogs01/logs/**'],
  write: [],
  audiences: ['api://AzureADTokenExchange'],
  maxTtlS: 3600,
  ...over,
});

describe('azureModule.checkRole', () => {
  it('accepts a role with an azblob:// scope, the audience and a max_ttl up to 7 days', () => {
    expect(() => azureModule.checkRole(flat, role(), 'iam.azure')).not.toThrow();
    expect(() => azureModule.checkRole(flat, role({ maxTtlS: MAX_USER_DELEGATION_KEY_S }), 'iam.azure')).not.toThrow();
    expect(MAX_USER_DELEGATION_KEY_S).toBe(604_800);
  });

  it('refuses a role with no azblob:// scope', () => {
    const r = refusal(() => azureModule.checkRole(flat, role({ read: ['s3://logs/**'], write: ['db://x'] }), 'iam.azure'));
    expect(r).toEqual({ field: 'iam.azure', message: 'invalid iam.azure: the role has no azblob:// scope, so an Azure SAS would carry no permission' });
  });

  it("refuses when the target's audience is not among the role's audiences", () => {
    const r = refusal(() => azureModule.checkRole(flat, role({ audiences: ['https://orders.example'] }), 'iam.azure'));
    expect(r.field).toBe('iam.azure.audience');
    expect(r.message).toContain("the role's audiences are https://orders.example; add api://AzureADTokenExchange to the role's audiences");
    const none = refusal(() => azureModule.checkRole(flat, role({ audiences: [] }), 'iam.azure'));
    expect(none.message).toContain('the role has no audiences (its tokens carry the issuer)');
    const custom = parse({ ...BASE, audience: 'api://tvm-azure' });
    expect(() => azureModule.checkRole(custom, role({ audiences: ['api://tvm-azure'] }), 'iam.azure')).not.toThrow();
  });

  it('refuses a max_ttl over the 7 days a user delegation key may live', () => {
    const r = refusal(() => azureModule.checkRole(flat, role({ maxTtlS: MAX_USER_DELEGATION_KEY_S + 1 }), 'iam.azure'));
    expect(r.field).toBe('max_ttl');
    expect(r.message).toContain('604801s is longer than a user delegation key may live (7 days, 604800s)');
  });

  it('refuses an inexpressible scope of the role, naming it', () => {
    const r = refusal(() => azureModule.checkRole(flat, role({ read: ['db://x', 'azblob://tvmlogs01/logs/app/**'] }), 'iam.azure'));
    expect(r.field).toBe('read[1]');
    expect(r.message).toContain('azblob://tvmlogs01/logs/app/**: a prefix needs a directory SAS');
  });
});
