// The tvm client library: typed calls to a tvm mount and Vault's lease API,
// over plain HTTP (src/client/transport.ts), so the same code works against the dev server and a real Vault.

export {
  connect,
  normaliseMount,
  DEFAULT_ADDR,
  DEFAULT_MOUNT,
  type ConnectOptions,
  type Env,
  type VaultConnection,
  type VaultResponse,
} from './connection.ts';
export {
  TvmClientError,
  VaultRequestError,
  ServerUnreachableError,
  InvalidInputError,
  UnexpectedResponseError,
  isClientError,
  type ClientErrorCode,
} from './errors.ts';
export { writeRole, readRole, listRoles, deleteRole, type Role, type RoleInput, type RoleWrite } from './roles.ts';
export { issueCreds, issueWrappedCreds, unwrapCreds, type Creds, type CredsRequest, type WrapInfo } from './creds.ts';
export {
  lookupLease,
  renewLease,
  revokeLease,
  listLeases,
  DEFAULT_LEASE_PREFIX,
  type LeaseInfo,
  type RenewOptions,
} from './leases.ts';
export { rotateKeys, checkIssuer, type IssuerCheck, type RotatedKey } from './keys.ts';
export {
  verifyToken,
  introspectToken,
  TOKEN_TYP,
  type VerifyResult,
  type VerifyOptions,
  type Introspection,
} from './tokens.ts';
