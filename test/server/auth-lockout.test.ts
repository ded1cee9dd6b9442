// AppRole user lockout on the auth table and the AppRole backend, with a
// frozen clock: Vault's defaults, the counter reset, a success clearing the
// count, tuning (and its validation), sys/locked-users data and unlock, an
// unknown role ID locking exactly like a known one, concurrent guesses, and
// the memory bound. Then the login lockout through the HTTP API.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/sdk/errors.ts';
import { AuthTable, type AuthMount } from '../../src/server/auth/index.ts';
import {
  LoginLockout,
  lockedUsers,
  lockoutPolicy,
  unlockUser,
  userLockoutData,
} from '../../src/server/auth/lockout.ts';
import { authMountInfo } from '../../src/server/auth/table.ts';
import { MountError } from '../../src/server/mounts.ts';
import { openMemoryStorage } from '../../src/server/storage/index.ts';
import type { PhysicalStorage } from '../../src/server/types.ts';
import { backendRequest, startHarness, type Harness } from './auth-helpers.ts';

const MINUTE = 60_000;
const INVALID = { status: 400, message: 'invalid role or secret ID' };
const LOCKED = { status: 403, message: 'permission denied' };

let now: number;
let storage: PhysicalStorage;
let table: AuthTable;
let mount: AuthMount;

/** What a login (or any call) answered: ok, or the error's status and message. */
type Outcome = { status: 200 } | { status: number; message: string };

async function call(
  m: AuthMount,
  path: string,
  data: Record<string, unknown> = {},
  operation: 'create' | 'update' | 'read' = 'update',
): Promise<Record<string, unknown> | null> {
  const response = await m.backend.handleRequest(backendRequest(m, operation, path, data));
  return response?.data ?? null;
}

async function login(roleId: string, secretId?: string, m: AuthMount = mount): Promise<Outcome> {
  try {
    const data = { role_id: roleId, ...(secretId === undefined ? {} : { secret_id: secretId }) };
    const response = await m.backend.handleRequest(backendRequest(m, 'update', 'login', data));
    expect(response?.login).toBeDefined();
    return { status: 200 };
  } catch (err) {
    if (!(err instanceof EngineError)) throw err;
    return { status: err.status, message: err.message };
  }
}

/** A role with one secret ID: its role ID and the secret ID. */
async function role(name: string, m: AuthMount = mount, body: Record<string, unknown> = {}): Promise<{ roleId: string; secretId: string }> {
  await call(m, `role/${name}`, { token_policies: ['default'], ...body }, 'create');
  const roleId = (await call(m, `role/${name}/role-id`, {}, 'read'))!.role_id as string;
  const secretId = (await call(m, `role/${name}/secret-id`))!.secret_id as string;
  return { roleId, secretId };
}

async function fail(roleId: string, times: number, m: AuthMount = mount): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (let i = 0; i < times; i += 1) out.push(await login(roleId, `wrong-${i}`, m));
  return out;
}

beforeEach(async () => {
  now = Date.UTC(2026, 10, 23, 12, 0, 0);
  storage = openMemoryStorage();
  table = new AuthTable({ storage, clock: () => now });
  mount = await table.mount({ path: 'approle', type: 'approle' });
});

