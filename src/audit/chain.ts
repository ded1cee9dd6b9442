// The tamper-evident form of an audit file: every line carries the SHA-256 of
// the line before it and its own sequence number (`chain: {seq, prev}`), so an
// edited, deleted or reordered line breaks the chain where it happened; and a
// signed checkpoint line at a fixed interval (also when nothing happened)
// commits to the head of the chain with a dedicated Ed25519 key, so a deleted
// tail or a quiet gap is provable too. The first line of each writer's run is
// a `device` line naming the public key its checkpoints verify with.

import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const GENESIS = '0'.repeat(64);
export const CHECKPOINT_CONTEXT = 'tvm-audit-checkpoint.v1';

export interface ChainLink {
  seq: number;
  prev: string;
}

/** SHA-256 (hex) of a line as written, without its newline. */
export function lineHash(line: string): string {
  return createHash('sha256').update(line, 'utf8').digest('hex');
}

/** A public key as a device line carries it: base64 of its SPKI DER. */
export function publicKeyText(key: KeyObject): string {
  const pub = key.type === 'public' ? key : createPublicKey(key);
  return pub.export({ type: 'spki', format: 'der' }).toString('base64');
}

export function keyFromText(text: string): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) return createPublicKey(trimmed);
  return createPublicKey({ key: Buffer.from(trimmed, 'base64'), format: 'der', type: 'spki' });
}

/** A short id of a public key: the first 16 hex digits of its SPKI's SHA-256. */
export function keyId(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest('hex').slice(0, 16);
}

/** What a checkpoint signs: the device, the line's place in the chain, the head it commits to, and when. */
function checkpointMessage(device: string, seq: number, head: string, time: string): Buffer {
  return Buffer.from([CHECKPOINT_CONTEXT, device, String(seq), head, time].join('\n'), 'utf8');
}

export function signCheckpoint(key: KeyObject, device: string, seq: number, head: string, time: string): string {
  return sign(null, checkpointMessage(device, seq, head, time), key).toString('base64url');
}

export function checkpointValid(key: KeyObject, device: string, seq: number, head: string, time: string, signature: string): boolean {
  try {
    return verify(null, checkpointMessage(device, seq, head, time), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

export const DEVICE_CONTEXT = 'tvm-audit-device.v1';

/** What a device line signs: who writes, with which key and interval, where in the chain, and when. */
function deviceMessage(name: string, publicKey: string, intervalS: number, seq: number, prev: string, time: string, extra: string): Buffer {
  return Buffer.from([DEVICE_CONTEXT, name, publicKey, String(intervalS), String(seq), prev, time, extra].join('\n'), 'utf8');
}

export function signDevice(key: KeyObject, name: string, publicKey: string, intervalS: number, seq: number, prev: string, time: string, extra = ''): string {
  return sign(null, deviceMessage(name, publicKey, intervalS, seq, prev, time, extra), key).toString('base64url');
}

export function deviceValid(key: KeyObject, name: string, publicKey: string, intervalS: number, seq: number, prev: string, time: string, extra: string, signature: string): boolean {
  try {
    return verify(null, deviceMessage(name, publicKey, intervalS, seq, prev, time, extra), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}
