// A usage sink that forwards the PEP's events to the broker (POST /v1/usage),
// where its anomaly rules and console read them: batched (every flushMs or
// 500 events), bounded (past maxQueued the oldest are dropped and counted),
// never blocking or failing a decision.

import type { UsageEvent, UsageSink } from './types.ts';

export interface ForwarderOptions {
  /** The broker's address, e.g. http://127.0.0.1:8300. */
  broker: string;
  flushMs?: number;
  maxQueued?: number;
  fetch?: typeof fetch;
}

export interface UsageForwarder extends UsageSink {
  /** Events dropped because the queue was full or the broker refused them. */
  readonly dropped: number;
  /** Sends what is queued now. */
  flush(): Promise<void>;
  /** Flushes, then stops. */
  close(): Promise<void>;
}

const BATCH = 500;

export function createUsageForwarder(options: ForwarderOptions): UsageForwarder {
  const url = `${options.broker.replace(/\/+$/, '')}/v1/usage`;
  const fetchFn = options.fetch ?? fetch;
  const maxQueued = options.maxQueued ?? 10_000;
  let queue: UsageEvent[] = [];
  let dropped = 0;
  let sending: Promise<void> | null = null;

  const send = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.slice(0, BATCH);
      queue = queue.slice(batch.length);
      try {
        const r = await fetchFn(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: batch }), signal: AbortSignal.timeout(5000) });
        await r.body?.cancel();
        if (r.status !== 200) dropped += batch.length;
      } catch {
        dropped += batch.length;
      }
    }
  };
  const flush = (): Promise<void> => {
    sending ??= send().finally(() => {
      sending = null;
    });
    return sending;
  };
  const timer = setInterval(() => void flush(), options.flushMs ?? 100);
  timer.unref();

  const sink = ((event: UsageEvent) => {
    queue.push(event);
    if (queue.length > maxQueued) {
      queue.shift();
      dropped++;
    }
    if (queue.length >= BATCH) void flush();
  }) as UsageForwarder;
  Object.defineProperty(sink, 'dropped', { get: () => dropped });
  sink.flush = flush;
  sink.close = async () => {
    clearInterval(timer);
    await flush();
  };
  return sink;
}
