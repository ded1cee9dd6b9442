// What acts on the rules: a watcher takes usage events (as a PEP's sink, or
// read from PEPs' audit files by `tvm watch`), runs them through the rules,
// and for each firing writes an audit line with its evidence and does what the
// rule names: alert only; revoke the token (the engine's revoke-by-jti, so
// every PEP refuses it within its push latency); or revoke the workload's
// leases through the broker (POST /v1/reports).

import type { AuditWriter } from '../audit/writer.ts';
import type { VaultConnection } from '../client/connection.ts';
import type { UsageEvent, UsageSink } from '../pep/types.ts';
import { RuleEngine, type Firing, type Rule } from './rules.ts';

export interface WatcherOptions {
  rules: Rule[];
  /** For revoke_token: a Vault connection whose token may update `<mount>/revoke/<role>`. */
  vault?: VaultConnection;
  /** For revoke_workload: the broker's API address, e.g. http://127.0.0.1:8300. */
  broker?: string;
  /** Where firings are recorded (the watcher's own chained audit file). */
  audit?: AuditWriter;
  /** A line per firing and per failed action (default: none). */
  log?: (line: Record<string, unknown>) => void;
  clock?: () => number;
  /** Actions done another way (the broker runs them in-process): each answers its outcome. */
  actions?: { revokeToken?(f: Firing): Promise<string>; revokeWorkload?(f: Firing): Promise<string> };
  /** Told of every firing once its action is done (the broker shows them on its console). */
  onFiring?: (f: FiringOutcome) => void;
}

export interface FiringOutcome extends Firing {
  /** What the action did: alerted, revoked, or why it could not. */
  outcome: string;
}

export interface Watcher {
  /** A usage sink: give it to createVerifier (beside an audit sink) to watch one PEP in-process. */
  readonly sink: UsageSink;
  /** Takes one event and resolves once its firings' actions are done. */
  observe(event: UsageEvent): Promise<FiringOutcome[]>;
  /** Resolves once every action started so far is done. */
  settled(): Promise<void>;
}

export function createWatcher(options: WatcherOptions): Watcher {
  const engine = new RuleEngine(options.rules, options.clock ? { clock: options.clock } : {});
  const pending = new Set<Promise<unknown>>();

  const act = async (f: Firing): Promise<FiringOutcome> => {
    let outcome: string;
    try {
      if (f.action === 'alert') outcome = 'alerted';
      else if (f.action === 'revoke_token' && options.actions?.revokeToken) outcome = await options.actions.revokeToken(f);
      else if (f.action === 'revoke_workload' && options.actions?.revokeWorkload) outcome = await options.actions.revokeWorkload(f);
      else if (f.action === 'revoke_token') {
        if (!options.vault) throw new Error('no Vault connection to revoke with');
        if (!f.role) throw new Error('the event names no role');
        const r = await options.vault.write(`${options.vault.mount}/revoke/${encodeURIComponent(f.role)}`, { jti: f.jti });
        outcome = r ? 'token revoked' : 'token already gone';
      } else {
        if (!options.broker) throw new Error('no broker to revoke the workload through');
        const res = await fetch(`${options.broker.replace(/\/+$/, '')}/v1/reports`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ jti: f.jti, reason: `${f.rule}: ${f.reason}` }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await res.json().catch(() => ({}))) as { revoked?: number; error?: string };
        if (res.status !== 200) throw new Error(`the broker answered ${res.status}${body.error ? `: ${body.error}` : ''}`);
        outcome = `workload revoked (${body.revoked ?? 0} leases)`;
      }
    } catch (err) {
      outcome = `action failed: ${(err as Error).message}`;
    }
    const done: FiringOutcome = { ...f, outcome };
    options.onFiring?.(done);
    options.log?.({ level: outcome.startsWith('action failed') ? 'error' : 'warn', msg: 'anomaly rule fired', rule: f.rule, jti: f.jti, role: f.role, reason: f.reason, outcome });
    try {
      options.audit?.write({ type: 'anomaly', time: f.time, anomaly: done });
    } catch (err) {
      options.log?.({ level: 'error', msg: 'the watcher audit file could not be written', error: (err as Error).message });
    }
    return done;
  };

  const observe = (event: UsageEvent): Promise<FiringOutcome[]> => {
    const firings = engine.observe(event);
    if (firings.length === 0) return Promise.resolve([]);
    const p = Promise.all(firings.map(act));
    pending.add(p);
    void p.finally(() => pending.delete(p));
    return p;
  };

  return {
    sink: (event) => void observe(event),
    observe,
    settled: async () => {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
