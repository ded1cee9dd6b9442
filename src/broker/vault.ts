// The broker's side of Vault, through the client library (src/client): its own
// login (token, AppRole or JWT) kept renewed, and the credential calls.

import { randomUUID } from 'node:crypto';
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
import type { Logger } from './log.ts';
import type { Clock, LoginRow } from './types.ts';

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

/** The broker's login in use now. */
export interface CurrentLogin {
  /** Its registry id (vault_logins); null with a static token (`auth "token"`), which the registry does not track. */
  id: string | null;
  /** When its token expires, as far as known (a lower bound); null: never. */
  expiresAt: number | null;
  /** Whether that expiry is final: renewal stopped extending it (max ttl), or the token cannot be renewed. */
  final: boolean;
}

/** Where the gateway records its AppRole and JWT logins (the store): times and flags, never a token or a secret id. */
export interface LoginRegistry {
  recordLogin(login: LoginRow): Promise<void>;
  updateLogin(id: string, expiresAt: number | null, final: boolean, at: number): Promise<void>;
}

/** A lease Vault issued, and the login whose token obtained it (null with a static token). */
export interface IssuedCreds {
  creds: Creds;
  loginId: string | null;
}

/** The Vault operations the broker needs; tests may stand in for it. */
export interface VaultGateway {
  readonly mount: string;
  login(): Promise<void>;
  current(): CurrentLogin;
  /** Renews (or re-logs in) the broker's own token when due; returns when to call again. */
  maintainSelf(now: number): Promise<number>;
  issue(role: string, req: CredsRequest): Promise<IssuedCreds>;
  /**
   * Renews for `incrementMs` from now (whole seconds, rounded up; 0: the role's ttl), with the token of
   * `loginId` while it lives (else the current one: the same identity). The answer's `max_expires_at` is
   * the lease's hard end: no renewal goes past it. It is not capped to the death of the login's token (the broker does that).
   */
  renew(leaseId: string, incrementMs: number, loginId: string | null): Promise<Creds>;
  revoke(leaseId: string, loginId?: string | null): Promise<void>;
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

/** Why the broker logged in: at start, its token reached max ttl, or renewing it failed. */
type LoginWhy = 'start' | 'max_ttl' | 'renewal_failed';

/** The registry that keeps the logins, and this replica's name on them. */
export interface LoginRecording {
  registry: LoginRegistry;
  replica: string;
}

const finite = (ms: number): number | null => (Number.isFinite(ms) ? ms : null);

export function createVaultGateway(settings: VaultSettings, clock: Clock = Date.now, log?: Logger, recording?: LoginRecording): VaultGateway {
  let conn: VaultConnection = connect({ addr: settings.address, token: '', env: {}, mount: settings.mount, timeoutMs: settings.timeoutMs });
  // Vault revokes a token's leases when the token dies (expiry at its max ttl
  // included), and a later login cannot save them. Each AppRole or JWT login
  // is recorded in the registry before its token obtains anything, and each
  // lease row names the login that obtained it; the broker (logins.ts) re-fetches
  // a lease under the current login before its login's token ends, also after a
  // restart. Until then the lease is renewed and revoked with the token that
  // issued it while this process holds that token, else with the current one
  // (the same identity: Vault and OpenBao let it renew; the dev server lets the
  // lease's owner, a token of the same entity, or a sudo policy renew).
  let loginId: string | null = null;
  let selfExpiresAt = Infinity;
  let selfRenewable = false;
  let selfIssuedAt = 0;
  let selfFinal = false;
  let loginFailures = 0;
  /** The ttl the current token was granted at login: a renewal granting less has hit max ttl. */
  let loginTtlMs = 0;
  /** This process's earlier logins whose tokens still live: their connections, for the leases they obtained. */
  const earlier = new Map<string, { conn: VaultConnection; endsAt: number }>();

  const connectWith = (token: string): VaultConnection =>
    connect({ addr: settings.address, token, env: {}, mount: settings.mount, timeoutMs: settings.timeoutMs });

  /** The connection of the token that issued the lease, while it lives; else the current one. */
  const connOf = (issuedBy: string | null | undefined): VaultConnection => {
    if (issuedBy === null || issuedBy === undefined || issuedBy === loginId) return conn;
    const e = earlier.get(issuedBy);
    return e && e.endsAt > clock() ? e.conn : conn;
  };

  /** `renewal`: the answer of renew-self, where a zero ttl means "at its max ttl now", not "never expires". */
  const expiryOf = (auth: { lease_duration?: unknown }, now: number, renewal: boolean): number => {
    const ttl = typeof auth.lease_duration === 'number' ? auth.lease_duration : 0;
    return ttl > 0 ? now + ttl * 1000 : renewal ? now : Infinity;
  };

  /** Records the facts of the current login (best effort: the registry keeps the last expiry it got, a lower bound). */
  const recordExpiry = async (now: number): Promise<void> => {
    if (!recording || loginId === null) return;
    try {
      await recording.registry.updateLogin(loginId, finite(selfExpiresAt), selfFinal, now);
    } catch (err) {
      log?.warn({ login: loginId, err: describeError(err) }, 'recording the Vault token expiry in the registry failed');
    }
  };

  const loginWithToken = async (a: Extract<VaultAuth, { method: 'token' }>, now: number): Promise<void> => {
    conn = connectWith(readSecret(a.token, a.tokenFile, 'Vault token'));
    const res = await conn.read('auth/token/lookup-self');
    const d = res?.data ?? {};
    const ttl = typeof d.ttl === 'number' ? d.ttl : 0;
    selfIssuedAt = now;
    selfExpiresAt = ttl > 0 ? now + ttl * 1000 : Infinity;
    selfRenewable = d.renewable === true;
    selfFinal = !selfRenewable && selfExpiresAt !== Infinity;
  };

  const login = async (why: LoginWhy = 'start'): Promise<void> => {
    const a = settings.auth;
    const now = clock();
    if (a.method === 'token') {
      try {
        await loginWithToken(a, now);
      } catch (err) {
        throw wrap(err, 'Vault login (token)');
      }
    } else {
      let auth: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
      try {
        const body =
          a.method === 'approle'
            ? { role_id: a.roleId, secret_id: readSecret(a.secretId, a.secretIdFile, 'AppRole secret id') }
            : { role: a.role, jwt: readSecret(a.jwt, a.jwtFile, 'JWT') };
        const res = await conn.write(`auth/${a.path}/login`, body);
        auth = (res?.auth ?? {}) as typeof auth;
        if (typeof auth.client_token !== 'string' || auth.client_token === '') throw new Error('the login answered no token');
      } catch (err) {
        throw wrap(err, `Vault login (${a.method})`);
      }
      const expiresAt = expiryOf(auth, now, false);
      const renewable = auth.renewable === true;
      const id = randomUUID();
      const final = !renewable && expiresAt !== Infinity;
      try {
        // Before its token obtains anything: every lease's login is in the registry.
        await recording?.registry.recordLogin({
          id, replica: recording.replica, method: a.method, loggedInAt: now, expiresAt: finite(expiresAt), renewable, final, updatedAt: now,
        });
        // The previous token is no longer renewed: its expiry is final, and its leases are re-fetched before it.
        if (loginId !== null) await recording?.registry.updateLogin(loginId, finite(selfExpiresAt), true, now);
      } catch (err) {
        throw new BrokerError('ERR_VAULT', `Vault login (${a.method}): recording the login in the registry failed: ${describeError(err)}`, { cause: err });
      }
      if (loginId !== null && selfExpiresAt > now) earlier.set(loginId, { conn, endsAt: selfExpiresAt });
      for (const [gen, e] of earlier) if (e.endsAt <= now) earlier.delete(gen);
      conn = connectWith(auth.client_token as string);
      loginId = id;
      selfIssuedAt = now;
      selfExpiresAt = expiresAt;
      selfRenewable = renewable;
      selfFinal = final;
      loginTtlMs = selfExpiresAt === Infinity ? 0 : selfExpiresAt - now;
    }
    const ttlS = selfExpiresAt === Infinity ? 0 : Math.round((selfExpiresAt - now) / 1000);
    log?.info({ method: a.method, why, ttl_s: ttlS, renewable: selfRenewable, ...(loginId ? { login: loginId } : {}) }, 'logged in to Vault');
  };

  return {
    mount: settings.mount,
    login: () => login('start'),
    current: () => ({ id: loginId, expiresAt: finite(selfExpiresAt), final: selfFinal }),
    async maintainSelf(now) {
      // Nothing to renew: a token that never expires, or a given token that cannot be renewed.
      if (selfExpiresAt === Infinity || (!selfRenewable && settings.auth.method === 'token')) return now + 60_000;
      const life = selfExpiresAt - selfIssuedAt;
      const renewAt = selfIssuedAt + (life * 2) / 3;
      if (now < renewAt) return renewAt;
      let why: LoginWhy | null = null;
      try {
        if (!selfRenewable) throw new Error('not renewable');
        const res = await conn.write('auth/token/renew-self', {});
        const before = selfExpiresAt;
        selfExpiresAt = expiryOf((res?.auth ?? {}) as { lease_duration?: unknown }, now, true);
        selfIssuedAt = now;
        log?.info({ ttl_s: Math.round((selfExpiresAt - now) / 1000) }, 'renewed own Vault token');
        // Capped by its max ttl (granted less than at login, or hardly extended): its end is
        // final, so log in again now, while the leases it issued can still be re-fetched.
        if (selfExpiresAt - now < loginTtlMs - 1000 || selfExpiresAt <= before + 1000) {
          selfFinal = true;
          why = 'max_ttl';
        }
        await recordExpiry(now);
      } catch (err) {
        if (settings.auth.method === 'token') {
          log?.warn({ err: describeError(err) }, 'renewing own Vault token failed');
          return now + 5_000;
        }
        why = 'renewal_failed';
      }
      if (why !== null && settings.auth.method !== 'token') {
        try {
          await login(why);
          loginFailures = 0;
        } catch (err) {
          // The token is dying or dead: try again soon (1s, doubling to 30s), not at the loop's leisure.
          loginFailures++;
          const retryMs = Math.min(30_000, 1_000 * 2 ** (loginFailures - 1));
          log?.warn({ method: settings.auth.method, why, attempts: loginFailures, retry_in_ms: retryMs, err: describeError(err) }, 'Vault login failed; retrying');
          return now + retryMs;
        }
      }
      return selfIssuedAt + ((selfExpiresAt - selfIssuedAt) * 2) / 3;
    },
    async issue(role, req) {
      // The login whose token asks: a re-login during the call does not change who obtained the lease.
      const by = loginId;
      const c = conn;
      try {
        return { creds: await issueCreds(c, role, req), loginId: by };
      } catch (err) {
        throw wrap(err, `issue ${role}`);
      }
    },
    async renew(leaseId, incrementMs, issuedBy) {
      try {
        const options = incrementMs > 0 ? { increment: Math.ceil(incrementMs / 1000) } : {};
        return await renewLease(connOf(issuedBy), leaseId, options);
      } catch (err) {
        throw wrap(err, 'renew');
      }
    },
    async revoke(leaseId, issuedBy) {
      try {
        await revokeLease(connOf(issuedBy), leaseId);
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
