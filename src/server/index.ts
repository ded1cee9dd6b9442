// The dev server's public surface. Explicit exports only.
export { startServer, parseListenAddress, DEMO_ROLE } from './server.ts';
export type { Logger, RunningServer, ServerOptions } from './server.ts';
export { loadConfig, loadSealKeys, parseConfig, ConfigError } from './config.ts';
export type { ListenerConfig, SealConfig, SealKeyRef, ServerConfig } from './config.ts';
export { sealStorageOfConfig } from './seal_migrate.ts';
export type { SealMigration } from './seal_migrate.ts';
export { MAX_BODY_BYTES, VAULT_VERSION } from './http.ts';
export {
  ACL,
  CAPABILITIES,
  DEFAULT_POLICY,
  PolicyParseError,
  PolicyStore,
  checkParameters,
  parsePolicy,
} from './policy.ts';
export type { AclCheck, AclOperation, Capability, PathRule, Permissions, Policy } from './policy.ts';
export { ExpirationManager, LeaseError, isLeaseError } from './expiration.ts';
export type { LeaseBackendCalls, LeaseEntry, PhysicalStorage } from './types.ts';
