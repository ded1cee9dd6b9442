// Encryption at rest, in the spirit of Vault's barrier: a PhysicalStorage over
// another one (the SQLite file) that seals every value with AES-256-GCM under
// the operator's key (the config's `seal "static"` stanza). Keys (paths) stay
// in clear, as in Vault; values never reach the inner storage unsealed.
//
// A sealed value:
//
//   [1: format 1][1: key id length n][n: key id][16: salt][12: nonce][ciphertext][16: GCM tag]
//
// - The key id names the operator key, so a rotated storage reads values
//   sealed under the previous key while new writes use the current one.
// - The AES key is HKDF-SHA256(operator key, salt). Each process start draws
//   a fresh random salt (and again after 2^32 seals), and the nonces count up
//   from 0 under it: no AES key ever sees a nonce twice, without GCM's bound
//   on random nonces, and without the cost of drawing one per value.
// - The additional data is the header (format, key id, salt) and the storage
//   key: a value moved to another key, or its key id edited, fails to open.
//
// A sealed canary record (SEAL_CANARY_KEY) proves at open that the key opens
// this storage, so a wrong key is refused at start, not at the first read.

import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import type { Storage } from '../../sdk/logical.ts';
import type { PhysicalStorage, StorageOp } from '../types.ts';
import { StorageError, childOf, createView } from './view.ts';

/** One operator key: its id (not secret, stored beside each value) and 32 bytes. */
export interface SealKey {
  id: string;
  key: Uint8Array;
}

/** New writes use `current`; values sealed under `previous` stay readable and are re-sealed at open. */
export interface SealKeyring {
  current: SealKey;
  previous?: SealKey;
}

export interface SealedStorageOptions {
  /** Names the storage in errors, e.g. its file path (default "the storage"). */
  label?: string;
  /** Informational messages (re-sealing after a rotation); never holds a key or a value. */
  log?: (message: string) => void;
}

/** The canary record: sealed under the current key, opened at every start. */
export const SEAL_CANARY_KEY = 'core/seal-canary';

export const SEAL_KEY_BYTES = 32;
const FORMAT = 1;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const MAX_KEY_ID_BYTES = 255;
/** Seals under one derived AES key (one nonce each, counted in 32 bits) before a new salt is drawn. */
const SEALS_PER_SALT = 2 ** 32;
const HKDF_INFO = Buffer.from('tvm seal v1 aes-256-gcm');
const CANARY_TEXT = Buffer.from('tvm seal canary v1');
/** Values re-sealed per atomic batch after a rotation. */
const RESEAL_BATCH = 500;
/** Derived keys kept for reading (one per salt seen); cleared when full. */
const MAX_CACHED_KEYS = 4096;

const encoder = new TextEncoder();

/**
 * A storage key as errors show it: its first two segments. Deeper segments
 * may hold identifiers that grant something (lease ids), which never reach
 * an error or a log line.
 */
function shownKey(key: string): string {
  const parts = key.split('/');
  return parts.length <= 2 ? key : `${parts.slice(0, 2).join('/')}/…`;
}

interface Header {
  keyId: string;
  /** Bytes [0, end) are the header: format, key id, salt. */
  end: number;
  salt: Buffer;
}

/** Seals and opens single values; holds the operator keys and the derived AES keys. */
export class Sealer {
  private readonly keys = new Map<string, Buffer>();
  private readonly currentId: Buffer;
  private readonly current: SealKey;
  private readonly derived = new Map<string, KeyObject>();
  private header: Buffer = Buffer.alloc(0);
  private aesKey: KeyObject | null = null;
  /** Seals done under the current salt: the next nonce. */
  private sealed = SEALS_PER_SALT;

