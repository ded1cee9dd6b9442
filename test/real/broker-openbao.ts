// What the broker and cluster suites need of a real OpenBao beyond the
// harness (openbao.ts): a broker identity (AppRole under a policy), the
// lease checks as OpenBao answers them, and the plugin's revocation list.
import { decodeJwt } from 'jose';
import type { Bao } from './openbao.ts';

type Rules = Array<[path: string, capabilities: string[]]>;

/** A policy's HCL text from its rules. */
export function policyText(rules: Rules): string {
  return rules.map(([path, caps]) => `path "${path}" {\n  capabilities = ${JSON.stringify(caps)}\n}\n`).join('');
}

/** The broker's rules exactly as README "Broker" words them (update on creds, no read). */
function readmeRules(mount: string): Rules {
  return [
    [`${mount}/creds/*`, ['update']],
    ['sys/leases/renew', ['update']],
    ['sys/leases/revoke', ['update']],
    ['sys/leases/lookup', ['update']],
    [`sys/leases/lookup/${mount}/creds/*`, ['list', 'sudo']],
  ];
}

export function readmeBrokerPolicy(mount = 'tvm'): string {
  return policyText(readmeRules(mount));
}

/**
 * What the broker needs on OpenBao: the README's policy plus `read` on
 * `<mount>/creds/*`, because a token request that narrows nothing is a GET
 * (src/client/creds.ts issueCreds), and OpenBao checks `read` for it.
 */
export function brokerPolicy(mount = 'tvm'): string {
  return policyText(readmeRules(mount).map(([path, caps]) => [path, path === `${mount}/creds/*` ? ['read', ...caps] : caps]));
}

/** A workload's policy: vend, fetch its renewed token, renew and revoke its own leases. */
export function workloadPolicy(mount = 'tvm'): string {
  return policyText([
    [`${mount}/creds/*`, ['read', 'update']],
    ['sys/leases/renew', ['update']],
    ['sys/leases/revoke', ['update']],
  ]);
}

async function must(what: string, answer: Promise<{ status: number; text: string }>): Promise<void> {
  const r = await answer;
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
}

export interface AppRoleLogin {
  roleId: string;
  secretId: string;
}

/**
 * An AppRole role `name` under policy `name` (its HCL text); the approle auth
 * method is enabled at `approle/` the first time. Token ttls as given (Vault durations).
 */
export async function appRole(bao: Bao, name: string, policy: string, token: { ttl?: string; maxTtl?: string } = {}): Promise<AppRoleLogin> {
  const auths = await bao.api('GET', 'sys/auth');
  if (!auths.body.data || !('approle/' in auths.body.data)) await must('enable approle', bao.api('POST', 'sys/auth/approle', { type: 'approle' }));
  await must(`policy ${name}`, bao.api('PUT', `sys/policies/acl/${name}`, { policy }));
  await must(
    `approle role ${name}`,
    bao.api('POST', `auth/approle/role/${name}`, {
      token_policies: [name],
      ...(token.ttl ? { token_ttl: token.ttl } : {}),
      ...(token.maxTtl ? { token_max_ttl: token.maxTtl } : {}),
    }),
  );
  const roleId = (await bao.api('GET', `auth/approle/role/${name}/role-id`)).body.data?.role_id;
  const secretId = (await bao.api('POST', `auth/approle/role/${name}/secret-id`, {})).body.data?.secret_id;
  if (typeof roleId !== 'string' || typeof secretId !== 'string') throw new Error(`approle role ${name}: no role id or secret id answered`);
  return { roleId, secretId };
}

/** Logs in with AppRole; returns the client token (a secret: never put it in a message). */
export async function appRoleToken(bao: Bao, login: AppRoleLogin): Promise<string> {
  const r = await bao.api('POST', 'auth/approle/login', { role_id: login.roleId, secret_id: login.secretId }, null);
  const token = (r.body.auth as { client_token?: unknown } | null | undefined)?.client_token;
  if (r.status !== 200 || typeof token !== 'string') throw new Error(`approle login: ${r.status}`);
  return token;
}

/** OpenBao's own view of a lease: 'live', or 'gone' ("invalid lease", as OpenBao answers an unknown one). */
export async function leaseState(bao: Bao, leaseId: string): Promise<'live' | 'gone'> {
  const r = await bao.api('PUT', 'sys/leases/lookup', { lease_id: leaseId });
  if (r.status === 200) return 'live';
  if (r.status === 400 && r.body.errors?.includes('invalid lease')) return 'gone';
  throw new Error(`sys/leases/lookup: ${r.status} ${r.body.errors?.join('; ') ?? ''}`);
}

/** The jtis in the plugin's revocation list (unauthenticated, as verifiers read it). */
export async function revokedJtis(bao: Bao, mount = 'tvm'): Promise<Set<string>> {
  const r = await bao.api('GET', `${mount}/revocations`, undefined, null);
  const revoked = (r.body.data?.revoked ?? []) as Array<{ jti: string }>;
  return new Set(revoked.map((e) => e.jti));
}

/** The lease ids OpenBao lists for a role (root's LIST of sys/leases/lookup/<mount>/creds/<role>/). */
export async function leaseIdsOf(bao: Bao, role: string, mount = 'tvm'): Promise<string[]> {
  const r = await bao.api('LIST', `sys/leases/lookup/${mount}/creds/${role}/`);
  if (r.status === 404) return [];
  const keys = (r.body.data?.keys ?? []) as string[];
  return keys.map((k) => `${mount}/creds/${role}/${k}`);
}

/** A token's jti and exp (seconds), read without verifying (the suites verify with the JWKS where it matters). */
export function claimsOf(token: string): { jti: string; exp: number; iss: string } {
  const c = decodeJwt(token);
  return { jti: String(c.jti), exp: Number(c.exp), iss: String(c.iss) };
}
