// What the JWT method's path families share: the clock, the locks that
// serialise config and role writes, and the key source of the config. One
// context per mounted backend instance.

import type { Clock } from '../../sdk/logical.ts';
import { KeyedMutex } from '../../sdk/storage.ts';
import { KeyCache } from './config.ts';

export interface JwtContext {
  clock: Clock;
  /** `config`, `role:<name>`. */
  locks: KeyedMutex;
  keys: KeyCache;
}

export function createJwtContext(options: { clock: Clock }): JwtContext {
  return { clock: options.clock, locks: new KeyedMutex(), keys: new KeyCache() };
}
