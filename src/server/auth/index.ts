// The auth mount table of the dev server and what it does with a login. The
// methods themselves are src/server/approle and src/server/jwt. Explicit
// exports only.
export { AUTH_METHOD_TYPES, AuthTable, authMountInfo } from './table.ts';
export type { AuthMethodType, AuthMount, AuthMountEntry } from './table.ts';
export { issueLoginToken, loginDisplayName, workloadSubject } from './login.ts';
export type { IssuedLogin, LoginDeps } from './login.ts';