  constructor(keyring: SealKeyring) {
    const all = keyring.previous ? [keyring.current, keyring.previous] : [keyring.current];
    for (const k of all) {
      const idBytes = Buffer.byteLength(k.id);
      if (idBytes === 0 || idBytes > MAX_KEY_ID_BYTES) {
        throw new StorageError('ERR_STORAGE_SEAL_KEY', `seal key id must be 1 to ${MAX_KEY_ID_BYTES} bytes`);
      }
      if (k.key.length !== SEAL_KEY_BYTES) {
        throw new StorageError('ERR_STORAGE_SEAL_KEY', `seal key "${k.id}" must be ${SEAL_KEY_BYTES} bytes, not ${k.key.length}`);
      }
      if (this.keys.has(k.id)) throw new StorageError('ERR_STORAGE_SEAL_KEY', `the current and previous seal keys have the same id "${k.id}"`);
      this.keys.set(k.id, Buffer.from(k.key));
    }
    this.current = keyring.current;
    this.currentId = Buffer.from(keyring.current.id);
  }

  get currentKeyId(): string {
    return this.current.id;
  }

  /** Seals `plaintext` for storage key `path` under the current key. */
  seal(path: string, plaintext: Uint8Array): Buffer {
    if (this.sealed === SEALS_PER_SALT) this.newSalt();
    const nonce = Buffer.alloc(NONCE_BYTES);
    nonce.writeUInt32BE(this.sealed++, NONCE_BYTES - 4);
    const cipher = createCipheriv('aes-256-gcm', this.aesKey!, nonce);
    cipher.setAAD(Buffer.concat([this.header, encoder.encode(path)]));
    const body = cipher.update(plaintext);
    const final = cipher.final();
    return Buffer.concat([this.header, nonce, body, final, cipher.getAuthTag()]);
  }

  /**
   * Opens a value read at storage key `path`. Throws ERR_STORAGE_CORRUPT if it
   * is not a sealed value or fails authentication (tampered, moved from another
   * key, sealed under another key of the same id), ERR_STORAGE_SEAL_KEY if its
   * key id is not in the keyring.
   */
  open(path: string, sealed: Uint8Array): Uint8Array {
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const header = parseHeader(buf);
    if (header === null || buf.length < header.end + NONCE_BYTES + TAG_BYTES) {
      throw new StorageError(
        'ERR_STORAGE_CORRUPT',
        `the value at ${shownKey(path)} is not a sealed value (written without a seal, or damaged)`,
      );
    }
    const aesKey = this.derive(header);
    if (aesKey === null) {
      throw new StorageError(
        'ERR_STORAGE_SEAL_KEY',
        `the value at ${shownKey(path)} is sealed with key id "${header.keyId}", which the seal stanza does not name`,
      );
    }
    const nonceEnd = header.end + NONCE_BYTES;
    const tagStart = buf.length - TAG_BYTES;
    try {
      const decipher = createDecipheriv('aes-256-gcm', aesKey, buf.subarray(header.end, nonceEnd));
      decipher.setAAD(Buffer.concat([buf.subarray(0, header.end), encoder.encode(path)]));
      decipher.setAuthTag(buf.subarray(tagStart));
      const out = Buffer.concat([decipher.update(buf.subarray(nonceEnd, tagStart)), decipher.final()]);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (err) {
      throw new StorageError(
        'ERR_STORAGE_CORRUPT',
        `the value at ${shownKey(path)} failed authentication under key id "${header.keyId}" (tampered, moved from another key, or sealed with another key of that id)`,
        { cause: err },
      );
    }
  }

  /** The key id a sealed value names, or null if it is not a sealed value. */
  keyIdOf(sealed: Uint8Array): string | null {
    return parseHeader(Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength))?.keyId ?? null;
  }

  private newSalt(): void {
    const salt = randomBytes(SALT_BYTES);
    this.header = Buffer.concat([Buffer.from([FORMAT, this.currentId.length]), this.currentId, salt]);
    this.aesKey = this.derive({ keyId: this.current.id, salt, end: this.header.length })!;
    this.sealed = 0;
  }

  /** The AES key for a header's key id and salt, or null if the key id is unknown. */
  private derive(header: Header): KeyObject | null {
    const cacheKey = `${header.keyId}\u0000${header.salt.toString('base64')}`;
    const cached = this.derived.get(cacheKey);
    if (cached) return cached;
    const key = this.keys.get(header.keyId);
    if (key === undefined) return null;
    const aesKey = createSecretKey(Buffer.from(hkdfSync('sha256', key, header.salt, HKDF_INFO, SEAL_KEY_BYTES)));
    if (this.derived.size >= MAX_CACHED_KEYS) this.derived.clear();
    this.derived.set(cacheKey, aesKey);
    return aesKey;
  }
}

