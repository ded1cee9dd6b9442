// What AppRole's path families share: the clock, the locks that serialise
// changes to one role and logins with one role ID or secret ID, and the
// mount's user lockout. One context per mounted backend instance.

import type { Clock } from '../../sdk/logical.ts';
import { KeyedMutex } from '../../sdk/storage.ts';
import type { LockoutGate } from '../auth/lockout.ts';

export interface AppRoleContext {
  clock: Clock;
  /** `role:<name>` (writes to a role and its secret IDs), `login:<role id hash>`, `secret:<key>`. */
  locks: KeyedMutex;
  /** User lockout on this mount (the auth table gives it); null: logins are never locked out. */
  lockout: LockoutGate | null;
}

export function createAppRoleContext(options: { clock: Clock; lockout?: LockoutGate }): AppRoleContext {
  return { clock: options.clock, locks: new KeyedMutex(), lockout: options.lockout ?? null };
}
