// The secrets engines' mount table (Vault's `sys/mounts`): which engine
// answers under which path, each with its storage view `logical/<uuid>/`,
// the table persisted at `core/mounts` (with the ids of the built-in sys/ and
// auth/token/ mounts). The sequence itself is mount_table.ts, shared with the
// auth methods' table.

import { showValue } from '../sdk/errors.ts';
import type { Backend } from '../sdk/logical.ts';
import type { Logger } from './logger.ts';
import { MountError, MountTable, type MountEntry, type Mounted } from './mount_table.ts';
import type { PhysicalStorage } from './types.ts';

export { MountError, mountInfo, normalizeMountPath, ttlSeconds } from './mount_table.ts';
export type { MountConfig, MountEntry, MountInput } from './mount_table.ts';

/** Paths no engine may be mounted at or under (Vault's protected mount paths). */
const RESERVED = ['sys/', 'auth/', 'cubbyhole/', 'identity/', 'audit/'];
export const SUPPORTED_MOUNT_TYPES = ['tvm'] as const;

export type Mount = Mounted<MountEntry>;

export interface SecretsTableOptions {
  storage: PhysicalStorage;
  /** Builds a fresh engine for a mount of the given type. */
  createBackend: (type: string) => Backend;
  logger?: Logger;
}

export class SecretsTable extends MountTable<MountEntry> {
  constructor(options: SecretsTableOptions) {
    super({
      storage: options.storage,
      ...(options.logger ? { logger: options.logger } : {}),
      builtinIds: { system: 'system_', token: 'auth_token_' },
      kind: {
        tableKey: 'core/mounts',
        noun: 'engine',
        builtinPaths: [],
        check(path, type) {
          for (const r of RESERVED) {
            if (path.startsWith(r) || r.startsWith(path)) throw new MountError(`cannot mount under reserved path ${JSON.stringify(r)}`);
          }
          if (!(SUPPORTED_MOUNT_TYPES as readonly string[]).includes(type)) {
            throw new MountError(
              `unsupported mount type ${showValue(type)}: this server mounts only ${SUPPORTED_MOUNT_TYPES.map((t) => JSON.stringify(t)).join(', ')}`,
            );
          }
        },
        accessorPrefix: (type) => `${type}_`,
        prefix: (entry) => `logical/${entry.uuid}/`,
        createBackend: (entry) => options.createBackend(entry.type),
        missing: (path) => `no mount at ${JSON.stringify(path)}`,
      },
    });
  }
}