describe('lockout with Vault\'s defaults (5 failures, 15m, 15m)', () => {
  it('locks a role ID after 5 failed logins, even against the right secret ID, for 15 minutes', async () => {
    const { roleId, secretId } = await role('app');
    expect(await fail(roleId, 5)).toEqual(Array(5).fill(INVALID));
    expect(await login(roleId, secretId)).toEqual(LOCKED);
    expect(await login(roleId, 'wrong-again')).toEqual(LOCKED);
    now += 15 * MINUTE - 1000;
    expect(await login(roleId, secretId)).toEqual(LOCKED);
    now += 1000;
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
  });

  it('lasts 15 minutes from the failure that locked, not from the refused attempts after it', async () => {
    const { roleId, secretId } = await role('app');
    await fail(roleId, 5);
    for (let i = 0; i < 14; i += 1) {
      now += MINUTE;
      expect(await login(roleId, 'still-guessing')).toEqual(LOCKED);
    }
    now += MINUTE;
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
  });

  it('starts the count again after 15 minutes without a failure', async () => {
    const { roleId, secretId } = await role('app');
    await fail(roleId, 4);
    now += 15 * MINUTE + 1000;
    expect(await fail(roleId, 4)).toEqual(Array(4).fill(INVALID));
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
  });

  it('starts the count again after a successful login', async () => {
    const { roleId, secretId } = await role('app');
    await fail(roleId, 4);
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
    expect(await fail(roleId, 4)).toEqual(Array(4).fill(INVALID));
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
  });

  it('locks one role ID on one mount: other role IDs and mounts log in', async () => {
    const a = await role('a');
    const b = await role('b');
    const other = await table.mount({ path: 'approle2', type: 'approle' });
    const c = await role('c', other, { role_id: a.roleId });
    await fail(a.roleId, 5);
    expect(await login(a.roleId, a.secretId)).toEqual(LOCKED);
    expect(await login(b.roleId, b.secretId)).toEqual({ status: 200 });
    // The same role ID on another mount is another alias.
    expect(await login(c.roleId, c.secretId, other)).toEqual({ status: 200 });
  });

  it('counts the role ID as login reads it: surrounding spaces do not make a new count', async () => {
    const { roleId, secretId } = await role('app');
    await fail(roleId, 3);
    await fail(` ${roleId}`, 1);
    await fail(`${roleId}\n`, 1);
    expect(await login(roleId, secretId)).toEqual(LOCKED);
  });

  it('does not count missing fields, which say nothing about a secret', async () => {
    const { roleId, secretId } = await role('app');
    for (let i = 0; i < 10; i += 1) {
      expect(await login(roleId)).toEqual({ status: 400, message: 'missing secret_id' });
    }
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
  });

  it('counts concurrent guesses one by one: a burst gets exactly the threshold of tries', async () => {
    const { roleId, secretId } = await role('app');
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => login(roleId, `guess-${i}`)));
    expect(burst.filter((o) => o.status === 400)).toHaveLength(5);
    expect(burst.filter((o) => o.status === 403)).toHaveLength(15);
    expect(await login(roleId, secretId)).toEqual(LOCKED);
  });

  it('lets parallel logins with the right secret IDs all through', async () => {
    const { roleId } = await role('fleet');
    const secrets = await Promise.all(Array.from({ length: 12 }, async () => (await call(mount, 'role/fleet/secret-id'))!.secret_id as string));
    const results = await Promise.all(secrets.map((s) => login(roleId, s)));
    expect(results).toEqual(Array(12).fill({ status: 200 }));
  });
});

describe('an unknown role ID', () => {
  it('answers exactly as a known role ID with wrong secret IDs, lockout included', async () => {
    const { roleId } = await role('app');
    const unknown = 'b2c0a1e4-0000-4000-8000-000000000000';
    const known = [...(await fail(roleId, 7)), await login(roleId)];
    const guessed = [...(await fail(unknown, 7)), await login(unknown)];
    expect(guessed).toEqual(known);
    expect(known).toEqual([...Array(5).fill(INVALID), LOCKED, LOCKED, LOCKED]);
  });

  it('without a secret ID says "missing secret_id", as a role that needs one does', async () => {
    expect(await login('no-such-role-id')).toEqual({ status: 400, message: 'missing secret_id' });
  });

  it('is listed and unlocked like any other (Vault lists the alias, here the role ID)', async () => {
    await fail('no-such-role-id', 5);
    expect(lockedUsers(table, mount.entry.accessor)).toMatchObject({ total: 1 });
    unlockUser(table, mount.entry.accessor, 'no-such-role-id');
    expect(await login('no-such-role-id', 'x')).toEqual(INVALID);
  });
});

