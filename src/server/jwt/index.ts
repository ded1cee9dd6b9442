// The JWT auth method. Explicit exports only.
export { createJwtBackend } from './backend.ts';
export type { JwtBackendOptions } from './backend.ts';
export { JwtValidationError, SUPPORTED_ALGS, validateJwt } from './verify.ts';
export type { ExpectedClaims, KeySource } from './verify.ts';
