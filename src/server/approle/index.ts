// The AppRole auth method. Explicit exports only.
export { createAppRoleBackend } from './backend.ts';
export type { AppRoleBackendOptions } from './backend.ts';
export { INVALID_CREDENTIALS } from './lockout.ts';
export type { AppRoleEntry } from './roles.ts';
