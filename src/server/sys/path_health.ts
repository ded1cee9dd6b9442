// The status endpoints load balancers and clients probe: sys/health,
// sys/seal-status, sys/leader and sys/init. Unauthenticated, answered without
// Vault's envelope, and for HEAD as for GET.

import type { Route } from '../../sdk/route.ts';
import { serverRequest } from '../context.ts';

/** The version this server reports, in Vault's form (clients gate features on it). */
export const VAULT_VERSION = '1.17.0+tvm';

/** The status paths, relative to sys/: unauthenticated, HEAD allowed, a wrong method is a bare 405. */
export const STATUS_PATHS: readonly string[] = ['health', 'seal-status', 'leader', 'init'];

const plain = (data: Record<string, unknown>) => ({ data, http: { plain: { status: 200 } } });

export function pathHealth(): Route[] {
  return [
    {
      pattern: 'health',
      fields: {},
      operations: {
        read: async (req) => {
          const { core } = serverRequest(req);
          return plain({
            initialized: true,
            sealed: false,
            standby: false,
            performance_standby: false,
            replication_performance_mode: 'disabled',
            replication_dr_mode: 'disabled',
            server_time_utc: Math.floor(core.clock() / 1000),
            version: VAULT_VERSION,
            enterprise: false,
            cluster_name: core.clusterName,
            cluster_id: core.clusterId,
            echo_duration_ms: 0,
            clock_skew_ms: 0,
          });
        },
      },
      synopsis: 'The server\'s health.',
      description: `
Whether the server is initialised, unsealed and active, with its version and
cluster: what load balancers probe.`,
    },
    {
      pattern: 'seal-status',
      fields: {},
      operations: {
        read: async (req) => {
          const { core } = serverRequest(req);
          return plain({
            type: core.sealType,
            initialized: true,
            sealed: false,
            t: 1,
            n: 1,
            progress: 0,
            nonce: '',
            version: VAULT_VERSION,
            build_date: '2026-01-01T00:00:00Z',
            migration: false,
            cluster_name: core.clusterName,
            cluster_id: core.clusterId,
            recovery_seal: false,
            storage_type: core.storageType,
          });
        },
      },
      synopsis: 'The seal\'s status.',
      description: `
The seal type (shamir for the dev server, static for a persistent server's
seal stanza) and whether it is sealed (never, once started).`,
    },
    {
      pattern: 'leader',
      fields: {},
      operations: {
        read: async () =>
          plain({
            ha_enabled: false,
            is_self: false,
            active_time: '0001-01-01T00:00:00Z',
            leader_address: '',
            leader_cluster_address: '',
            performance_standby: false,
            performance_standby_last_remote_wal: 0,
          }),
      },
      synopsis: 'The cluster\'s leader.',
      description: `
The dev server runs alone: no high availability, no leader address. (In
production, the real server's raft cluster answers this.)`,
    },
    {
      pattern: 'init',
      fields: {},
      operations: { read: async () => plain({ initialized: true }) },
      synopsis: 'Whether the server is initialised.',
      description: `
Always true: the dev server initialises itself when it starts, and a
persistent server on its first start (printing the root token once).`,
    },
  ];
}