describe('tuning user_lockout_config', () => {
  it('takes a threshold, duration and counter reset in Vault\'s string forms, and applies them at once', async () => {
    const { roleId, secretId } = await role('app');
    await table.tune('approle/', {
      user_lockout_config: { lockout_threshold: '2', lockout_duration: '1m', lockout_counter_reset_duration: '30s' },
    });
    expect(table.get('approle/')!.entry.user_lockout_config).toEqual({
      lockout_threshold: 2,
      lockout_duration: 60,
      lockout_counter_reset: 30,
      disable_lockout: false,
    });
    await fail(roleId, 1);
    now += 31_000;
    // The counter reset: one failure 31s ago no longer counts.
    await fail(roleId, 1);
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
    await fail(roleId, 2);
    expect(await login(roleId, secretId)).toEqual(LOCKED);
    now += MINUTE;
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
  });

  it('accepts numbers, the docs\' lockout_counter_reset, and disable_lockout as well as lockout_disable', async () => {
    await table.tune('approle/', { user_lockout_config: { lockout_threshold: 3, lockout_duration: 120, lockout_counter_reset: '2m' } });
    expect(table.get('approle/')!.entry.user_lockout_config).toMatchObject({ lockout_threshold: 3, lockout_duration: 120, lockout_counter_reset: 120 });
    await table.tune('approle/', { user_lockout_config: { disable_lockout: 'true' } });
    expect(table.get('approle/')!.entry.user_lockout_config).toMatchObject({ lockout_threshold: 3, disable_lockout: true });
    await table.tune('approle/', { user_lockout_config: { lockout_disable: false } });
    expect(table.get('approle/')!.entry.user_lockout_config!.disable_lockout).toBe(false);
  });

  it('lockout_disable turns it off for the mount: failures are not even counted', async () => {
    const { roleId, secretId } = await role('app');
    await table.tune('approle/', { user_lockout_config: { lockout_disable: true } });
    expect(await fail(roleId, 10)).toEqual(Array(10).fill(INVALID));
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
    expect(table.lockout.size).toBe(0);
  });

  it('"" leaves a field alone; "0" and "system" put it back to the default, as the Terraform provider\'s reset does', async () => {
    await table.tune('approle/', { user_lockout_config: { lockout_threshold: '2', lockout_duration: '1m' } });
    await table.tune('approle/', { user_lockout_config: { lockout_threshold: '', lockout_duration: '' } });
    expect(table.get('approle/')!.entry.user_lockout_config).toMatchObject({ lockout_threshold: 2, lockout_duration: 60 });
    await table.tune('approle/', {
      user_lockout_config: { lockout_threshold: '0', lockout_duration: 'system', lockout_counter_reset_duration: '0', lockout_disable: false },
    });
    expect(lockoutPolicy(table.get('approle/')!.entry.user_lockout_config)).toEqual({
      disabled: false,
      threshold: 5,
      durationMs: 15 * MINUTE,
      counterResetMs: 15 * MINUTE,
    });
  });

  it('is shown by sys/auth (config.user_lockout_config) and tune reads (user_lockout_*) once tuned', async () => {
    expect(authMountInfo(table.get('approle/')!.entry).config).not.toHaveProperty('user_lockout_config');
    expect(userLockoutData(table.get('approle/')!.entry.user_lockout_config)).toEqual({});
    await table.tune('approle/', { user_lockout_config: { lockout_threshold: '7', lockout_duration: '10m' } });
    const shown = {
      user_lockout_counter_reset_duration: 0,
      user_lockout_threshold: 7,
      user_lockout_duration: 600,
      user_lockout_disable: false,
    };
    expect(authMountInfo(table.get('approle/')!.entry).config).toMatchObject({ user_lockout_config: shown });
    expect(userLockoutData(table.get('approle/')!.entry.user_lockout_config)).toEqual(shown);
  });

  it('is kept across a restart; the failure counts are not (they live in memory)', async () => {
    const { roleId, secretId } = await role('app');
    await table.tune('approle/', { user_lockout_config: { lockout_threshold: '2' } });
    await fail(roleId, 2);
    expect(await login(roleId, secretId)).toEqual(LOCKED);
    const restarted = new AuthTable({ storage, clock: () => now });
    await restarted.load();
    const again = restarted.get('approle/')!;
    expect(again.entry.user_lockout_config).toMatchObject({ lockout_threshold: 2 });
    expect(await login(roleId, secretId, again)).toEqual({ status: 200 });
    await fail(roleId, 2, again);
    expect(await login(roleId, secretId, again)).toEqual(LOCKED);
  });

  it.each([
    [{ lockout_threshold: 'many' }, 'invalid user_lockout_config.lockout_threshold: "many" is not a whole number, 0 or more'],
    [{ lockout_threshold: -1 }, 'invalid user_lockout_config.lockout_threshold: -1 is not a whole number, 0 or more'],
    [{ lockout_duration: 'soon' }, /^invalid user_lockout_config\.lockout_duration: "soon" is not a duration/],
    [{ lockout_counter_reset_duration: -5 }, /^invalid user_lockout_config\.lockout_counter_reset_duration: /],
    [{ lockout_disable: 'maybe' }, 'invalid user_lockout_config.lockout_disable: "maybe" is not true or false'],
    [{ lockout_thresold: '3' }, /^invalid user_lockout_config: unknown field "lockout_thresold"; known: lockout_threshold, /],
    [{ lockout_disable: true, disable_lockout: false }, 'invalid user_lockout_config: lockout_disable and disable_lockout set the same thing to different values'],
    ['5', 'invalid user_lockout_config: expected an object'],
    [['lockout_threshold'], 'invalid user_lockout_config: expected an object'],
  ])('refuses %j with a 400 naming it, and changes nothing', async (input, message) => {
    const before = structuredClone(table.get('approle/')!.entry);
    const err = await table.tune('approle/', { description: 'changed', user_lockout_config: input }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MountError);
    expect((err as MountError).status).toBe(400);
    expect((err as MountError).message).toMatch(message);
    expect(table.get('approle/')!.entry).toEqual(before);
  });

  it('refuses it on a JWT mount, as Vault does for methods without lockout; {} is no change anywhere', async () => {
    await table.mount({ path: 'jwt', type: 'jwt' });
    await expect(table.tune('jwt/', { user_lockout_config: { lockout_threshold: '3' } })).rejects.toThrow(
      'tuning of user lockout configuration for auth type "jwt" not allowed',
    );
    await table.tune('jwt/', { user_lockout_config: {} });
    expect(table.get('jwt/')!.entry.user_lockout_config).toBeUndefined();
  });
});

