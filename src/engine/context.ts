// What every path family shares: the clock, the API address and the caches
// over storage. One context per mounted backend instance.

import { KeyRing } from './keys.ts';
import { ActiveLeases } from './leases.ts';
import { ConfigStore } from './config.ts';
import { RoleStore } from './roles.ts';
import { RevocationList } from './revocations.ts';
import { StatusLists } from './status.ts';
import type { Clock } from '../sdk/logical.ts';

export interface EngineContext {
  clock: Clock;
  /** The externally reachable API address (for the default issuer), e.g. http://127.0.0.1:8200. */
  apiAddr: string;
  config: ConfigStore;
  roles: RoleStore;
  keys: KeyRing;
  revocations: RevocationList;
  status: StatusLists;
  leases: ActiveLeases;
}

export function createContext(options: { clock: Clock; apiAddr: string }): EngineContext {
  return {
    clock: options.clock,
    apiAddr: options.apiAddr,
    config: new ConfigStore(),
    roles: new RoleStore(),
    keys: new KeyRing(options.clock),
    revocations: new RevocationList(options.clock),
    status: new StatusLists(options.clock),
    leases: new ActiveLeases(),
  };
}
