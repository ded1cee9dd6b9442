// The engine's public surface. Explicit exports only.
export type {
  Backend,
  Caller,
  Clock,
  ExistenceResult,
  LogicalRequest,
  LogicalResponse,
  MountLimits,
  Operation,
  SecretOut,
  SpecialPaths,
  Storage,
  StorageEntry,
  StoredSecret,
} from '../sdk/logical.ts';
export { OPERATIONS, HTTP_CONTENT_TYPE, HTTP_RAW_BODY, HTTP_STATUS_CODE } from '../sdk/logical.ts';
export { EngineError, isEngineError, invalidField, showValue, describeType } from '../sdk/errors.ts';
export { parseJsonBounded, JsonInputError, MAX_JSON_DEPTH } from '../sdk/json.ts';
export type { EngineErrorCode } from '../sdk/errors.ts';
export { parseDurationMs, formatDurationMs } from '../sdk/duration.ts';
export { createTvmBackend } from './backend.ts';
export type { TvmBackendOptions } from './backend.ts';
