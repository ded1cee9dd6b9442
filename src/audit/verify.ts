// Checks an audit file as an auditor would: every line whole and parseable,
// each in its place in the chain (seq one more than the line before, prev the
// SHA-256 of the line before), every checkpoint signed by the device key (the
// pinned one, else the file's own device line), checkpoints no further apart
// than their interval allows, and the last one recent enough at the time the
// file is judged. Names the first line that fails and why.

import type { KeyObject } from 'node:crypto';
import { checkpointValid, deviceValid, GENESIS, keyFromText, keyId, lineHash, publicKeyText } from './chain.ts';

export interface AuditVerifyOptions {
  /** Pin the checkpoint key (an Ed25519 public key: PEM or base64 SPKI); default: the file's own device line. */
  key?: KeyObject | string;
  /** The time the file is judged at (ms; default now): its last checkpoint must be recent then. */
  at?: number;
  /** Slack on top of one checkpoint interval before a gap counts as missing (ms; default half an interval plus 5 s). */
  slackMs?: number;
}

export interface AuditVerifyReport {
  ok: boolean;
  /** The checkpoints were checked against a pinned key (else against the key the file itself names). */
  pinned: boolean;
  lines: number;
  checkpoints: number;
  /** The first line that fails (1-based) and why. */
  failure?: { line: number; reason: string };
  /** What is not a failure but an auditor should know (a crash's torn line, restarts, lines after the last checkpoint). */
  notes: string[];
}

interface Line {
  type?: unknown;
  time?: unknown;
  chain?: { seq?: unknown; prev?: unknown };
  device?: { name?: unknown; public_key?: unknown; checkpoint_interval_s?: unknown; after_torn_line?: unknown; signature?: unknown };
  checkpoint?: { count?: unknown; head?: unknown; signature?: unknown };
}

function parse(text: string): Line | null {
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Line) : null;
  } catch {
    return null;
  }
}

