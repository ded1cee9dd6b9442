// The plugin's public surface. Explicit exports only; the process entry point
// is main.ts (bundled by scripts/build-plugin.mjs).
export { startPlugin } from './server.ts';
export type { PluginIo, PluginOptions, RunningPlugin } from './server.ts';
export { checkEnvironment, handshakeLine, HandshakeError, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, APP_PROTOCOL_VERSION } from './handshake.ts';
export { resolveApiAddr, DEFAULT_API_ADDR } from './backend_service.ts';
export { applyRegistration, planRegistration, PluginRegisterError, DEFAULT_PLUGIN_PATH } from './register.ts';
export type { ApplyResult, RegistrationOptions, RegistrationPlan, VaultWriter } from './register.ts';
export { createLogger } from './logger.ts';
export type { Logger, LogLevel } from './logger.ts';