describe('sys/locked-users', () => {
  it('lists the locked role IDs by mount accessor, in Vault\'s shape', async () => {
    const a = await role('a');
    const b = await role('b');
    const other = await table.mount({ path: 'approle2', type: 'approle' });
    const c = await role('c', other);
    expect(lockedUsers(table)).toEqual({
      by_namespace: [{ namespace_id: 'root', namespace_path: '', counts: 0, mount_accessors: [] }],
      total: 0,
    });
    await fail(a.roleId, 5);
    await fail(b.roleId, 5);
    await fail(c.roleId, 5, other);
    await fail('not-locked-yet', 4);
    expect(lockedUsers(table)).toEqual({
      by_namespace: [
        {
          namespace_id: 'root',
          namespace_path: '',
          counts: 3,
          mount_accessors: [
            { mount_accessor: mount.entry.accessor, counts: 2, alias_identifiers: [a.roleId, b.roleId].sort() },
            { mount_accessor: other.entry.accessor, counts: 1, alias_identifiers: [c.roleId] },
          ],
        },
      ],
      total: 3,
    });
    expect(lockedUsers(table, other.entry.accessor)).toEqual({
      by_namespace: [
        {
          namespace_id: 'root',
          namespace_path: '',
          counts: 1,
          mount_accessors: [{ mount_accessor: other.entry.accessor, counts: 1, alias_identifiers: [c.roleId] }],
        },
      ],
      total: 1,
    });
    // An accessor with nothing locked (or no mount) answers zero, as Vault does.
    expect(lockedUsers(table, 'auth_approle_00000000')).toMatchObject({
      by_namespace: [{ counts: 0, mount_accessors: [{ mount_accessor: 'auth_approle_00000000', counts: 0, alias_identifiers: [] }] }],
      total: 0,
    });
    // Once the lockout has passed, nobody is listed.
    now += 15 * MINUTE;
    expect(lockedUsers(table)).toMatchObject({ total: 0 });
  });

  it('unlocks a role ID at once (the right secret ID logs in), idempotently', async () => {
    const { roleId, secretId } = await role('app');
    await fail(roleId, 5);
    unlockUser(table, mount.entry.accessor, roleId);
    unlockUser(table, mount.entry.accessor, roleId);
    unlockUser(table, 'auth_approle_00000000', roleId);
    expect(lockedUsers(table)).toMatchObject({ total: 0 });
    expect(await login(roleId, secretId)).toEqual({ status: 200 });
  });

  it('refuses an unlock without its parts (400)', () => {
    expect(() => unlockUser(table, '', 'x')).toThrow(new MountError('missing mount_accessor'));
    expect(() => unlockUser(table, mount.entry.accessor, ' ')).toThrow(new MountError('missing alias_identifier'));
  });

  it('forgets a mount\'s counts when the mount is disabled', async () => {
    const { roleId } = await role('app');
    await fail(roleId, 5);
    expect(table.lockout.size).toBe(1);
    await table.unmount('approle', async () => undefined);
    expect(table.lockout.size).toBe(0);
  });
});

