// An unknown role ID costs a login what a wrong secret ID of a real role
// costs (the same reads, parsing and HMAC work, against a stand-in role), and
// answers the same: the time a refusal takes says nothing about whether the
// role ID exists. Measured on the AppRole backend itself, where a difference
// is not drowned by HTTP: many interleaved logins, medians, a wide tolerance.

import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/sdk/errors.ts';
import { INVALID_CREDENTIALS } from '../../src/server/approle/index.ts';
import { AuthTable, type AuthMount } from '../../src/server/auth/index.ts';
import { openMemoryStorage } from '../../src/server/storage/index.ts';
import { backendRequest } from './auth-helpers.ts';

const WARMUP = 300;
const ROUNDS = 2000;

let mount: AuthMount;
let roleId: string;

async function call(operation: 'create' | 'read' | 'update', path: string, data: Record<string, unknown> = {}) {
  return mount.backend.handleRequest(backendRequest(mount, operation, path, data));
}

/** One login's time in nanoseconds, and its answer. */
async function timed(data: Record<string, unknown>): Promise<{ ns: number; answer: string }> {
  const start = process.hrtime.bigint();
  let answer = 'ok';
  try {
    await call('update', 'login', data);
  } catch (err) {
    answer = err instanceof EngineError ? `${err.status} ${err.message}` : String(err);
  }
  return { ns: Number(process.hrtime.bigint() - start), answer };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

beforeAll(async () => {
  const table = new AuthTable({ storage: openMemoryStorage(), clock: () => Date.now() });
  mount = await table.mount({ path: 'approle', type: 'approle' });
  // Lockout stays on (its path is measured too), with a threshold no run reaches.
  await table.tune('approle/', { user_lockout_config: { lockout_threshold: '1000000000' } });
  await call('create', 'role/app', { token_policies: ['default'] });
  roleId = (await call('read', 'role/app/role-id'))!.data!.role_id as string;
  for (let i = 0; i < 20; i += 1) await call('update', 'role/app/secret-id');
});

describe('login timing', () => {
  it('takes as long for an unknown role ID as for a wrong secret ID, and answers the same', async () => {
    const wrongSecret: number[] = [];
    const unknownRole: number[] = [];
    const earlyExit: number[] = [];
    const answers = new Set<string>();
    for (let i = 0; i < WARMUP + ROUNDS; i += 1) {
      // Interleaved, so drift (GC, other processes) falls on all three alike.
      const a = await timed({ role_id: roleId, secret_id: randomUUID() });
      const b = await timed({ role_id: randomUUID(), secret_id: randomUUID() });
      const c = await timed({ role_id: '', secret_id: randomUUID() });
      answers.add(a.answer).add(b.answer);
      if (i < WARMUP) continue;
      wrongSecret.push(a.ns);
      unknownRole.push(b.ns);
      earlyExit.push(c.ns);
    }
    expect([...answers]).toEqual([`400 ${INVALID_CREDENTIALS}`]);

    const ratio = median(unknownRole) / median(wrongSecret);
    const control = median(wrongSecret) / median(earlyExit);
    const summary = `medians (µs): wrong secret ${median(wrongSecret) / 1000}, unknown role ${median(unknownRole) / 1000}, missing role_id ${median(earlyExit) / 1000}`;
    // Within a factor of 1.5 either way (measured: a few per cent apart).
    expect(ratio, summary).toBeGreaterThan(1 / 1.5);
    expect(ratio, summary).toBeLessThan(1.5);
    // The control: the same measurement does see the gap of a refusal that skips the work
    // (an unknown role ID used to be answered after one read, about this fast).
    expect(control, summary).toBeGreaterThan(1.5);
  });
});