function parseHeader(buf: Buffer): Header | null {
  if (buf.length < 2 || buf[0] !== FORMAT || buf[1] === 0) return null;
  const idEnd = 2 + buf[1];
  const end = idEnd + SALT_BYTES;
  if (buf.length < end) return null;
  return { keyId: buf.toString('utf8', 2, idEnd), salt: buf.subarray(idEnd, end), end };
}

function checkWritable(key: string): string {
  if (key === SEAL_CANARY_KEY) throw new StorageError('ERR_STORAGE_WRITE', `${SEAL_CANARY_KEY} is reserved for the seal`);
  return key;
}

class SealedStorage implements PhysicalStorage {
  constructor(
    private readonly inner: PhysicalStorage,
    private readonly sealer: Sealer,
  ) {}

  get persistent(): boolean {
    return this.inner.persistent;
  }

  // The canary belongs to the seal: callers never see it, nor write it.

  async get(key: string): Promise<Uint8Array | null> {
    if (key === SEAL_CANARY_KEY) return null;
    const raw = await this.inner.get(key);
    return raw === null ? null : this.sealer.open(key, raw);
  }

  // Sealing runs before the inner call, in the caller's turn: write order and
  // group commit are as without the seal, and a failure queues nothing.
  async put(key: string, value: Uint8Array): Promise<void> {
    return this.inner.put(checkWritable(key), this.sealer.seal(key, value));
  }

  async delete(key: string): Promise<void> {
    return this.inner.delete(checkWritable(key));
  }

  /** Every value is sealed first, then all go to the inner batch: still one atomic write. */
  async batch(ops: ReadonlyArray<StorageOp>): Promise<void> {
    const sealed = ops.map((op) =>
      op.value === null
        ? { key: checkWritable(op.key), value: null }
        : { key: checkWritable(op.key), value: this.sealer.seal(op.key, op.value), owned: true },
    );
    return this.inner.batch(sealed);
  }

  async list(prefix: string): Promise<string[]> {
    const out = await this.inner.list(prefix);
    if (!SEAL_CANARY_KEY.startsWith(prefix)) return out;
    const entry = childOf(prefix, SEAL_CANARY_KEY);
    // The canary's folder (core/) is listed only if it holds something else too.
    if (entry.endsWith('/')) {
      const inside = await this.inner.list(prefix + entry);
      if (inside.length !== 1 || prefix + entry + inside[0] !== SEAL_CANARY_KEY) return out;
    }
    return out.filter((e) => e !== entry);
  }

