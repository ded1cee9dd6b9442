// The audit file's chain and checkpoints: verify accepts what a writer wrote
// (across a restart and a crash's torn line) and names the first line of each
// kind of tampering: an edited line, a deleted one, two swapped, a cut tail, a
// forged checkpoint, a quiet gap, a foreign key.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { publicKeyText } from '../../src/audit/chain.ts';
import { verifyAuditFile } from '../../src/audit/verify.ts';
import { AuditWriter } from '../../src/audit/writer.ts';
import { keyPair } from '../keys.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { privateKey, publicKey } = keyPair('EdDSA');
const T0 = Date.UTC(2026, 11, 5, 12, 0, 0);

/** A file of `n` entries with a checkpoint every 10 (the interval is 60 s; each entry is 6 s apart). */
function written(name: string, n = 30): { path: string; clock: { now: number }; lines: () => string[] } {
  const path = join(dir, name);
  const clock = { now: T0 };
  const w = AuditWriter.open({ device: 'file/', filePath: path, signingKey: privateKey, checkpointIntervalMs: 60_000, clock: () => clock.now });
  for (let i = 1; i <= n; i++) {
    clock.now += 6000;
    w.write({ type: 'request', request: { path: `tvm/creds/r${i}` } });
    if (i % 10 === 0) w.checkpoint();
  }
  w.close();
  return { path, clock, lines: () => readFileSync(path, 'utf8').split('\n').slice(0, -1) };
}

/** The writer opened again on an existing file (a restart), writing one line at `at`. */
function appendAfterRestart(path: string, at: number, requestPath: string): void {
  const w = AuditWriter.open({ device: 'file/', filePath: path, signingKey: privateKey, clock: () => at });
  w.write({ type: 'request', request: { path: requestPath } });
  w.close();
}

const judge = (path: string, at: number, extra = {}) => verifyAuditFile(readFileSync(path, 'utf8'), { at, ...extra });

