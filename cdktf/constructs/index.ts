// The tvm constructs. Explicit exports only.
export { TvmPlugin, TVM_PLUGIN_COMMAND, TVM_PLUGIN_NAME } from './tvm-plugin.ts';
export type { TvmPluginProps } from './tvm-plugin.ts';
export { TvmMount } from './tvm-mount.ts';
export type { RoleLimits, TvmMountProps } from './tvm-mount.ts';
export { TvmRole } from './tvm-role.ts';
export type { TvmRoleProps } from './tvm-role.ts';
export { TvmAppRoleAuth } from './tvm-approle-auth.ts';
export type { TvmAppRoleAuthProps } from './tvm-approle-auth.ts';
export { TvmJwtAuth } from './tvm-jwt-auth.ts';
export type { TvmJwtAuthProps } from './tvm-jwt-auth.ts';
export { TvmConsumer, consumerPolicy } from './tvm-consumer.ts';
export type { AppRoleLogin, JwtLogin, LoginTokenProps, TvmConsumerProps } from './tvm-consumer.ts';
export { durationSeconds } from './durations.ts';
export type { Duration } from './durations.ts';