export function verifyAuditFile(content: string, options: AuditVerifyOptions = {}): AuditVerifyReport {
  const notes: string[] = [];
  const pinned = options.key === undefined ? null : typeof options.key === 'string' ? publicKeyText(keyFromText(options.key)) : publicKeyText(options.key);
  const at = options.at ?? Date.now();
  const lines = content.split('\n');
  const complete = content.endsWith('\n');
  if (complete) lines.pop();
  let checkpoints = 0;
  const fail = (line: number, reason: string): AuditVerifyReport => ({ ok: false, pinned: pinned !== null, lines: lines.length, checkpoints, failure: { line, reason }, notes });
  if (lines.length === 0 || (lines.length === 1 && lines[0] === '')) return fail(1, 'the file is empty: not even a device line');
  if (!complete) return fail(lines.length, 'the last line has no end: the file was cut in the middle of a line');

  let prev = GENESIS;
  let expected = 0;
  let key: KeyObject | null = null;
  let device = '';
  let intervalMs = 60_000;
  let lastTimeMs = NaN; // the last checkpoint or device line
  let lastCheckpointLine = 0;
  let sinceCheckpoint = 0;
  let lastDeviceLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const text = lines[i];
    const line = parse(text);
    if (!line) {
      const next = parse(lines[i + 1] ?? '');
      if (next?.type === 'device' && next.device?.after_torn_line === true) {
        notes.push(`line ${n} is a torn line (a crash mid-write), closed when the writer started again at line ${n + 1}`);
        prev = lineHash(text);
        expected++;
        continue;
      }
      return fail(n, 'is not a JSON audit line: it was edited, or its file was spliced');
    }
    const seq = line.chain?.seq;
    if (typeof seq !== 'number' || typeof line.chain?.prev !== 'string') return fail(n, 'carries no chain link {seq, prev}: it was inserted or edited');
    if (seq > expected) return fail(n, `has seq ${seq} where ${expected} was expected: ${seq - expected === 1 ? `line seq ${expected} was` : `lines seq ${expected} to ${seq - 1} were`} deleted`);
    if (seq < expected) return fail(n, `has seq ${seq} after seq ${expected - 1}: lines were reordered or copied`);
    if (line.chain.prev !== prev) {
      return fail(n, `does not follow line ${n - 1} (its prev is not that line's hash): line ${n - 1} was edited, or lines were removed or reordered`);
    }
    const timeMs = typeof line.time === 'string' ? Date.parse(line.time) : NaN;
    if (line.type === 'device') {
      const d = line.device;
      const pk = d?.public_key;
      if (typeof pk !== 'string') return fail(n, 'is a device line without a public key');
      if (pinned !== null && pk !== pinned) return fail(n, `names a checkpoint key (${keyId(pk)}) other than the pinned one (${keyId(pinned)})`);
      try {
        key = keyFromText(pk);
      } catch {
        return fail(n, 'is a device line whose public key cannot be read');
      }
      const intervalS = d?.checkpoint_interval_s;
      if (typeof intervalS !== 'number' || !(intervalS > 0) || typeof line.time !== 'string' || !Number.isFinite(timeMs)) {
        return fail(n, 'is a device line without a valid time and checkpoint interval');
      }
      device = typeof d?.name === 'string' ? d.name : '';
      const mark = d?.after_torn_line === true ? 'after_torn_line' : '';
      if (typeof d?.signature !== 'string' || !deviceValid(key, device, pk, intervalS, seq, prev, line.time, mark, d.signature)) {
        return fail(n, 'is a device line whose signature does not verify with its key: forged or edited');
      }
      if (Number.isFinite(lastTimeMs) && timeMs < lastTimeMs) return fail(n, 'is a device line dated before the line it follows: time went back');
      intervalMs = intervalS * 1000;
      if (i > 0 && Number.isFinite(lastTimeMs)) notes.push(`line ${n}: the writer started again, ${Math.round((timeMs - lastTimeMs) / 1000)} s after its last checkpoint`);
      lastTimeMs = timeMs;
      lastDeviceLine = n;
    } else if (line.type === 'checkpoint') {
      const c = line.checkpoint;
      if (!key) return fail(n, 'is a checkpoint before any device line names its key');
      if (c?.count !== seq || c.head !== prev || typeof c.signature !== 'string' || typeof line.time !== 'string') {
        return fail(n, 'is a checkpoint that does not commit to the lines before it (count or head wrong)');
      }
      if (!checkpointValid(key, device, seq, prev, line.time, c.signature)) return fail(n, 'is a checkpoint whose signature does not verify: forged or edited');
      if (!Number.isFinite(timeMs) || (Number.isFinite(lastTimeMs) && timeMs < lastTimeMs)) return fail(n, 'is a checkpoint dated before the line it follows: time went back');
      const slack = options.slackMs ?? intervalMs / 2 + 5000;
      if (Number.isFinite(lastTimeMs) && timeMs - lastTimeMs > intervalMs + slack) {
        return fail(n, `is a checkpoint ${Math.round((timeMs - lastTimeMs) / 1000)} s after the one before (one every ${intervalMs / 1000} s is written): lines or time are missing before it`);
      }
      lastTimeMs = timeMs;
      lastCheckpointLine = n;
      checkpoints++;
      sinceCheckpoint = -1;
    } else if (i === 0) {
      return fail(n, 'the first line is not a device line: the head of the file was cut');
    }
    sinceCheckpoint++;
    prev = lineHash(text);
    expected = seq + 1;
  }
  if (lastCheckpointLine < lastDeviceLine) {
    return fail(lastDeviceLine, 'is the last device line and no signed checkpoint follows it: what comes after is unproven (the writer writes one at once)');
  }
  const slack = options.slackMs ?? intervalMs / 2 + 5000;
  if (Number.isFinite(lastTimeMs) && at - lastTimeMs > intervalMs + slack) {
    return fail(lines.length, `ends ${Math.round((at - lastTimeMs) / 1000)} s before the time it is judged at, with no checkpoint since (one every ${intervalMs / 1000} s is written): its tail was cut, or its writer stopped`);
  }
  if (sinceCheckpoint > 0) notes.push(`${sinceCheckpoint} line(s) after the last checkpoint${lastCheckpointLine ? ` (line ${lastCheckpointLine})` : ''} are not yet covered by one`);
  if (pinned === null) notes.push("checked with the key the file names itself: pin the device's key (--key) to rule out a file rewritten with another");
  return { ok: true, pinned: pinned !== null, lines: lines.length, checkpoints, notes };
}
