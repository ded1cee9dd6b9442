// End to end, per cloud: the broker API → the dev server (the token, with the
// cloud's audience) → the real provider, built from the broker config's
// `cloud` block (Azure's with the fake's TLS agent) → that cloud's loopback fake (test/iam/fakes/<cloud>.ts), which
// verifies the tvm token as the cloud does. Issue, then revoke; and for the clouds
// with cloud-side objects (AWS's session, Kubernetes' account, Roles and bindings),
// a broker SIGKILLed between the cloud's answer and the registry write, then
// restarted: the grant is rolled back from its plan.

import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from '../../src/broker/index.ts';
import { listLeases } from '../../src/client/index.ts';
import { createAzureProvider } from '../../src/iam/azure/provider.ts';
import { createProviders } from '../../src/iam/providers.ts';
import type { CloudProvider } from '../../src/iam/types.ts';
import { FAKE_BROKER_KEYS, startAwsFake, type AwsFake } from '../iam/fakes/aws.ts';
import { startAzureFake, type AzureFake } from '../iam/fakes/azure.ts';
import { startGcpFake, type GcpFake } from '../iam/fakes/gcp.ts';
import { startKubernetesFake, type KubernetesFake } from '../iam/fakes/kubernetes.ts';
import { api, captureLog, exited, leaseAlive, spawnCrashBroker, startDevVault, tempDir, testConfig, waitFor, type DevVault } from './helpers.ts';

const AWS_ROLE = 'arn:aws:iam::123456789012:role/tvm-logs';
const GCP_PROVIDER = '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/tvm-pool/providers/tvm-oidc';
const AZ_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const AZ_CLIENT = '0b5f2c1e-9d7a-4c1b-8f00-000000000042';
const AZ_AUD = 'api://AzureADTokenExchange';
const BROKER_K8S_TOKEN = 'k8s-broker-secret';

const dir = tempDir();
const children: ChildProcess[] = [];
let vault: DevVault;
let issuer: string;
let aws: AwsFake;
let gcp: GcpFake;
let azure: AzureFake;
let k8s: KubernetesFake;
let broker: RunningBroker;
let base: string;
const logged = captureLog();
/** Every secret value a credential carried (env values), to prove none was logged. */
const secrets: string[] = [];

/**
 * The cloud blocks, pointing at the fakes (JSON, as the HCL blocks parse). Azure's
 * fake serves a certificate for localhost on 127.0.0.1, which needs its own
 * https.Agent (fake.agent), so that one provider is built in the test with the
 * options its block would give plus that agent.
 */
function cloudBlocks(): Record<string, Record<string, unknown>> {
  return {
    aws: { sts_endpoint: aws.url, iam_endpoint: aws.url, access_key_id: FAKE_BROKER_KEYS.accessKeyId, secret_access_key: FAKE_BROKER_KEYS.secretAccessKey, max_attempts: 1, region: 'us-east-1' },
    gcp: { sts_endpoint: gcp.url, iam_credentials_endpoint: gcp.url },
    kubernetes: { cluster: { server: k8s.url, token: BROKER_K8S_TOKEN } },
  };
}

const ROLES = ['logs-aws', 'logs-gcp', 'logs-azure', 'apps-k8s'];

