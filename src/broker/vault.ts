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
import type { Logger } from './log.ts';
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
  /**
   * Renews for `incrementMs` from now (whole seconds, rounded up; 0: the role's ttl).
   * The answer's `max_expires_at` is the lease's hard end: no renewal goes past it.
   */
  renew(leaseId: string, incrementMs: number): Promise<Creds>;
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

/** Why the broker logged in: at start, its token reached max ttl, or renewing it failed. */
type LoginWhy = 'start' | 'max_ttl' | 'renewal_failed';

export function createVaultGateway(settings: VaultSettings, clock: Clock = Date.now, log?: Logger): VaultGateway {
  let conn: VaultConnection = connect({ addr: settings.address, token: '', env: {}, mount: settings.mount, timeoutMs: settings.timeoutMs });
  let selfExpiresAt = Infinity;
  let selfRenewable = false;
  let selfIssuedAt = 0;
  // Vault revokes a token's leases when the token dies (expiry at its max ttl
  // included), and a later login cannot save them. Each login is a generation;
  // a lease remembers the generation that issued it, and once that token's
  // expiry is final (renewal stopped extending it, or a newer login replaced
  // it) the lease's answers are capped to it, so the broker re-fetches the
  // lease under the current token before the old one dies. Until then the
  // lease is renewed and revoked with the token that issued it: the dev server
  // lets only that token (an ancestor, or a sudo policy) renew a lease.
  let generation = 0;
  let loginFailures = 0;
  /** The ttl the current token was granted at login: a renewal granting less has hit max ttl. */
  let loginTtlMs = 0;
  const finalExpiry = new Map<number, number>();
  const leaseGeneration = new Map<string, number>();
  /** Each generation's connection, kept while its token lives, for the leases it obtained. */
  const conns = new Map<number, VaultConnection>();

  const use = (token: string) => {
    conn = connect({ addr: settings.address, token, env: {}, mount: settings.mount, timeoutMs: settings.timeoutMs });
    conns.set(generation, conn);
    // Tokens already dead can serve nothing.
    for (const [gen, end] of finalExpiry) if (gen !== generation && end <= clock()) conns.delete(gen);
  };

  /** The connection of the token that issued the lease, while it lives; else the current one. */
  const connOf = (leaseId: string): VaultConnection => {
    const gen = leaseGeneration.get(leaseId);
    if (gen === undefined || gen === generation) return conn;
    const end = finalExpiry.get(gen);
    const issuer = conns.get(gen);
    return issuer && (end === undefined || end > clock()) ? issuer : conn;
  };

  /** `renewal`: the answer of renew-self, where a zero ttl means "at its max ttl now", not "never expires". */
  const adoptAuth = (auth: unknown, now: number, renewal = false): void => {
    const a = (auth ?? {}) as { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
    if (typeof a.client_token === 'string' && a.client_token !== '') use(a.client_token);
    const ttl = typeof a.lease_duration === 'number' ? a.lease_duration : 0;
    selfIssuedAt = now;
    selfExpiresAt = ttl > 0 ? now + ttl * 1000 : renewal ? now : Infinity;
    selfRenewable = a.renewable === true;
  };

  const retire = (): void => {
    if (selfExpiresAt !== Infinity) finalExpiry.set(generation, selfExpiresAt);
  };

  const login = async (why: LoginWhy = 'start'): Promise<void> => {
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
      } else {
        const body =
          a.method === 'approle'
            ? { role_id: a.roleId, secret_id: readSecret(a.secretId, a.secretIdFile, 'AppRole secret id') }
            : { role: a.role, jwt: readSecret(a.jwt, a.jwtFile, 'JWT') };
        const res = await conn.write(`auth/${a.path}/login`, body);
        if (generation > 0) retire();
        generation++;
        adoptAuth(res?.auth, now);
        loginTtlMs = selfExpiresAt === Infinity ? 0 : selfExpiresAt - now;
      }
    } catch (err) {
      throw wrap(err, `Vault login (${a.method})`);
    }
    if (!selfRenewable && selfExpiresAt !== Infinity) finalExpiry.set(generation, selfExpiresAt);
    const ttlS = selfExpiresAt === Infinity ? 0 : Math.round((selfExpiresAt - now) / 1000);
    log?.info({ method: a.method, why, ttl_s: ttlS, renewable: selfRenewable }, 'logged in to Vault');
  };

  /**
   * Caps a lease's granted duration, and its hard end, to the death of the token
   * that issued it, once that is final: Vault revokes the lease then, whatever its max_ttl.
   */
  const capped = (leaseId: string, creds: Creds): Creds => {
    const gen = leaseGeneration.get(leaseId);
    const end = gen === undefined ? undefined : finalExpiry.get(gen);
    if (end === undefined) return creds;
    const leftS = Math.max(0, (end - clock()) / 1000);
    const hardEnd = Date.parse(creds.max_expires_at);
    return {
      ...creds,
      lease_duration: Math.min(creds.lease_duration, leftS),
      max_expires_at: Number.isFinite(hardEnd) && hardEnd <= end ? creds.max_expires_at : new Date(end).toISOString(),
    };
  };

  return {
    mount: settings.mount,
    login: () => login('start'),
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
        adoptAuth(res?.auth, now, true);
        log?.info({ ttl_s: Math.round((selfExpiresAt - now) / 1000) }, 'renewed own Vault token');
        // Capped by its max ttl (granted less than at login, or hardly extended): its end is
        // final, so log in again now, while the leases it issued can still be re-fetched.
        if (selfExpiresAt - now < loginTtlMs - 1000 || selfExpiresAt <= before + 1000) {
          finalExpiry.set(generation, selfExpiresAt);
          why = 'max_ttl';
        }
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
      try {
        const creds = await issueCreds(conn, role, req);
        leaseGeneration.set(creds.lease_id, generation);
        return capped(creds.lease_id, creds);
      } catch (err) {
        throw wrap(err, `issue ${role}`);
      }
    },
    async renew(leaseId, incrementMs) {
      try {
        const options = incrementMs > 0 ? { increment: Math.ceil(incrementMs / 1000) } : {};
        return capped(leaseId, await renewLease(connOf(leaseId), leaseId, options));
      } catch (err) {
        if (isPermanent(err)) leaseGeneration.delete(leaseId);
        throw wrap(err, 'renew');
      }
    },
    async revoke(leaseId) {
      try {
        await revokeLease(connOf(leaseId), leaseId);
        leaseGeneration.delete(leaseId);
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
