// The load generator of scripts/bench-issue: N keep-alive connections, each
// sending one request and waiting for its answer before the next (no
// pipelining), for a fixed time. Written on raw sockets rather than
// node:http's client so one core of load can drive a server well past
// 20,000 answers a second (node:http's client tops out near the servers it
// measures). Understands Content-Length and chunked answers.
//
// Run as its own process (the bench pins it to a core):
//   node --import tsx scripts/bench-issue-load.ts '<json LoadSpec>'
// prints one JSON line: LoadResult.

import { connect, type Socket } from 'node:net';

export interface LoadSpec {
  host: string;
  port: number;
  /** The raw request, sent as is for every call (method, path, headers, body). */
  request: string;
  connections: number;
  warmupS: number;
  durationS: number;
  /** An answer counts as a success only with this status... */
  expectStatus: number;
  /** ...and a body containing this text. */
  expectBody?: string;
}

export interface LoadResult {
  rate: number;
  p50: number;
  p99: number;
  count: number;
  /** Every good answer, warm-up included (to divide the server's CPU time by). */
  total: number;
  errors: number;
  firstError?: string;
  /** One answer's body, for the bench to show what was issued. */
  sampleBody?: string;
}

interface Answer {
  status: number;
  body: Buffer;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Parses answers off one connection's byte stream. */
class AnswerParser {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onAnswer: (a: Answer) => void): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      const headEnd = this.buf.indexOf(CRLFCRLF);
      if (headEnd === -1) return;
      const head = this.buf.toString('latin1', 0, headEnd);
      const status = Number(head.slice(9, 12));
      const lower = head.toLowerCase();
      const bodyStart = headEnd + 4;
      const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
      if (cl) {
        const end = bodyStart + Number(cl[1]);
        if (this.buf.length < end) return;
        const body = this.buf.subarray(bodyStart, end);
        this.buf = this.buf.subarray(end);
        onAnswer({ status, body });
        continue;
      }
      if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
        const parts: Buffer[] = [];
        let at = bodyStart;
        for (;;) {
          const lineEnd = this.buf.indexOf('\r\n', at);
          if (lineEnd === -1) return;
          const size = parseInt(this.buf.toString('latin1', at, lineEnd), 16);
          const dataStart = lineEnd + 2;
          if (this.buf.length < dataStart + size + 2) return;
          if (size === 0) {
            this.buf = this.buf.subarray(dataStart + 2);
            onAnswer({ status, body: Buffer.concat(parts) });
            break;
          }
          parts.push(this.buf.subarray(dataStart, dataStart + size));
          at = dataStart + size + 2;
        }
        continue;
      }
      // No body (204, 304).
      this.buf = this.buf.subarray(bodyStart);
      onAnswer({ status, body: Buffer.alloc(0) });
    }
  }
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const request = Buffer.from(spec.request, 'latin1');
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from({ length: spec.connections }, () => {
      return new Promise<void>((resolve, reject) => {
        const s = connect({ host: spec.host, port: spec.port }, () => resolve());
        s.setNoDelay(true);
        s.once('error', reject);
        sockets.push(s);
      });
    }),
  );

  let latencies: Float64Array = new Float64Array(1 << 20);
  let count = 0;
  let total = 0;
  let errors = 0;
  let firstError: string | undefined;
  let sampleBody: string | undefined;
  let recording = false;
  const t0 = performance.now();
  const recordFrom = t0 + spec.warmupS * 1000;
  const end = recordFrom + spec.durationS * 1000;
  let recordedFrom = 0;

  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          const parser = new AnswerParser();
          let sentAt = performance.now();
          let done = false;
          const finish = () => {
            if (done) return;
            done = true;
            s.destroy();
            resolve();
          };
          s.on('data', (chunk: Buffer) => {
            parser.push(chunk, (a) => {
              const now = performance.now();
              const ok = a.status === spec.expectStatus && (spec.expectBody === undefined || a.body.includes(spec.expectBody));
              if (!recording && now >= recordFrom) {
                recording = true;
                recordedFrom = now;
              }
              if (!ok) {
                if (recording) errors++;
                firstError ??= `${a.status} ${a.body.toString('utf8', 0, 300)}`;
              } else if (now < end) {
                total++;
                if (!recording) return next();
                if (count === latencies.length) {
                  const bigger = new Float64Array(latencies.length * 2);
                  bigger.set(latencies);
                  latencies = bigger;
                }
                latencies[count++] = now - sentAt;
                sampleBody ??= a.body.toString('utf8');
              }
              next();
              function next(): void {
                if (now >= end) return finish();
                sentAt = now;
                s.write(request);
              }
            });
          });
          s.on('error', (err) => {
            firstError ??= `connection error: ${err.message}`;
            errors++;
            finish();
          });
          s.on('close', finish);
          s.write(request);
        }),
    ),
  );
  const elapsedS = (end - recordedFrom) / 1000;
  const sorted = latencies.subarray(0, count).sort();
  const pct = (p: number) => (count === 0 ? NaN : sorted[Math.min(count - 1, Math.floor((p / 100) * count))]);
  return {
    rate: count / elapsedS,
    p50: pct(50),
    p99: pct(99),
    count,
    total,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    ...(sampleBody !== undefined ? { sampleBody } : {}),
  };
}

if (process.argv[1]?.endsWith('bench-issue-load.ts')) {
  const spec = JSON.parse(process.argv[2]!) as LoadSpec;
  const result = await runLoad(spec);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