describe('LoginLockout', () => {
  const policy = lockoutPolicy(undefined);

  it('remembers at most maxEntries aliases: stale ones go first, then the oldest', () => {
    let t = 0;
    const lockout = new LoginLockout({ clock: () => t, maxEntries: 3 });
    lockout.recordFailure('acc', 'stale', policy);
    t = 20 * MINUTE;
    for (let i = 0; i < 5; i += 1) lockout.recordFailure('acc', 'locked', policy);
    lockout.recordFailure('acc', 'one', policy);
    lockout.recordFailure('acc', 'two', policy);
    expect(lockout.size).toBe(3);
    // "stale" went (past its lockout and counter reset); "locked" is still locked.
    expect(lockout.isLocked('acc', 'locked', policy)).toBe(true);
    lockout.recordFailure('acc', 'three', policy);
    expect(lockout.size).toBe(3);
    // Nothing stale left: the oldest went, even a locked one (the bound wins over the lock).
    expect(lockout.isLocked('acc', 'locked', policy)).toBe(false);
  });

  it('keeps a megabyte-long role ID as a hash, and lists it cut short', () => {
    const lockout = new LoginLockout({ clock: () => 0 });
    const long = 'r'.repeat(1024 * 1024);
    for (let i = 0; i < 5; i += 1) lockout.recordFailure('acc', long, policy);
    expect(lockout.isLocked('acc', long, policy)).toBe(true);
    const [shown] = lockout.lockedAliases('acc', policy);
    expect(shown).toHaveLength(259);
    expect(shown.endsWith('...')).toBe(true);
  });
});

