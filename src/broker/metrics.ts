// Prometheus metrics (prom-client), one registry per broker so several brokers
// can live in one process (tests). Labels are reasons, results and operations:
// never a token, a jti or a lease id.

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface BrokerMetrics {
  registry: Registry;
  activeLeases: Gauge;
  irrevocable: Gauge;
  renewals: Counter<'result'>;
  issued: Counter<'source'>;
  revocations: Counter<'reason'>;
  failures: Counter<'op'>;
  renewalLag: Histogram;
  cloudGrantsActive: Gauge<'cloud'>;
  cloudIrrevocable: Gauge<'cloud'>;
  /** op: issued | refreshed | torn_down | cleaned_up | rolled_back. */
  cloudOps: Counter<'cloud' | 'op'>;
  /** op: issue | refresh | teardown | cleanup | rollback. */
  cloudFailures: Counter<'cloud' | 'op'>;
  /** Where the store's group-commit counters are read at each scrape (set once the store is open). */
  commitSource: (() => CommitStats) | null;
}

/** A store's group commit so far: transactions committed (one fsync each) and the durable writes they held. */
export interface CommitStats {
  transactions: number;
  writes: number;
}

export function createMetrics(): BrokerMetrics {
  const registry = new Registry();
  const m: BrokerMetrics = {
    registry,
    activeLeases: new Gauge({ name: 'tvm_broker_active_leases', help: 'Leases the broker holds and renews', registers: [registry] }),
    irrevocable: new Gauge({
      name: 'tvm_broker_irrevocable_leases',
      help: 'Leases whose revocation kept failing (shown in `tvm broker leases --state irrevocable`)',
      registers: [registry],
    }),
    renewals: new Counter({ name: 'tvm_broker_renewals_total', help: 'Lease renewals by result', labelNames: ['result'], registers: [registry] }),
    issued: new Counter({
      name: 'tvm_broker_tokens_served_total',
      help: 'Tokens handed to workloads, minted or from the cache',
      labelNames: ['source'],
      registers: [registry],
    }),
    revocations: new Counter({
      name: 'tvm_broker_revocations_total',
      help: 'Leases revoked, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    failures: new Counter({ name: 'tvm_broker_failures_total', help: 'Failed Vault calls by operation', labelNames: ['op'], registers: [registry] }),
    renewalLag: new Histogram({
      name: 'tvm_broker_renewal_lag_seconds',
      help: 'How late renewals ran against their schedule',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    cloudGrantsActive: new Gauge({
      name: 'tvm_broker_cloud_grants_active',
      help: 'Cloud grants the broker holds and refreshes, by cloud',
      labelNames: ['cloud'],
      registers: [registry],
    }),
    cloudIrrevocable: new Gauge({
      name: 'tvm_broker_cloud_grants_irrevocable',
      help: 'Cloud grants whose teardown kept failing (shown in `tvm broker leases`)',
      labelNames: ['cloud'],
      registers: [registry],
    }),
    cloudOps: new Counter({
      name: 'tvm_broker_cloud_grant_ops_total',
      help: 'Cloud grants issued, refreshed, torn down, cleaned up and rolled back, by cloud',
      labelNames: ['cloud', 'op'],
      registers: [registry],
    }),
    cloudFailures: new Counter({
      name: 'tvm_broker_cloud_failures_total',
      help: 'Failed cloud calls by cloud and operation',
      labelNames: ['cloud', 'op'],
      registers: [registry],
    }),
    commitSource: null,
  };
  // Read from the store at each scrape (counters it keeps itself): reset, then set to its figure.
  const fromStore = (pick: (s: CommitStats) => number) =>
    function (this: Counter) {
      const s = m.commitSource?.();
      this.reset();
      if (s) this.inc(pick(s));
    };
  new Counter({
    name: 'tvm_broker_store_commits_total',
    help: 'Registry transactions committed durably (one fsync each; a group commit holds many writes)',
    registers: [registry],
    collect: fromStore((s) => s.transactions),
  });
  new Counter({
    name: 'tvm_broker_store_writes_total',
    help: 'Registry writes made durable (intents, completions, renewals, events...)',
    registers: [registry],
    collect: fromStore((s) => s.writes),
  });
  return m;
}
