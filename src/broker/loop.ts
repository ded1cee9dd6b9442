// The broker's work loop: due renewals and revocations, liveness triggers,
// gauges, periodic reconcile and the broker's own Vault token. One pass at a
// time; wake() runs the next pass now (an explicit revocation).

import type { Broker } from './broker.ts';
import { describeError } from './errors.ts';
import type { Logger } from './log.ts';
import type { Clock } from './types.ts';
import type { VaultGateway } from './vault.ts';

export interface LoopSettings {
  /** Pause between passes when nothing is due. */
  tickMs: number;
  /** How often heartbeats, processes and max age are checked (and the registry's logins followed). */
  triggerIntervalMs: number;
  /** How often the registry is reconciled with Vault (0: only at start). */
  reconcileIntervalMs: number;
}

export const DEFAULT_LOOP: LoopSettings = { tickMs: 250, triggerIntervalMs: 1_000, reconcileIntervalMs: 300_000 };

export class WorkLoop {
  private running = false;
  private done: Promise<void> = Promise.resolve();
  private wakeUp: (() => void) | null = null;
  private pending = false;
  private nextTriggers = 0;
  private nextGauges = 0;
  private nextReconcile = 0;
  private nextSelf = 0;

  constructor(
    private readonly broker: Broker,
    private readonly vault: VaultGateway,
    private readonly log: Logger,
    private readonly settings: LoopSettings,
    private readonly clock: Clock = Date.now,
  ) {
    broker.onDue = () => this.wake();
  }

  /** `reconcileAt`: an earlier reconcile (the start's skipped leases an issue under way might own). */
  start(reconcileAt = Infinity): void {
    if (this.running) return;
    this.running = true;
    const now = this.clock();
    this.nextReconcile = Math.min(reconcileAt, this.settings.reconcileIntervalMs > 0 ? now + this.settings.reconcileIntervalMs : Infinity);
    this.done = this.run();
  }

  wake(): void {
    this.pending = true;
    this.wakeUp?.();
  }

  /** Stops after the pass under way; safe to call twice. */
  async stop(): Promise<void> {
    this.running = false;
    this.wakeUp?.();
    await this.done;
  }

  private async step(name: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.error({ step: name, err: describeError(err) }, 'loop step failed');
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.pending = false;
      const now = this.clock();
      let handled = 0;
      await this.step('due', async () => {
        handled = await this.broker.processDue();
      });
      if (now >= this.nextTriggers) {
        this.nextTriggers = now + this.settings.triggerIntervalMs;
        await this.step('triggers', () => this.broker.checkTriggers());
        // Leases of logins whose tokens end (a re-login, a dead replica): re-fetched before then.
        await this.step('logins', () => this.broker.followLogins());
      }
      if (now >= this.nextGauges) {
        this.nextGauges = now + 1_000;
        await this.step('gauges', () => this.broker.refreshGauges());
      }
      if (now >= this.nextReconcile) {
        this.nextReconcile = now + this.settings.reconcileIntervalMs;
        await this.step('reconcile', async () => {
          const r = await this.broker.reconcile();
          if (r.skipped > 0) this.nextReconcile = Math.min(this.nextReconcile, now + this.broker.settings.claimTtlMs);
        });
      }
      if (now >= this.nextSelf) {
        this.nextSelf = now + 5_000;
        await this.step('vault-token', async () => {
          this.nextSelf = await this.vault.maintainSelf(now);
        });
      }
      // A full batch means more is due: go again at once.
      if (!this.running || this.pending || handled >= this.broker.settings.batchSize) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.settings.tickMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }
}