describe('through the HTTP API', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    expect((await h.call('POST', 'sys/auth/approle', { type: 'approle' })).status).toBe(204);
  });

  afterAll(async () => {
    await h?.close();
  });

  it('answers 403 "permission denied" to a locked role ID, right secret ID or not, and logs no secret', async () => {
    await h.call('POST', 'auth/approle/role/app', { token_policies: ['default'] });
    const roleId = (await h.call('GET', 'auth/approle/role/app/role-id')).body.data!.role_id as string;
    const secretId = (await h.call('POST', 'auth/approle/role/app/secret-id')).body.data!.secret_id as string;
    const login = (secret: string) => h.call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secret }, null);
    for (let i = 0; i < 5; i += 1) {
      expect(await login(`${secretId}-wrong`)).toMatchObject({ status: 400, body: { errors: ['invalid role or secret ID'] } });
    }
    expect(await login(secretId)).toMatchObject({ status: 403, body: { errors: ['permission denied'] } });
    expect(await h.call('POST', 'auth/approle/login', { role_id: 'unknown', secret_id: 'x' }, null)).toMatchObject({ status: 400 });
    h.advance(15 * MINUTE);
    expect((await login(secretId)).status).toBe(200);
    expect(h.logs.join('\n')).not.toContain(secretId);
  });

  it('tunes user_lockout_config through sys/auth/<path>/tune and shows it back', async () => {
    await h.call('POST', 'auth/approle/role/tuned', { token_policies: ['default'] });
    const roleId = (await h.call('GET', 'auth/approle/role/tuned/role-id')).body.data!.role_id as string;
    const secretId = (await h.call('POST', 'auth/approle/role/tuned/secret-id')).body.data!.secret_id as string;
    const tuned = await h.call('POST', 'sys/auth/approle/tune', { user_lockout_config: { lockout_threshold: '2', lockout_duration: '1m' } });
    expect(tuned.status).toBe(204);
    expect((await h.call('GET', 'sys/auth/approle/tune')).body.data).toMatchObject({
      user_lockout_threshold: 2,
      user_lockout_duration: 60,
      user_lockout_counter_reset_duration: 0,
      user_lockout_disable: false,
    });
    const login = (secret: string) => h.call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secret }, null);
    for (let i = 0; i < 2; i += 1) expect((await login('wrong')).status).toBe(400);
    expect(await login(secretId)).toMatchObject({ status: 403, body: { errors: ['permission denied'] } });
    h.advance(MINUTE);
    expect((await login(secretId)).status).toBe(200);
  });

  it('refuses a misspelt lockout field, and lockout on a method that has none', async () => {
    const bad = await h.call('POST', 'sys/auth/approle/tune', { user_lockout_config: { lockout_thresold: '2' } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors![0]).toMatch(/^invalid user_lockout_config: unknown field/);
    expect((await h.call('POST', 'sys/auth/jwt-lock', { type: 'jwt' })).status).toBe(204);
    const jwt = await h.call('POST', 'sys/auth/jwt-lock/tune', { user_lockout_config: { lockout_threshold: '2' } });
    expect(jwt).toMatchObject({ status: 400, body: { errors: ['tuning of user lockout configuration for auth type "jwt" not allowed'] } });
  });

  it('lists locked role IDs in sys/locked-users and unlocks them', async () => {
    expect((await h.call('POST', 'sys/auth/approle/tune', { user_lockout_config: { lockout_threshold: '0', lockout_duration: '0' } })).status).toBe(204);
    await h.call('POST', 'auth/approle/role/listed', { token_policies: ['default'] });
    const roleId = (await h.call('GET', 'auth/approle/role/listed/role-id')).body.data!.role_id as string;
    const secretId = (await h.call('POST', 'auth/approle/role/listed/secret-id')).body.data!.secret_id as string;
    const accessor = ((await h.call('GET', 'sys/auth')).body.data!['approle/'] as { accessor: string }).accessor;
    const login = (secret: string) => h.call('POST', 'auth/approle/login', { role_id: roleId, secret_id: secret }, null);
    for (let i = 0; i < 5; i += 1) await login('wrong');
    const expected = {
      by_namespace: [{ namespace_id: 'root', namespace_path: '', counts: 1, mount_accessors: [{ mount_accessor: accessor, counts: 1, alias_identifiers: [roleId] }] }],
      total: 1,
    };
    expect((await h.call('GET', 'sys/locked-users')).body.data).toEqual(expected);
    expect((await h.call('GET', `sys/locked-users?mount_accessor=${accessor}`)).body.data).toMatchObject({ total: 1 });
    const plain = (await h.call('POST', 'auth/token/create', { policies: ['default'] })).body.auth!.client_token as string;
    expect((await h.call('GET', 'sys/locked-users', undefined, plain)).status).toBe(403);
    expect((await h.call('POST', `sys/locked-users/${accessor}/unlock/${roleId}`)).status).toBe(204);
    expect((await h.call('POST', `sys/locked-users/${accessor}/unlock/${roleId}`)).status).toBe(204);
    expect((await login(secretId)).status).toBe(200);
    expect((await h.call('GET', 'sys/locked-users')).body.data).toMatchObject({ total: 0 });
  });
});
