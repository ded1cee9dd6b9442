// Key pairs for tests that sign as a foreign issuer, made the way the engine
// makes its own (newPrivateKey in src/engine/jwk.ts): from the PKCS#8 bytes a
// generation hands back, never from the generation job's key objects. Node 20
// can hang for good when a garbage collection finalises a key generation job
// while that job's key is being exported (jose's generateKeyPair followed by
// exportJWK or exportSPKI is exactly that); a CI run hung so once.

import { createPublicKey, type KeyObject } from 'node:crypto';
import { newPrivateKey } from '../src/engine/jwk.ts';

export interface TestKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A new key pair for a JWS algorithm; jose signs with and exports these KeyObjects as it does CryptoKeys. */
export function keyPair(alg: 'ES256' | 'RS256' | 'EdDSA'): TestKeyPair {
  const privateKey =
    alg === 'ES256' ? newPrivateKey('ec', { namedCurve: 'P-256' }) : alg === 'RS256' ? newPrivateKey('rsa', { modulusLength: 2048 }) : newPrivateKey('ed25519');
  return { privateKey, publicKey: createPublicKey(privateKey) };
}