  view(prefix: string): Storage {
    return createView(this, prefix);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Opens the sealed storage over `inner`, which it owns from now on (closed if
 * opening fails). A fresh storage gets the canary; an existing one must hold a
 * canary that the keyring opens, else ERR_STORAGE_SEAL_KEY (wrong key, unknown
 * key id) or ERR_STORAGE_UNSEALED (data written without a seal). When the
 * canary is under the previous key (a rotation), every value under it is
 * re-sealed under the current key, the canary last, so once a start has
 * succeeded the previous key is no longer needed.
 */
export async function openSealedStorage(
  inner: PhysicalStorage,
  keyring: SealKeyring,
  options: SealedStorageOptions = {},
): Promise<PhysicalStorage> {
  try {
    const sealer = new Sealer(keyring);
    const label = options.label ?? 'the storage';
    const raw = await inner.get(SEAL_CANARY_KEY);
    if (raw === null) {
      if ((await inner.list('')).length > 0) {
        throw new StorageError(
          'ERR_STORAGE_UNSEALED',
          `${label} was written without a seal (by an older tvm): its values are stored in clear; seal it once, offline, before starting (see "Encryption at rest" in the README)`,
        );
      }
      await inner.put(SEAL_CANARY_KEY, sealer.seal(SEAL_CANARY_KEY, CANARY_TEXT));
      return new SealedStorage(inner, sealer);
    }
    const canaryKeyId = checkCanary(sealer, keyring, raw, label);
    if (canaryKeyId !== sealer.currentKeyId) {
      const count = await reseal(inner, sealer);
      options.log?.(`seal: re-sealed ${count} values of ${label} from key id "${canaryKeyId}" to key id "${sealer.currentKeyId}"; previous_key is no longer needed`);
    }
    return new SealedStorage(inner, sealer);
  } catch (err) {
    await inner.close().catch(() => undefined);
    throw err;
  }
}

/** Opens the canary; returns the key id it was sealed under. */
function checkCanary(sealer: Sealer, keyring: SealKeyring, raw: Uint8Array, label: string): string {
  const keyId = sealer.keyIdOf(raw);
  if (keyId === null) {
    throw new StorageError('ERR_STORAGE_CORRUPT', `${label} holds a damaged seal canary (${SEAL_CANARY_KEY})`);
  }
  if (keyId !== keyring.current.id && keyId !== keyring.previous?.id) {
    const named = keyring.previous
      ? `current_key_id "${keyring.current.id}", previous_key_id "${keyring.previous.id}"`
      : `current_key_id "${keyring.current.id}"`;
    throw new StorageError(
      'ERR_STORAGE_SEAL_KEY',
      `${label} is sealed with key id "${keyId}", which the seal stanza does not name (${named}); to rotate, give the old key as previous_key_id and previous_key`,
    );
  }
  const wrongKey = (): StorageError =>
    new StorageError(
      'ERR_STORAGE_SEAL_KEY',
      `the key given for key id "${keyId}" does not open ${label}: it is not the key this storage was sealed with`,
    );
  let text: Uint8Array;
  try {
    text = sealer.open(SEAL_CANARY_KEY, raw);
  } catch {
    throw wrongKey();
  }
  if (!CANARY_TEXT.equals(text)) throw wrongKey();
  return keyId;
}

/** Re-seals every value not under the current key, in atomic batches, the canary last. */
async function reseal(inner: PhysicalStorage, sealer: Sealer): Promise<number> {
  let ops: StorageOp[] = [];
  let count = 0;
  for await (const key of walkKeys(inner, '')) {
    if (key === SEAL_CANARY_KEY) continue;
    const raw = await inner.get(key);
    if (raw === null || sealer.keyIdOf(raw) === sealer.currentKeyId) continue;
    ops.push({ key, value: sealer.seal(key, sealer.open(key, raw)) });
    count++;
    if (ops.length >= RESEAL_BATCH) {
      await inner.batch(ops);
      ops = [];
    }
  }
  ops.push({ key: SEAL_CANARY_KEY, value: sealer.seal(SEAL_CANARY_KEY, CANARY_TEXT) });
  await inner.batch(ops);
  return count;
}

/** Every key under `prefix`, depth first. */
export async function* walkKeys(storage: PhysicalStorage, prefix: string): AsyncGenerator<string> {
  for (const child of await storage.list(prefix)) {
    if (child.endsWith('/')) yield* walkKeys(storage, prefix + child);
    else yield prefix + child;
  }
}

/**
 * Seals, in place and in one atomic batch, a storage written without a seal
 * (an older tvm), and writes the canary. Refuses a storage that already has a
 * canary. Returns how many values were sealed. The inner storage stays open.
 */
export async function sealUnsealedStorage(inner: PhysicalStorage, keyring: SealKeyring): Promise<number> {
  const sealer = new Sealer(keyring);
  if ((await inner.get(SEAL_CANARY_KEY)) !== null) {
    throw new StorageError('ERR_STORAGE_SEAL_KEY', 'this storage is already sealed');
  }
  const ops: StorageOp[] = [];
  for await (const key of walkKeys(inner, '')) {
    const value = await inner.get(key);
    if (value !== null) ops.push({ key, value: sealer.seal(key, value) });
  }
  ops.push({ key: SEAL_CANARY_KEY, value: sealer.seal(SEAL_CANARY_KEY, CANARY_TEXT) });
  await inner.batch(ops);
  return ops.length - 1;
}
