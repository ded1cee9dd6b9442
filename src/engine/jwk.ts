// What a public JWK must never carry: one rule for the engine (dpop_jwk at
// issue), the PEP (a DPoP proof's jwk header) and the broker (dpop_jwk).

/** Members only a private or symmetric key has (RFC 7517, RFC 7518 §6). */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Whether the object holds private or symmetric key material. */
export function holdsPrivateKey(jwk: object): boolean {
  return PRIVATE_JWK_MEMBERS.some((m) => m in jwk);
}
