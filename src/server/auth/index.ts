// Auth methods of the dev server (AppRole, JWT). Explicit exports only.
export { AuthTable, authMountInfo } from './table.ts';
export type { AuthMount, AuthMountEntry, EnableAuthInput } from './table.ts';
export { issueLoginToken, loginDisplayName, workloadSubject } from './login.ts';
export type { IssuedLogin, LoginDeps } from './login.ts';
export { AppRoleBackend, INVALID_CREDENTIALS } from './approle.ts';
export { JwtBackend } from './jwt.ts';
export { SUPPORTED_ALGS, validateJwt, JwtValidationError } from './jwt_verify.ts';
export { AUTH_METHOD_TYPES } from './types.ts';
export type { AuthBackend, AuthMethodType, AuthRequest, AuthResponse, LoginAuth } from './types.ts';
