// The seal (encryption at rest): every value sealed with AES-256-GCM under the
// operator's key, bound to its storage key; tampering, swapping and wrong keys
// refused; rotation through previous_key; a storage written without a seal
// refused until sealed offline.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SEAL_CANARY_KEY,
  Sealer,
  StorageError,
  openMemoryStorage,
  openSealedStorage,
  openSqliteStorage,
  sealSqliteFile,
} from '../../src/server/storage/index.ts';
import type { SealKey, SealKeyring } from '../../src/server/storage/index.ts';
import type { PhysicalStorage } from '../../src/server/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'tvm-seal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const freshDbPath = (): string => join(dir, `db-${++counter}`, 'tvm.db');

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | null): string | null => (value === null ? null : new TextDecoder().decode(value));
const key = (id: string): SealKey => ({ id, key: randomBytes(32) });

/** The error a promise or function rejects with (the test fails if it does not). */
async function failure(run: () => unknown): Promise<StorageError> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('expected a StorageError');
}

/** No form of a key's bytes appears in a message. */
function expectNoKey(message: string, ...keys: SealKey[]): void {
  for (const k of keys) {
    const b = Buffer.from(k.key);
    for (const form of [b.toString('hex'), b.toString('base64'), b.toString('base64url'), b.toString('latin1')]) {
      expect(message.includes(form)).toBe(false);
    }
  }
}

/** Flips one bit of `raw` at `index` (negative: from the end). */
function flipped(raw: Uint8Array, index: number): Uint8Array {
  const out = new Uint8Array(raw);
  out[index < 0 ? out.length + index : index] ^= 0x01;
  return out;
}

describe('Sealer', () => {
  const a = key('a-1');
  const sealer = new Sealer({ current: a });

  it('round-trips values of any size, never shows the plaintext, and seals the same value differently each time', () => {
    for (const size of [0, 1, 31, 32, 1000, 70_000]) {
      const value = randomBytes(size);
      const sealed = sealer.seal('logical/x/keys/current', value);
      expect(Buffer.from(sealer.open('logical/x/keys/current', sealed)).equals(value)).toBe(true);
      if (size >= 32) expect(sealed.includes(value)).toBe(false);
    }
    const secret = bytes('{"d":"the-private-scalar-of-the-signing-key"}');
    const one = sealer.seal('k', secret);
    const two = sealer.seal('k', secret);
    expect(one.equals(two)).toBe(false);
    expect(one.includes(Buffer.from('the-private-scalar'))).toBe(false);
    expect(sealer.keyIdOf(one)).toBe('a-1');
    expect(sealer.keyIdOf(secret)).toBeNull();
  });

  it('refuses every tampered byte: header, salt, nonce, ciphertext and tag', async () => {
    const sealed = sealer.seal('sys/token/id/abc', bytes('a token entry'));
    // 0: format; 1: id length; 2..4: key id; then salt (16), nonce (12), ciphertext (13), tag (16).
    const idEnd = 2 + 3;
    const positions = [0, 1, 2, idEnd, idEnd + 15, idEnd + 16, idEnd + 27, idEnd + 28, -17, -16, -1];
    for (const at of positions) {
      const err = await failure(() => sealer.open('sys/token/id/abc', flipped(sealed, at)));
      expect(['ERR_STORAGE_CORRUPT', 'ERR_STORAGE_SEAL_KEY']).toContain(err.code);
      expectNoKey(err.message, a);
    }
    const truncated = await failure(() => sealer.open('sys/token/id/abc', sealed.subarray(0, sealed.length - 1)));
    expect(truncated.code).toBe('ERR_STORAGE_CORRUPT');
    const plain = await failure(() => sealer.open('sys/token/id/abc', bytes('{"id":"x"}')));
    expect(plain).toMatchObject({ code: 'ERR_STORAGE_CORRUPT', message: expect.stringMatching(/is not a sealed value/) });
  });

  it('binds each value to its storage key: a value moved or swapped to another key does not open', async () => {
    const root = sealer.seal('sys/token/id/root', bytes('root entry'));
    const app = sealer.seal('sys/token/id/app', bytes('app entry'));
    for (const [path, value] of [['sys/token/id/app', root], ['sys/token/id/root', app]] as const) {
      const err = await failure(() => sealer.open(path, value));
      expect(err.code).toBe('ERR_STORAGE_CORRUPT');
      expect(err.message).toMatch(/failed authentication/);
    }
  });

  it('names neither a lease id nor any deep segment of the key in its errors', async () => {
    const leaseKey = 'sys/expire/id/tvm/creds/demo/h3KqSecretLeaseSuffix';
    const err = await failure(() => sealer.open(leaseKey, bytes('plain')));
    expect(err.message).toContain('sys/expire/…');
    expect(err.message).not.toContain('h3KqSecretLeaseSuffix');
  });

  it('opens a value sealed under the previous key; seals new ones under the current key', () => {
    const old = key('old');
    const next = key('new');
    const sealedOld = new Sealer({ current: old }).seal('k', bytes('v'));
    const rotating = new Sealer({ current: next, previous: old });
    expect(text(rotating.open('k', sealedOld))).toBe('v');
    expect(rotating.keyIdOf(rotating.seal('k', bytes('w')))).toBe('new');
  });

  it('refuses a value under a key id it does not hold, and a key of the wrong size, without showing the key', async () => {
    const other = new Sealer({ current: key('other') }).seal('k', bytes('v'));
    const err = await failure(() => sealer.open('k', other));
    expect(err).toMatchObject({ code: 'ERR_STORAGE_SEAL_KEY', message: expect.stringContaining('key id "other"') });
    const short = { id: 'short', key: randomBytes(16) };
    const bad = await failure(() => new Sealer({ current: short }));
    expect(bad.message).toMatch(/must be 32 bytes, not 16/);
    expectNoKey(bad.message, short);
    await failure(() => new Sealer({ current: a, previous: { id: 'a-1', key: randomBytes(32) } }));
  });
});

