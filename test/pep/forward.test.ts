// The usage forwarder: batches to POST /v1/usage, counts what the broker
// refuses or the queue cannot hold, and never throws into a decision.
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createUsageForwarder } from '../../src/pep/index.ts';
import type { UsageEvent } from '../../src/pep/types.ts';

const event = (i: number): UsageEvent => ({ time: new Date().toISOString(), decision: 'allow', jti: `j${i}`, op: 'read', resource: `db://x/${i}` });

async function broker(status: number) {
  const batches: number[] = [];
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      batches.push((JSON.parse(body) as { events: unknown[] }).events.length);
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}`, batches, close: () => new Promise((r) => s.close(r)) };
}

describe('createUsageForwarder', () => {
  it('sends events in batches of at most 500, and all of them', async () => {
    const b = await broker(200);
    const f = createUsageForwarder({ broker: b.url, flushMs: 10_000 });
    for (let i = 0; i < 1200; i++) f(event(i));
    await f.close();
    expect(b.batches.reduce((x, y) => x + y, 0)).toBe(1200);
    expect(Math.max(...b.batches)).toBeLessThanOrEqual(500);
    expect(f.dropped).toBe(0);
    await b.close();
  });

  it('counts what a refusing broker, an unreachable one or a full queue loses, and never throws', async () => {
    const b = await broker(400);
    const refused = createUsageForwarder({ broker: b.url, flushMs: 10_000 });
    refused(event(1));
    await refused.close();
    expect(refused.dropped).toBe(1);
    await b.close();
    const gone = createUsageForwarder({ broker: 'http://127.0.0.1:1', flushMs: 10_000, maxQueued: 10 });
    for (let i = 0; i < 15; i++) expect(() => gone(event(i))).not.toThrow();
    expect(gone.dropped).toBe(5);
    await gone.close();
    expect(gone.dropped).toBe(15);
  });
});
