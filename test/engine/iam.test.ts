// The engine's side of the cloud mapping: a role's `iam` is validated at role
// write by the cloud modules (never stored as given), the signing algorithm
// must suit every mapped cloud, and `creds` with `cloud` issues a token for that
// cloud's exchange.

import { describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { failure, harness } from './helpers.ts';

const AWS_ROLE = {
  read: ['s3://logs/app/**', 'db://orders/*'],
  audiences: ['sts.amazonaws.com', 'orders-api'],
  ttl: '15m',
  max_ttl: '1h',
  iam: { aws: { role_arn: 'arn:aws:iam::123456789012:role/tvm-logs' } },
};

describe('role iam', () => {
  it('stores the validated target with its defaults', async () => {
    const h = await harness();
    await h.call('create', 'roles/logs', AWS_ROLE);
    const iam = (await h.call('read', 'roles/logs'))?.data?.iam as Record<string, Record<string, unknown>>;
    expect(iam.aws).toMatchObject({ role_arn: 'arn:aws:iam::123456789012:role/tvm-logs', audience: 'sts.amazonaws.com' });
  });

  it.each([
    [{ iam: [1] }, 'iam', 'invalid iam: expected a JSON object'],
    [{ iam: { oracle: {} } }, 'iam.oracle', 'invalid iam.oracle: unknown cloud "oracle"; expected one of aws, gcp, azure, kubernetes'],
    [{ iam: { aws: { role_arn: 'not-an-arn' } } }, 'iam.aws.role_arn', 'invalid iam.aws.role_arn'],
    [{ audiences: [] }, 'iam.aws.audience', 'invalid iam.aws.audience'],
    [{ read: ['s3://logs/app/*'] }, 'read[0]', 's3://logs/app/*'],
    [{ read: ['db://orders/*'] }, 'iam.aws', 'invalid iam.aws'],
  ])('refuses %j naming %s, and stores nothing', async (change, field, message) => {
    const h = await harness();
    const err = await failure(() => h.call('create', 'roles/logs', { ...AWS_ROLE, ...change }));
    expect(err).toMatchObject({ code: 'ERR_INVALID_FIELD', status: 400 });
    expect(err.message).toContain(message);
    expect(err.message.startsWith(`invalid ${field}`)).toBe(true);
    expect(await h.call('read', 'roles/logs')).toBeNull();
  });

  it.each([
    [{ aws: { role_arn: `arn:aws:iam::123456789012:role/${'x'.repeat(100_000)}` } }, 'iam.aws.role_arn'],
    [{ ['z'.repeat(100_000)]: {} }, 'iam.zzz'],
    [{ kubernetes: { api_server: 'https://10.0.0.1:6443', namespace: 'n'.repeat(100_000) } }, 'iam.kubernetes.namespace'],
  ])('oversized input is refused with a bounded message naming the field (%#)', async (iam, field) => {
    const h = await harness();
    const err = await failure(() => h.call('create', 'roles/logs', { ...AWS_ROLE, iam }));
    expect(err).toMatchObject({ code: 'ERR_INVALID_FIELD', status: 400 });
    expect(err.message.startsWith(`invalid ${field}`)).toBe(true);
    expect(err.message.length).toBeLessThan(1_000);
    expect(err.message).toMatch(/…\(\d+ characters cut\)…/);
    expect(await h.call('read', 'roles/logs')).toBeNull();
  });

  it('an oversized cloud on creds is refused, bounded', async () => {
    const h = await harness();
    await h.call('create', 'roles/logs', AWS_ROLE);
    const err = await failure(() => h.call('update', 'creds/logs', { cloud: 'c'.repeat(100_000) }));
    expect(err).toMatchObject({ code: 'ERR_INVALID_FIELD', status: 400 });
    expect(err.message.startsWith('invalid cloud: ')).toBe(true);
    expect(err.message.length).toBeLessThan(1_000);
  });

  it('an empty iam object means no mapping', async () => {
    const h = await harness();
    await h.call('create', 'roles/plain', { read: ['db://x/*'], iam: {} });
    expect((await h.call('read', 'roles/plain'))?.data?.iam).toBeNull();
  });

  it('refuses a role whose cloud cannot verify the mount\'s signing algorithm, and the algorithm change that would break a role', async () => {
    const h = await harness();
    await h.call('update', 'config', { signing_algorithm: 'EdDSA' });
    const refused = await failure(() => h.call('create', 'roles/logs', AWS_ROLE));
    expect(refused.message).toBe(
      'invalid iam.aws: aws federation accepts tokens signed with RS256, RS384, RS512, ES256, ES384, ES512; this mount signs with EdDSA (set config signing_algorithm to ES256 or RS256)',
    );
    await h.call('update', 'config', { signing_algorithm: 'ES256' });
    await h.call('create', 'roles/logs', AWS_ROLE);
    const change = await failure(() => h.call('update', 'config', { signing_algorithm: 'EdDSA' }));
    expect(change).toMatchObject({ code: 'ERR_INVALID_FIELD', status: 400 });
    expect(change.message).toContain('invalid signing_algorithm: role "logs" maps aws');
    expect((await h.call('read', 'config'))?.data?.signing_algorithm).toBe('ES256');
  });

  it('a cloud that never sees the tvm token takes any algorithm (GCP impersonation, Kubernetes)', async () => {
    const h = await harness();
    await h.call('update', 'config', { signing_algorithm: 'EdDSA' });
    await h.call('create', 'roles/reports', {
      read: ['gs://reports/**', 'k8s://reports/configmaps'],
      max_ttl: '1h',
      iam: {
        gcp: { service_account: 'reports@acme-prod.iam.gserviceaccount.com' },
        kubernetes: { api_server: 'https://10.0.0.1:6443', namespace: 'reports' },
      },
    });
    const iam = (await h.call('read', 'roles/reports'))?.data?.iam as Record<string, unknown>;
    expect(Object.keys(iam)).toEqual(['gcp', 'kubernetes']);
  });
});

describe('creds for a cloud', () => {
  it('carries exactly the cloud audience, the target and the lease end', async () => {
    const h = await harness();
    await h.call('create', 'roles/logs', AWS_ROLE);
    const { data } = await h.issue('logs', { cloud: 'aws' });
    expect(data.audiences).toEqual(['sts.amazonaws.com']);
    expect(decodeJwt(data.token as string).aud).toBe('sts.amazonaws.com');
    expect(data.iam).toEqual({ aws: expect.objectContaining({ role_arn: 'arn:aws:iam::123456789012:role/tvm-logs' }) });
    expect(data.max_expires_at).toBe(new Date(h.clock.now + 3600_000).toISOString().replace('.000Z', 'Z'));
  });

  it('without cloud the role is used as before, with max_expires_at', async () => {
    const h = await harness();
    await h.call('create', 'roles/logs', AWS_ROLE);
    const { data } = await h.issue('logs');
    expect(data.audiences).toEqual(['sts.amazonaws.com', 'orders-api']);
    expect(data.iam).toBeUndefined();
    expect(typeof data.max_expires_at).toBe('string');
  });

  it.each([
    [{ cloud: 'oracle' }, 'invalid cloud: "oracle" is not one of aws, gcp, azure, kubernetes'],
    [{ cloud: 'gcp' }, 'invalid cloud: role "logs" maps no gcp target (its iam has aws)'],
    [{ cloud: 'aws', audience: ['orders-api'] }, 'invalid audience: a token for aws carries exactly the audience "sts.amazonaws.com"'],
  ])('refuses %j', async (body, message) => {
    const h = await harness();
    await h.call('create', 'roles/logs', AWS_ROLE);
    expect(await failure(() => h.call('update', 'creds/logs', body))).toMatchObject({ code: 'ERR_INVALID_FIELD', status: 400, message });
  });
});
