// The PEP's audit sink: every usage event as a line of a chained, checkpointed
// audit file (src/audit), the same writer and format the dev server's devices
// and the broker use, so `tvm audit search` joins a token's uses with its
// issue, renewals and revocation. The checkpoint key is the application's to
// keep (from its secret store): the sink never writes it anywhere.

import type { KeyObject } from 'node:crypto';
import { AuditWriter } from '../audit/writer.ts';
import type { UsageEvent, UsageSink } from './types.ts';

export interface AuditSinkOptions {
  filePath: string;
  /** The Ed25519 private key checkpoints are signed with. */
  signingKey: KeyObject;
  /** The device name in the file's device lines (default "pep"). */
  device?: string;
  checkpointIntervalMs?: number;
}

export interface AuditSink extends UsageSink {
  /** The public key checkpoints verify with (base64 SPKI): what `tvm audit verify --key` pins. */
  readonly publicKey: string;
  /** A last checkpoint, then the file is closed. */
  close(): void;
}

export function createAuditSink(options: AuditSinkOptions): AuditSink {
  const writer = AuditWriter.open({
    device: options.device ?? 'pep',
    filePath: options.filePath,
    signingKey: options.signingKey,
    ...(options.checkpointIntervalMs ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}),
  });
  const sink = ((event: UsageEvent) => writer.write({ type: 'usage', time: event.time, usage: event })) as AuditSink;
  Object.defineProperty(sink, 'publicKey', { value: writer.publicKey });
  sink.close = () => writer.close();
  return sink;
}
