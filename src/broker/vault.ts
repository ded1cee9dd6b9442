// The broker's side of Vault, through the client library (src/client): its own
// login (token, AppRole or JWT) kept renewed, and the credential calls.

import { readFileSync } from 'node:fs';
import {
  connect,
  issueCreds,
  listLeases,
  lookupLease,
  renewLease,
  revokeLease,
  VaultRequestError,
  type Creds,
  type CredsRequest,
  type LeaseInfo,
  type VaultConnection,
} from '../client/index.ts';
import { BrokerError, PermanentError, describeError } from './errors.ts';
import type { Clock } from './types.ts';

export type VaultAuth =
  | { method: 'token'; token?: string; tokenFile?: string }
  | { method: 'approle'; path: string; roleId: string; secretId?: string; secretIdFile?: string }
  | { method: 'jwt'; path: string; role: string; jwt?: string; jwtFile?: string };

export interface VaultSettings {
  address: string;
  mount: string;
  auth: VaultAuth;
  timeoutMs: number;
}

/** The Vault operations the broker needs; tests may stand in for it. */
export interface VaultGateway {
  readonly mount: string;
  login(): Promise<void>;
  /** Renews (or re-logs in) the broker's own token when due; returns when to call again. */
  maintainSelf(now: number): Promise<number>;
  issue(role: string, req: CredsRequest): Promise<Creds>;
  renew(leaseId: string): Promise<Creds>;
  revoke(leaseId: string): Promise<void>;
  lookup(leaseId: string): Promise<LeaseInfo | null>;
  list(role: string): Promise<string[]>;
}

function readSecret(value: string | undefined, file: string | undefined, what: string): string {
  if (value !== undefined && value !== '') return value;
  if (file !== undefined && file !== '') {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new BrokerError('ERR_CONFIG', `cannot read the ${what} file ${file}: ${describeError(err)}`);
    }
  }
  throw new BrokerError('ERR_CONFIG', `no ${what} configured`);
}

/** Vault errors retrying cannot change: refused input, unknown lease or role. */
export function isPermanent(err: unknown): boolean {
  return err instanceof VaultRequestError && (err.status === 400 || err.status === 404);
}

function wrap(err: unknown, what: string): Error {
  if (err instanceof PermanentError || err instanceof BrokerError) return err;
  if (isPermanent(err)) return new PermanentError(`${what}: ${describeError(err)}`, { cause: err });
  return new BrokerError('ERR_VAULT', `${what}: ${describeError(err)}`, { cause: err });
}

export function createVaultGateway(settings: VaultSettings, clock: Clock = Date.now): VaultGateway {
  let conn: VaultConnection = connect({ addr: settings.address, token: '', env: {}, mount: settings.mount, timeoutMs: settings.timeoutMs });
  let selfExpiresAt = Infinity;
  let selfRenewable = false;
  let selfIssuedAt = 0;

  const use = (token: string) => {
    conn = connect({ addr: settings.address, token, env: {}, mount: settings.mount, timeoutMs: settings.timeoutMs });
  };

  const adoptAuth = (auth: unknown, now: number): void => {
    const a = (auth ?? {}) as { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
    if (typeof a.client_token === 'string' && a.client_token !== '') use(a.client_token);
    const ttl = typeof a.lease_duration === 'number' ? a.lease_duration : 0;
    selfIssuedAt = now;
    selfExpiresAt = ttl > 0 ? now + ttl * 1000 : Infinity;
    selfRenewable = a.renewable === true;
  };

  const login = async (): Promise<void> => {
    const a = settings.auth;
    const now = clock();
    try {
      if (a.method === 'token') {
        use(readSecret(a.token, a.tokenFile, 'Vault token'));
        const res = await conn.read('auth/token/lookup-self');
        const d = res?.data ?? {};
        const ttl = typeof d.ttl === 'number' ? d.ttl : 0;
        selfIssuedAt = now;
        selfExpiresAt = ttl > 0 ? now + ttl * 1000 : Infinity;
        selfRenewable = d.renewable === true;
        return;
      }
      const body =
        a.method === 'approle'
          ? { role_id: a.roleId, secret_id: readSecret(a.secretId, a.secretIdFile, 'AppRole secret id') }
          : { role: a.role, jwt: readSecret(a.jwt, a.jwtFile, 'JWT') };
      const res = await conn.write(`auth/${a.path}/login`, body);
      adoptAuth(res?.auth, now);
    } catch (err) {
      throw wrap(err, `Vault login (${a.method})`);
    }
  };

  return {
    mount: settings.mount,
    login,
    async maintainSelf(now) {
      if (selfExpiresAt === Infinity) return now + 60_000;
      const life = selfExpiresAt - selfIssuedAt;
      const renewAt = selfIssuedAt + (life * 2) / 3;
      if (now < renewAt) return renewAt;
      try {
        if (!selfRenewable) throw new Error('not renewable');
        const res = await conn.write('auth/token/renew-self', {});
        const before = selfExpiresAt;
        adoptAuth(res?.auth, now);
        // Capped by its max ttl: log in again instead once renewal stops extending it.
        if (selfExpiresAt <= before + 1000 && settings.auth.method !== 'token') await login();
      } catch {
        if (settings.auth.method === 'token') {
          return now + 5_000;
        }
        await login();
      }
      return selfIssuedAt + ((selfExpiresAt - selfIssuedAt) * 2) / 3;
    },
    async issue(role, req) {
      try {
        return await issueCreds(conn, role, req);
      } catch (err) {
        throw wrap(err, `issue ${role}`);
      }
    },
    async renew(leaseId) {
      try {
        return await renewLease(conn, leaseId);
      } catch (err) {
        throw wrap(err, 'renew');
      }
    },
    async revoke(leaseId) {
      try {
        await revokeLease(conn, leaseId);
      } catch (err) {
        throw wrap(err, 'revoke');
      }
    },
    async lookup(leaseId) {
      try {
        return await lookupLease(conn, leaseId);
      } catch (err) {
        if (isPermanent(err)) return null;
        throw wrap(err, 'lookup');
      }
    },
    async list(role) {
      try {
        return await listLeases(conn, `${settings.mount}/creds/${role}/`);
      } catch (err) {
        throw wrap(err, `list ${role} leases`);
      }
    },
  };
}