describe('openSealedStorage', () => {
  /** The sealed storage over `inner`, named in its errors "the test storage". */
  const sealedOver = (inner: PhysicalStorage, keyring: SealKeyring): Promise<PhysicalStorage> =>
    openSealedStorage(inner, keyring, { label: 'the test storage' });

  it('stores only sealed values and the canary below, and hides the canary from its callers', async () => {
    const inner = openMemoryStorage();
    const a = key('a');
    const s = await sealedOver(inner, { current: a });
    await s.put('sys/token/id/x', bytes('secret-token-entry'));
    await s.batch([
      { key: 'logical/m/keys/1', value: bytes('{"d":"private"}') },
      { key: 'logical/m/keys/2', value: bytes('two') },
      { key: 'sys/token/id/x', value: null },
    ]);
    expect(await s.list('')).toEqual(['logical/']);
    expect(await s.list('co')).toEqual([]);
    expect(await s.get(SEAL_CANARY_KEY)).toBeNull();
    await expect(s.put(SEAL_CANARY_KEY, bytes('x'))).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE' });
    await expect(s.batch([{ key: SEAL_CANARY_KEY, value: null }])).rejects.toMatchObject({ code: 'ERR_STORAGE_WRITE' });
    expect(await inner.list('')).toEqual(['core/', 'logical/']);
    const raw = await inner.get('logical/m/keys/1');
    expect(Buffer.from(raw!).includes(Buffer.from('private'))).toBe(false);
    expect(text(await s.get('logical/m/keys/1'))).toBe('{"d":"private"}');
    expect(await s.get('sys/token/id/x')).toBeNull();
    // core/ shows once the server keeps something of its own there.
    await s.put('core/init', bytes('{}'));
    expect(await s.list('')).toEqual(['core/', 'logical/']);
    expect(await s.list('core/')).toEqual(['init']);
    await s.close();
  });

  it('keeps a batch atomic: a value it cannot accept fails the whole batch before anything is written', async () => {
    const inner = openMemoryStorage();
    const s = await sealedOver(inner, { current: key('a') });
    await expect(
      s.batch([
        { key: 'a', value: bytes('1') },
        { key: SEAL_CANARY_KEY, value: bytes('2') },
      ]),
    ).rejects.toBeInstanceOf(StorageError);
    expect(await s.get('a')).toBeNull();
    await s.close();
  });

  it('refuses to start with a wrong key, naming the key id and never the key; closes what it was given', async () => {
    const path = freshDbPath();
    const right = key('prod-1');
    const first = await sealedOver(openSqliteStorage(path), { current: right });
    await first.put('k', bytes('v'));
    await first.close();

    const wrong = { id: 'prod-1', key: randomBytes(32) };
    const err = await failure(() => sealedOver(openSqliteStorage(path), { current: wrong }));
    expect(err.code).toBe('ERR_STORAGE_SEAL_KEY');
    expect(err.message).toBe(
      'the key given for key id "prod-1" does not open the test storage: it is not the key this storage was sealed with',
    );
    expectNoKey(err.message, right, wrong);

    const other = key('prod-2');
    const unknown = await failure(() => sealedOver(openSqliteStorage(path), { current: other }));
    expect(unknown.code).toBe('ERR_STORAGE_SEAL_KEY');
    expect(unknown.message).toBe(
      'the test storage is sealed with key id "prod-1", which the seal stanza does not name (current_key_id "prod-2"); to rotate, give the old key as previous_key_id and previous_key',
    );

    // The refused opens released the file: the right key opens it.
    const again = await sealedOver(openSqliteStorage(path), { current: right });
    expect(text(await again.get('k'))).toBe('v');
    await again.close();
  });

  it('rotates: values under the previous key are re-sealed under the current one at start, then the previous key can go', async () => {
    const path = freshDbPath();
    const old = key('2025-01');
    const next = key('2025-06');
    const first = await sealedOver(openSqliteStorage(path), { current: old });
    const values = Array.from({ length: 1200 }, (_, i) => [`logical/m/leases/${String(i).padStart(4, '0')}`, `value ${i}`] as const);
    await first.batch(values.map(([k, v]) => ({ key: k, value: bytes(v) })));
    await first.close();

    const logs: string[] = [];
    const rotating = await openSealedStorage(openSqliteStorage(path), { current: next, previous: old }, { label: 'the test storage', log: (m) => logs.push(m) });
    expect(logs).toEqual([
      'seal: re-sealed 1200 values of the test storage from key id "2025-01" to key id "2025-06"; previous_key is no longer needed',
    ]);
    expect(text(await rotating.get(values[7][0]))).toBe('value 7');
    await rotating.put('new', bytes('written after the rotation'));
    await rotating.close();

    const inner = openSqliteStorage(path);
    const probe = new Sealer({ current: next });
    for (const [k] of values) expect(probe.keyIdOf((await inner.get(k))!)).toBe('2025-06');
    expect(probe.keyIdOf((await inner.get(SEAL_CANARY_KEY))!)).toBe('2025-06');
    expect(probe.keyIdOf((await inner.get('new'))!)).toBe('2025-06');
    await inner.close();

    // The previous key is no longer needed; a second start with it re-seals nothing.
    logs.length = 0;
    const again = await openSealedStorage(openSqliteStorage(path), { current: next, previous: old }, { log: (m) => logs.push(m) });
    expect(logs).toEqual([]);
    await again.close();
    const only = await sealedOver(openSqliteStorage(path), { current: next });
    expect(text(await only.get(values[1199][0]))).toBe('value 1199');
    expect(text(await only.get('new'))).toBe('written after the rotation');
    await only.close();
  });

  it('reads values under the previous key while they are there (a rotation cut short keeps the canary for last)', async () => {
    const inner = openMemoryStorage();
    const old = key('old');
    const next = key('new');
    const before = new Sealer({ current: old });
    // As an interrupted re-seal leaves it: the canary and some values still under the old key.
    await inner.put(SEAL_CANARY_KEY, before.seal(SEAL_CANARY_KEY, bytes('tvm seal canary v1')));
    await inner.put('a', before.seal('a', bytes('under old')));
    await inner.put('b', new Sealer({ current: next }).seal('b', bytes('under new')));
    const s = await sealedOver(inner, { current: next, previous: old });
    expect(text(await s.get('a'))).toBe('under old');
    expect(text(await s.get('b'))).toBe('under new');
    expect(new Sealer({ current: next }).keyIdOf((await inner.get('a'))!)).toBe('new');
    await s.close();
  });

  it('refuses a storage written without a seal, and sealSqliteFile seals it offline, leaving no clear value in the files', async () => {
    const path = freshDbPath();
    const plain = openSqliteStorage(path);
    const secret = 'eyJhbGciOiJFUzI1NiJ9.clear-jwt-in-an-old-database';
    await plain.put('core/init', bytes('{"cluster_id":"c"}'));
    await plain.put('logical/m/keys/current', bytes(JSON.stringify({ d: secret })));
    // Deleted rows leave their bytes in free pages, which only a rewrite of the file clears.
    await plain.batch(Array.from({ length: 300 }, (_, i) => ({ key: `sys/old/${i}`, value: bytes(`${secret} ${'x'.repeat(200)}`) })));
    await plain.batch(Array.from({ length: 300 }, (_, i) => ({ key: `sys/old/${i}`, value: null })));
    await plain.close();

    const k = key('first');
    const err = await failure(() => sealedOver(openSqliteStorage(path), { current: k }));
    expect(err.code).toBe('ERR_STORAGE_UNSEALED');
    expect(err.message).toBe(
      'the test storage was written without a seal (by an older tvm): its values are stored in clear; seal it once, offline, before starting (see "Encryption at rest" in the README)',
    );

    expect(await sealSqliteFile(path, { current: k })).toBe(2);
    const files = readdirSync(join(path, '..')).map((f) => readFileSync(join(path, '..', f)));
    for (const content of files) expect(content.includes(Buffer.from(secret))).toBe(false);
    const s = await sealedOver(openSqliteStorage(path), { current: k });
    expect(JSON.parse(text(await s.get('logical/m/keys/current'))!)).toEqual({ d: secret });
    await s.close();
    await expect(sealSqliteFile(path, { current: k })).rejects.toThrow(/already sealed/);
  });
});
