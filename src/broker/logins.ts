// What a lease can count on from the broker login that obtained it. Vault and
// OpenBao revoke a token's leases when that token dies, whatever the leases'
// own max_ttl, and no later login can save them. So a lease lives at most until
// its login's token ends, and the broker re-fetches it under the current login
// before then (a successor linked through replaced_by; the old jti serves it).
//
// The registry (vault_logins) knows every AppRole and JWT login and its token's
// expiry as last recorded: a lower bound, so re-fetching by it is early, never
// late. A login's end counts once no one will extend it:
//   - this process's current login: once final (max ttl reached, not renewable);
//   - this process's earlier logins, and those of a process that is gone (a
//     restart marks them final): their recorded expiry;
//   - another replica's login (PostgreSQL): once it is overdue for renewal (its
//     owner renews at two thirds of its life; at five sixths it is presumed dead).
// Until then the lease is renewed (with the current token, the same identity)
// and its answers are capped to that end, so its renewals come before it and
// the renewal that finds the end within one ttl fetches the successor. Leases
// whose next renewal would come too late are brought forward, spread over the
// time left (renewalDelayMs keeps the renewal reserve for an outage).

import type { Creds } from '../client/index.ts';
import { describeError } from './errors.ts';
import type { Logger } from './log.ts';
import { renewalDelayMs, type RenewalTiming } from './timing.ts';
import type { Clock, DueMove, LoginRow, Random, Store } from './types.ts';
import type { CurrentLogin, VaultGateway } from './vault.ts';

/** Another replica's login not renewed by this fraction of its life is presumed dead (it renews at two thirds). */
export const PRESUMED_DEAD_FRACTION = 5 / 6;

/** Ended logins are kept this long after their token's end (then pruned when no live lease names them). */
export const LOGIN_RETENTION_MS = 3_600_000;

/** Leases brought forward per login and pass (the next pass, a trigger interval later, goes on). */
const BRING_FORWARD_BATCH = 5_000;

/**
 * When the token of the login that obtained a lease ends, once no one will extend it (epoch ms);
 * null while it is kept alive, or unknown (a lease obtained before logins were recorded).
 */
export function loginDeadline(loginId: string | null, current: CurrentLogin, known: ReadonlyMap<string, LoginRow>, now: number): number | null {
  if (loginId === current.id) return current.final ? current.expiresAt : null;
  if (loginId === null) return null;
  const l = known.get(loginId);
  if (!l || l.expiresAt === null) return null;
  if (l.final) return l.expiresAt;
  const overdue = l.updatedAt + (l.expiresAt - l.updatedAt) * PRESUMED_DEAD_FRACTION;
  return now >= overdue ? l.expiresAt : null;
}

export interface Capped {
  creds: Creds;
  /** The login's end, not the lease's own max_ttl, is the answer's hard end now. */
  byLogin: boolean;
}

export interface LoginsDeps {
  store: Store;
  vault: VaultGateway;
  log: Logger;
  clock: Clock;
  random: Random;
  timing: RenewalTiming;
}

/** The registry's logins as this broker follows them (a copy refreshed every trigger pass). */
export class Logins {
  private known = new Map<string, LoginRow>();
  /** The current login when the copy was read: a new login (this process's) refreshes it at once. */
  private readFor: string | null | undefined = undefined;

  constructor(private readonly deps: LoginsDeps) {}

  async refresh(): Promise<void> {
    const current = this.deps.vault.current().id;
    this.known = new Map((await this.deps.store.logins()).map((l) => [l.id, l]));
    this.readFor = current;
  }

  /** When the token that obtained a lease ends, once no one will extend it; null while it is kept alive. */
  deadline(loginId: string | null, now: number): number | null {
    return loginDeadline(loginId, this.deps.vault.current(), this.known, now);
  }

  /** Whether the lease's login is known to have ended by `now` (Vault revoked its leases with it). */
  ended(loginId: string | null, now: number): boolean {
    const end = this.deadline(loginId, now);
    return end !== null && end <= now;
  }

  /**
   * A Vault answer for a lease, capped to the end of the token that obtained it
   * once that end counts: Vault revokes the lease then, whatever its max_ttl.
   */
  async cap(creds: Creds, loginId: string | null): Promise<Capped> {
    if (this.readFor !== this.deps.vault.current().id) {
      // A new login of this process: its predecessor is final now. Unreadable, the last copy serves (the next pass reads again).
      await this.refresh().catch((err: unknown) => this.deps.log.warn({ err: describeError(err) }, "reading the registry's logins failed"));
    }
    const now = this.deps.clock();
    const end = this.deadline(loginId, now);
    if (end === null) return { creds, byLogin: false };
    const hardEnd = Date.parse(creds.max_expires_at);
    if (Number.isFinite(hardEnd) && hardEnd <= end) return { creds, byLogin: false };
    const leftS = Math.max(0, (end - now) / 1000);
    return { creds: { ...creds, lease_duration: Math.min(creds.lease_duration, leftS), max_expires_at: new Date(end).toISOString() }, byLogin: true };
  }

  /**
   * Re-reads the registry's logins and brings forward the renewals of leases
   * whose login ends before they fall due: each to a point spread over the time
   * that renewal may take (renewalDelayMs of what is left). Returns how many moved.
   */
  async follow(): Promise<number> {
    await this.refresh();
    const { store, log, clock, random, timing } = this.deps;
    let moved = 0;
    for (const login of this.known.values()) {
      const now = clock();
      const end = this.deadline(login.id, now);
      if (end === null) continue;
      const delayMs = renewalDelayMs(Math.max(0, end - now), timing);
      const late = await store.leasesOfLoginDueAfter(login.id, now + delayMs, BRING_FORWARD_BATCH);
      if (late.length === 0) continue;
      const moves: DueMove[] = late.map((r) => ({ id: r.id, dueAt: now + Math.floor(random() * delayMs) }));
      const n = await store.bringForward(moves);
      moved += n;
      log.info(
        { login: login.id, ends_at: new Date(end).toISOString(), leases: n, within_ms: delayMs },
        "the token of an earlier broker login ends: its leases' renewals brought forward, to re-fetch them under the current login before then",
      );
    }
    return moved;
  }

  /**
   * At start: the logins of earlier processes are no longer renewed (every one but the
   * current in a SQLite file, which has one broker; this replica's with PostgreSQL).
   */
  async inherit(replica: string | null): Promise<number> {
    const now = this.deps.clock();
    const finalized = await this.deps.store.finalizeLogins(replica, this.deps.vault.current().id, now);
    await this.deps.store.pruneLogins(now - LOGIN_RETENTION_MS);
    await this.follow();
    return finalized;
  }
}