describe('audit verify', () => {
  it('accepts what the writer wrote, pinned to its key or not, and across a restart', () => {
    const f = written('good.log');
    const report = judge(f.path, f.clock.now + 1000, { key: publicKeyText(publicKey) });
    expect(report).toMatchObject({ ok: true, pinned: true, lines: 35, checkpoints: 4 });
    appendAfterRestart(f.path, f.clock.now + 2000, 'after/restart');
    const again = judge(f.path, f.clock.now + 3000);
    expect(again.ok).toBe(true);
    expect(again.notes.join(' ')).toContain('started again');
  });

  it('names an edited line (by the line after it), a deleted line, swapped lines and an inserted one', () => {
    const f = written('tamper.log');
    const at = f.clock.now + 1000;
    const base = f.lines();
    const check = (lines: string[]) => {
      writeFileSync(f.path, lines.join('\n') + '\n');
      return judge(f.path, at);
    };
    const edited = [...base];
    edited[5] = edited[5].replace('tvm/creds/r4', 'tvm/creds/xx');
    expect(check(edited).failure).toEqual({ line: 7, reason: expect.stringContaining('line 6 was edited') });
    const deleted = base.filter((_, i) => i !== 7);
    expect(check(deleted).failure).toEqual({ line: 8, reason: expect.stringContaining('was deleted') });
    const swapped = [...base];
    [swapped[2], swapped[3]] = [swapped[3], swapped[2]];
    expect(check(swapped).failure?.line).toBe(3);
    const inserted = [...base.slice(0, 5), '{"type":"request","request":{"path":"forged"}}', ...base.slice(5)];
    expect(check(inserted).failure).toEqual({ line: 6, reason: expect.stringContaining('no chain link') });
    const junk = [...base];
    junk[9] = 'not json';
    expect(check(junk).failure).toEqual({ line: 10, reason: expect.stringContaining('not a JSON audit line') });
  });

  it('catches a cut tail: by its missing checkpoints at the time it is judged, or by a line cut short', () => {
    const f = written('tail.log');
    const lines = f.lines();
    writeFileSync(f.path, lines.slice(0, 20).join('\n') + '\n');
    const cut = judge(f.path, f.clock.now + 1000);
    expect(cut.ok).toBe(false);
    expect(cut.failure?.reason).toContain('its tail was cut');
    writeFileSync(f.path, lines.join('\n') + '\n' + '{"type":"requ');
    expect(judge(f.path, f.clock.now + 1000).failure?.reason).toContain('cut in the middle of a line');
  });

  it('refuses a forged checkpoint, a checkpoint by another key, and a quiet gap', () => {
    const f = written('forge.log');
    const at = f.clock.now + 1000;
    const lines = f.lines();
    const cpIndex = lines.findIndex((l) => l.includes('"type":"checkpoint"'));
    const forged = [...lines];
    forged[cpIndex] = forged[cpIndex].replace(/"signature":"[^"]+"/, '"signature":"AAAA"');
    writeFileSync(f.path, forged.join('\n') + '\n');
    expect(judge(f.path, at).failure).toMatchObject({ line: cpIndex + 1 });

    const other = keyPair('EdDSA');
    const g = written('other-key.log');
    expect(judge(g.path, g.clock.now + 1000, { key: publicKeyText(other.publicKey) }).failure).toEqual({ line: 1, reason: expect.stringContaining('other than the pinned one') });

    // A writer that went quiet without checkpoints (its timer stopped): the next checkpoint is too late.
    const path = join(dir, 'gap.log');
    const clock = { now: T0 };
    const w = AuditWriter.open({ device: 'file/', filePath: path, signingKey: privateKey, checkpointIntervalMs: 60_000, clock: () => clock.now });
    w.checkpoint();
    clock.now += 10 * 60_000;
    w.checkpoint();
    w.close();
    expect(judge(path, clock.now).failure?.reason).toContain('lines or time are missing');
  });

  it('tells a crash from an edit: a torn last line is closed and named when the writer starts again', () => {
    const f = written('torn.log', 5);
    appendFileSync(f.path, '{"type":"request","requ');
    expect(judge(f.path, f.clock.now).ok).toBe(false);
    appendAfterRestart(f.path, f.clock.now, 'after/crash');
    const report = judge(f.path, f.clock.now + 1000);
    expect(report.ok).toBe(true);
    expect(report.notes.join(' ')).toContain('torn line');
  });

  it('refuses what a rewriter with only the public key could make: an unsigned or re-dated device line, a file cut to a device line, a file re-signed with another key', () => {
    const f = written('forged-device.log');
    const at = f.clock.now + 1000;
    const lines = f.lines();
    const key = publicKeyText(publicKey);
    const check = (ls: string[], extra = {}) => {
      writeFileSync(f.path, ls.join('\n') + '\n');
      return judge(f.path, at, extra);
    };
    // A device line with its signature stripped, or its interval raised, or its time changed.
    const device = JSON.parse(lines[0]);
    const variants = [
      { ...device, device: { ...device.device, signature: undefined } },
      { ...device, device: { ...device.device, checkpoint_interval_s: 1e12 } },
      { ...device, time: 'x' },
    ];
    for (const v of variants) expect(check([JSON.stringify(v), ...lines.slice(1)], { key }).failure?.line).toBe(1);
    // Cut right after the first device line (no checkpoint): unproven.
    expect(check([lines[0]], { key }).failure?.reason).toContain('no signed checkpoint follows it');
    // A whole file written by another key passes only unpinned, with a note saying so.
    const other = keyPair('EdDSA');
    const path = join(dir, 'rewritten.log');
    const w = AuditWriter.open({ device: 'file/', filePath: path, signingKey: other.privateKey, clock: () => f.clock.now });
    w.close();
    expect(verifyAuditFile(readFileSync(path, 'utf8'), { at }).notes.join(' ')).toContain('pin the device');
    expect(verifyAuditFile(readFileSync(path, 'utf8'), { at, key }).ok).toBe(false);
  });

  it('makes its file readable and writable by its owner only', async () => {
    const { statSync, chmodSync } = await import('node:fs');
    const path = join(dir, 'mode.log');
    writeFileSync(path, '');
    chmodSync(path, 0o666);
    AuditWriter.open({ device: 'file/', filePath: path, signingKey: privateKey }).close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