beforeAll(async () => {
  vault = await startDevVault();
  // Entra takes RSA assertions only; AWS and GCP take RS256 too.
  await vault.conn.write('tvm/config', { signing_algorithm: 'RS256' });
  issuer = `${vault.address}/v1/tvm`;
  aws = await startAwsFake({ oidc: { issuer, clientIds: ['sts.amazonaws.com'] } });
  aws.addRole(AWS_ROLE, { trustedSubjects: ['root'] });
  gcp = await startGcpFake({ verify: { issuer } });
  azure = await startAzureFake();
  azure.addApp({ tenantId: AZ_TENANT, clientId: AZ_CLIENT, objectId: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', federated: [{ issuer, subject: 'root', audiences: [AZ_AUD] }] });
  k8s = await startKubernetesFake({ brokerToken: BROKER_K8S_TOKEN });
  const life = { ttl: '20m', max_ttl: '1h' };
  await vault.conn.write('tvm/roles/logs-aws', { ...life, read: ['s3://logs/app/**'], audiences: ['sts.amazonaws.com'], iam: { aws: { role_arn: AWS_ROLE } } });
  await vault.conn.write('tvm/roles/logs-gcp', { ...life, read: ['gs://logs/app/**'], audiences: [`https:${GCP_PROVIDER}`], iam: { gcp: { workload_identity_provider: GCP_PROVIDER } } });
  await vault.conn.write('tvm/roles/logs-azure', {
    ...life,
    read: ['azblob://tvmlogs01/logs/**'],
    audiences: [AZ_AUD],
    iam: { azure: { tenant_id: AZ_TENANT, client_id: AZ_CLIENT, storage_account: 'tvmlogs01' } },
  });
  await vault.conn.write('tvm/roles/apps-k8s', { ...life, read: ['k8s://apps/configmaps'], write: ['k8s://apps/configmaps/feature-flags'], iam: { kubernetes: { api_server: k8s.url, namespace: 'apps' } } });
  const config = testConfig(vault, { sqlite: { path: `${dir.path}/broker.db` } }, { roles: ROLES, cloud: cloudBlocks() });
  const providers = {
    ...(await createProviders(config.clouds)),
    azure: createAzureProvider({ authorityHost: azure.urls.login, blobEndpoint: azure.blobEndpoint, managementEndpoint: azure.urls.management, agent: azure.agent, maxRetries: 0 }) as unknown as CloudProvider,
  };
  broker = await startBroker(config, { log: logged.log, providers });
  base = broker.url as string;
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await broker?.stop();
  await Promise.all([aws?.close(), gcp?.close(), azure?.close(), k8s?.close()]);
  await vault?.close();
  dir.remove();
});

interface Answer {
  token: string;
  jti: string;
  cloud_credential: { cloud: string; expires_at: string; env: Record<string, string>; [k: string]: unknown };
}

async function issue(role: string, cloud: string): Promise<{ answer: Answer; grantId: string; workload: string }> {
  const w = await api(base, 'POST', '/v1/workloads', { name: `e2e-${cloud}`, heartbeat_interval: '60s' });
  const r = await api<Answer>(base, 'POST', '/v1/tokens', { workload: w.body.id, role, cloud });
  expect(r.status, r.text).toBe(200);
  const lease = await broker.store.getLeaseByJti(r.body.jti);
  const g = await broker.store.grantOfLease(lease!.id);
  expect(g).toMatchObject({ state: 'active', cloud });
  secrets.push(...Object.entries(r.body.cloud_credential.env).filter(([k]) => /TOKEN|SECRET|SAS/.test(k)).map(([, v]) => v));
  return { answer: r.body, grantId: g!.id, workload: w.body.id as string };
}

async function revoke(jti: string, grantId: string, until: string[]): Promise<NonNullable<Awaited<ReturnType<RunningBroker['store']['getGrant']>>>> {
  expect((await api(base, 'DELETE', `/v1/tokens/${jti}`)).status).toBe(200);
  return waitFor(async () => {
    const g = await broker.store.getGrant(grantId);
    return g && until.includes(g.state) ? g : null;
  }, 5_000, `the grant ${until.join(' or ')}`) as never;
}

describe('through the broker API with the real providers', () => {
  it('aws: AssumeRoleWithWebIdentity with the tvm token (verified by the fake), the session policy; revoke puts the deny, cleanup due after expiry', async () => {
    const { answer, grantId } = await issue('logs-aws', 'aws');
    const env = answer.cloud_credential.env;
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']));
    const session = aws.state.sessions.at(-1)!;
    expect(session).toMatchObject({ action: 'AssumeRoleWithWebIdentity', roleArn: AWS_ROLE, sessionName: `tvm-${grantId}`, verified: true, subject: 'root', audience: 'sts.amazonaws.com', accessKeyId: env.AWS_ACCESS_KEY_ID });
    expect(JSON.parse(session.policy!).Statement.some((s: { Action: string | string[] }) => [s.Action].flat().includes('s3:GetObject'))).toBe(true);
    const g = await revoke(answer.jti, grantId, ['cleanup']);
    const policies = aws.state.roles.get('tvm-logs')!.policies;
    const deny = [...policies.keys()].find((n) => n.startsWith('tvm-deny-'));
    expect(deny).toBeDefined();
    expect(policies.get(deny!)).toContain(session.assumedRoleId);
    // The deny stays until the credential would have expired (plus skew): the cleanup is due then.
    expect(g.dueAt).toBeGreaterThan(Date.parse(answer.cloud_credential.expires_at));
    expect(g.detail).toMatch(/^revoke: deny policy tvm-deny-/);
  });

  it('gcp: STS token exchange of the tvm token with the access boundary; teardown relies on expiry', async () => {
    const { answer, grantId } = await issue('logs-gcp', 'gcp');
    expect(answer.cloud_credential.env.CLOUDSDK_AUTH_ACCESS_TOKEN).toBeTruthy();
    expect(gcp.state.tokens.length).toBeGreaterThanOrEqual(1);
    const g = await revoke(answer.jti, grantId, ['done']);
    expect(g.detail).toMatch(/expir/);
  });

  it('azure: the tvm token as Entra federated assertion, a user delegation key, a SAS; revoke relies on the SAS expiry', async () => {
    const { answer, grantId } = await issue('logs-azure', 'azure');
    const env = answer.cloud_credential.env;
    expect(env.AZURE_STORAGE_ACCOUNT).toBe('tvmlogs01');
    expect(env.AZURE_STORAGE_SAS_TOKEN).toMatch(/sig=/);
    expect(azure.state.keys.length).toBeGreaterThanOrEqual(1);
    const g = await revoke(answer.jti, grantId, ['done']);
    expect(g.detail).toMatch(/expir/);
  });

  it('kubernetes: a service account, Role and RoleBinding per grant and a TokenRequest; revoke deletes them and the token stops working', async () => {
    const before = k8s.state.objects.size;
    const { answer, grantId } = await issue('apps-k8s', 'kubernetes');
    const token = answer.cloud_credential.env.KUBE_TOKEN;
    expect(answer.cloud_credential.env).toMatchObject({ KUBE_SERVER: k8s.url, KUBE_NAMESPACE: 'apps' });
    expect(k8s.isTokenValid(token)).toBe(true);
    expect(k8s.state.objects.size).toBeGreaterThan(before);
    await revoke(answer.jti, grantId, ['done']);
    expect(k8s.isTokenValid(token)).toBe(false);
    expect(k8s.state.objects.size).toBe(before);
  });

  it('no cloud credential reached a log line or an event', async () => {
    const events = await api(base, 'GET', '/v1/events?limit=1000');
    const all = [logged.lines.join('\n'), events.text].join('\n');
    expect(logged.lines.length).toBeGreaterThan(10);
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    for (const s of secrets) expect(all.includes(s)).toBe(false);
    expect(all).not.toMatch(/sig=/);
  });
});

describe('SIGKILL between the cloud and the registry, then restart', () => {
  const crash = async (cloud: 'aws' | 'kubernetes', role: string) => {
    const config = `${dir.path}/crash-${cloud}.json`;
    writeFileSync(
      config,
      JSON.stringify({
        vault: { address: vault.address, auth: { token: { token: vault.rootToken } }, timeout: '2s' },
        store: { sqlite: { path: `${dir.path}/crash-${cloud}.db` } },
        listener: { address: '127.0.0.1:0' },
        roles: [role],
        loop: { tick: '50ms', trigger_interval: '100ms', claim_ttl: '5s' },
        log: { level: 'warn' },
        cloud: { [cloud]: cloudBlocks()[cloud] },
      }),
    );
    const before = new Set(await listLeases(vault.conn, `tvm/creds/${role}/`));
    const first = await spawnCrashBroker([config, 'cloud:after-cloud'], children);
    const w = await api(first.url, 'POST', '/v1/workloads', { name: `crash-${cloud}`, heartbeat_interval: '60s' });
    await api(first.url, 'POST', '/v1/tokens', { workload: w.body.id, role, cloud }).catch(() => null);
    await exited(first.child);
    expect(first.child.signalCode).toBe('SIGKILL');
    const leaked = (await listLeases(vault.conn, `tvm/creds/${role}/`)).filter((id) => !before.has(id));
    expect(leaked).toHaveLength(1);
    const second = await spawnCrashBroker([config, ''], children);
    expect(second.reconciled).toMatchObject({ grantsRolledBack: 1, intentsClosed: 1 });
    expect(await leaseAlive(vault.conn, leaked[0])).toBe(false);
    return second;
  };

  it('aws: the session AWS issued is denied from the plan alone (aws:userid *:<session>), the deny kept for cleanup', async () => {
    const sessions = aws.state.sessions.length;
    const second = await crash('aws', 'logs-aws');
    expect(aws.state.sessions.length).toBe(sessions + 1);
    const session = aws.state.sessions.at(-1)!;
    const denies = [...aws.state.roles.get('tvm-logs')!.policies.values()].filter((doc) => doc.includes(`*:${session.sessionName}`));
    expect(denies).toHaveLength(1);
    // The rolled-back grant waits in cleanup (reason rolled_back) until the deny may go.
    const events = await api<{ events: Array<{ kind: string }> }>(second.url, 'GET', '/v1/events?limit=100');
    expect(events.body.events.map((e) => e.kind)).toContain('cloud_rolled_back');
    second.child.kill('SIGTERM');
    await exited(second.child);
  });

  it('kubernetes: the service account, Roles and RoleBindings the cloud created are deleted from the plan; its token stops working', async () => {
    const before = k8s.state.objects.size;
    const tokens = k8s.state.tokens.size;
    const second = await crash('kubernetes', 'apps-k8s');
    expect(k8s.state.tokens.size).toBe(tokens + 1);
    const minted = [...k8s.state.tokens.keys()].at(-1)!;
    expect(k8s.isTokenValid(minted)).toBe(false);
    expect(k8s.state.objects.size).toBe(before);
    second.child.kill('SIGTERM');
    await exited(second.child);
  });
});
