// One audit file and its chain: the writer the dev server's file devices, the
// broker and the PEP's audit sink share. A line is written whole with one
// write(2) on a file opened for appending; the chain resumes from the file's
// last line when a writer opens an existing file (a restart), and a torn last
// line (a crash mid-write) is closed and named by the next device line, so the
// chain still runs through it and `tvm audit verify` can tell a crash from an
// edit.

import { closeSync, fchmodSync, fstatSync, fsyncSync, openSync, readSync, writeSync, type PathLike } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { GENESIS, keyId, lineHash, publicKeyText, signCheckpoint, signDevice, type ChainLink } from './chain.ts';

export const DEFAULT_CHECKPOINT_INTERVAL_MS = 60_000;

export interface AuditWriterOptions {
  /** Which device writes (a dev-server audit path such as "file/", or "broker", "pep"). */
  device: string;
  filePath: string;
  /** The Ed25519 private key checkpoints are signed with. */
  signingKey: KeyObject;
  /** A signed checkpoint at least this often, also when nothing happened (ms). */
  checkpointIntervalMs?: number;
  clock?: () => number;
}

/** A line could not be written: the caller must not serve what it cannot record. */
export class AuditWriteError extends Error {
  constructor(device: string, cause: unknown) {
    super(`audit device ${device} could not write: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'AuditWriteError';
  }
}

/** The last complete line of a file, and whether it ends in a torn (newline-less) line. */
function tailOf(fd: number): { last: string | null; torn: string | null } {
  const size = fstatSync(fd).size;
  if (size === 0) return { last: null, torn: null };
  let chunk = 64 * 1024;
  for (;;) {
    const start = Math.max(0, size - chunk);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString('utf8');
    const endsClean = text.endsWith('\n');
    const body = endsClean ? text.slice(0, -1) : text;
    const nl = body.lastIndexOf('\n');
    if (endsClean) {
      if (nl >= 0 || start === 0) return { last: body.slice(nl + 1), torn: null };
    } else {
      const torn = body.slice(nl + 1);
      const before = nl >= 0 ? body.slice(0, nl) : '';
      const prevNl = before.lastIndexOf('\n');
      if (nl < 0 && start === 0) return { last: null, torn };
      if (prevNl >= 0 || start === 0) return { last: before.slice(prevNl + 1), torn };
    }
    if (start === 0) return { last: body, torn: null };
    chunk *= 4;
  }
}

export class AuditWriter {
  readonly device: string;
  readonly filePath: string;
  readonly publicKey: string;
  private readonly key: KeyObject;
  private readonly clock: () => number;
  private fd: number | null;
  private link: ChainLink;
  private timer: NodeJS.Timeout | null = null;
  private lastCheckpointSeq = -1;

  private constructor(options: AuditWriterOptions, fd: number, link: ChainLink) {
    this.device = options.device;
    this.filePath = options.filePath;
    this.key = options.signingKey;
    this.publicKey = publicKeyText(options.signingKey);
    this.clock = options.clock ?? Date.now;
    this.fd = fd;
    this.link = link;
  }

  /** Refuses a file others could write: whoever can rewrite it could hide lines before its next checkpoint. */
  private static ownOnly(fd: number): void {
    fchmodSync(fd, 0o600);
  }

  /** Opens (or creates, mode 0600) the file, resumes its chain, and writes a device line. Throws when it cannot. */
  static open(options: AuditWriterOptions): AuditWriter {
    const fd = openSync(options.filePath as PathLike, 'a+', 0o600);
    try {
      AuditWriter.ownOnly(fd);
      const { last, torn } = tailOf(fd);
      let link: ChainLink = { seq: -1, prev: GENESIS };
      if (last !== null) {
        let parsed: { chain?: ChainLink } | null = null;
        try {
          parsed = JSON.parse(last);
        } catch {
          parsed = null;
        }
        if (!parsed?.chain || typeof parsed.chain.seq !== 'number') {
          throw new Error(`${options.filePath} does not end with an audit line this writer can continue`);
        }
        link = { seq: parsed.chain.seq, prev: lineHash(last) };
      }
      const writer = new AuditWriter(options, fd, link);
      let tornNote: Record<string, unknown> = {};
      if (torn !== null) {
        // Close the torn line and chain through it: the next device line names it.
        writeSync(fd, '\n');
        writer.link = { seq: link.seq + 1, prev: lineHash(torn) };
        tornNote = { after_torn_line: true };
      }
      const interval = options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
      // The device line is signed like a checkpoint (its time, interval and place
      // in the chain can be trusted only so), and a checkpoint follows at once.
      const time = new Date(writer.clock()).toISOString();
      const seq = writer.link.seq + 1;
      const intervalS = interval / 1000;
      const tornMark = torn !== null ? 'after_torn_line' : '';
      writer.write({
        type: 'device',
        time,
        device: {
          name: options.device,
          public_key: writer.publicKey,
          key_id: keyId(writer.publicKey),
          checkpoint_interval_s: intervalS,
          ...tornNote,
          signature: signDevice(options.signingKey, options.device, writer.publicKey, intervalS, seq, writer.link.prev, time, tornMark),
        },
      });
      writer.checkpoint();
      writer.timer = setInterval(() => {
        try {
          writer.checkpoint();
        } catch {
          // The next write reports the failure to its caller.
        }
      }, interval);
      writer.timer.unref();
      return writer;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Appends one entry (a `time` is added when it has none) with its chain link. Throws AuditWriteError. */
  write(entry: Record<string, unknown>): void {
    if (this.fd === null) throw new AuditWriteError(this.device, new Error('closed'));
    const link = { seq: this.link.seq + 1, prev: this.link.prev };
    const line = JSON.stringify({ time: new Date(this.clock()).toISOString(), ...entry, chain: link });
    try {
      writeSync(this.fd, `${line}\n`);
    } catch (err) {
      throw new AuditWriteError(this.device, err);
    }
    this.link = { seq: link.seq, prev: lineHash(line) };
  }

  /** A signed checkpoint of the chain's head, made durable (fsync). */
  checkpoint(): void {
    if (this.fd === null) return;
    const time = new Date(this.clock()).toISOString();
    const seq = this.link.seq + 1;
    const head = this.link.prev;
    const signature = signCheckpoint(this.key, this.device, seq, head, time);
    this.write({ type: 'checkpoint', time, checkpoint: { count: seq, head, key_id: keyId(this.publicKey), signature } });
    this.lastCheckpointSeq = seq;
    try {
      fsyncSync(this.fd);
    } catch (err) {
      throw new AuditWriteError(this.device, err);
    }
  }

  /** Lines written so far in the file (the next line's seq). */
  get count(): number {
    return this.link.seq + 1;
  }

  /** A last checkpoint (so the tail is provable), then the file is closed. Safe to call twice. */
  close(): void {
    if (this.fd === null) return;
    if (this.timer) clearInterval(this.timer);
    try {
      if (this.lastCheckpointSeq !== this.link.seq) this.checkpoint();
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}
