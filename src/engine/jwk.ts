// What a public JWK must never carry: one rule for the engine (dpop_jwk at
// issue), the PEP (a DPoP proof's jwk header) and the broker (dpop_jwk). And
// how a new key pair is made so that exporting it cannot hang the process.

import { createPrivateKey, generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

/** Members only a private or symmetric key has (RFC 7517, RFC 7518 §6). */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Whether the object holds private or symmetric key material. */
export function holdsPrivateKey(jwk: object): boolean {
  return PRIVATE_JWK_MEMBERS.some((m) => m in jwk);
}

export type KeyType = 'ec' | 'ed25519' | 'rsa';
export interface KeyTypeOptions {
  namedCurve?: string;
  modulusLength?: number;
}

const generatePair = promisify(generateKeyPair);
const ENCODINGS = { publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } } as const;
const fromPkcs8 = (der: Buffer): KeyObject => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });

/**
 * A new private key, made from the PKCS#8 bytes node:crypto's generation hands
 * back rather than taken from the generation's own key objects. In Node 20 a
 * garbage collection that finalises a key generation job while that job's key
 * is being exported (as a JWK, say) waits on a lock the export holds, and the
 * process hangs for good (seen in CI: ~KeyGenJob under ExportJWK); a key made
 * from bytes shares nothing with the job.
 */
export function newPrivateKey(type: KeyType, options: KeyTypeOptions = {}): KeyObject {
  const pair = generateKeyPairSync(type as 'ec', { ...(options as { namedCurve: string }), ...ENCODINGS }) as unknown as { privateKey: Buffer };
  return fromPkcs8(pair.privateKey);
}

/** newPrivateKey, generated on the thread pool (an RSA key takes long enough to matter to the event loop). */
export async function newPrivateKeyAsync(type: KeyType, options: KeyTypeOptions = {}): Promise<KeyObject> {
  const pair = (await generatePair(type as 'ec', { ...(options as { namedCurve: string }), ...ENCODINGS })) as unknown as { privateKey: Buffer };
  return fromPkcs8(pair.privateKey);
}
