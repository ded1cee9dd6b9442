// User lockout around an AppRole login (the failure counts and the policy are
// the auth table's, src/server/auth/lockout.ts): a locked role ID is refused
// ("permission denied") before its credentials are looked at, even the right
// ones; a login refused as "invalid role or secret ID" counts towards the
// lockout, whether the role ID exists or not; a successful one clears the
// count.

import { EngineError } from '../../sdk/errors.ts';
import { sha256Hex } from '../auth/storage.ts';
import type { AppRoleContext } from './context.ts';

/** Vault answers every unknown role ID, unknown secret ID, used-up or expired secret ID alike; these refusals count. */
export const INVALID_CREDENTIALS = 'invalid role or secret ID';

export function invalidCredentials(): EngineError {
  return new EngineError('ERR_INVALID_REQUEST', INVALID_CREDENTIALS);
}

/** Runs a login attempt with `roleId` under the mount's lockout (as is, when lockout is off). */
export async function guardLogin<T>(ctx: AppRoleContext, roleId: string, attempt: () => Promise<T>): Promise<T> {
  const gate = ctx.lockout;
  if (!gate?.enabled()) return attempt();
  // One login at a time per role ID, so a burst of guesses cannot outrun the count.
  return ctx.locks.run(`login:${sha256Hex(roleId)}`, async () => {
    if (gate.locked(roleId)) throw new EngineError('ERR_PERMISSION_DENIED', 'permission denied');
    try {
      const result = await attempt();
      gate.succeeded(roleId);
      return result;
    } catch (err) {
      if (err instanceof EngineError && err.message === INVALID_CREDENTIALS) gate.failed(roleId);
      throw err;
    }
  });
}
